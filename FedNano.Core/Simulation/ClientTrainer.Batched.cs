using FedNano.Edge;
using FedNano.Strategies;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>One client's local training in a batched round.</summary>
/// <param name="Client">Its index (for the traffic it moves).</param>
/// <param name="Start">The adapters it starts from (not changed).</param>
/// <param name="Data">Its training samples.</param>
/// <param name="Fit">What its strategy asks of it.</param>
/// <param name="Global">The global adapters of its proximal term, or null.</param>
/// <param name="Order">Its data order.</param>
/// <param name="Noise">Its DP-SGD noise (with <c>dp</c>), else null.</param>
internal sealed record ClientJob(
    int Client, AdapterState Start, IReadOnlyList<EncodedSample> Data, FitInstructions Fit, AdapterState? Global,
    Random Order, Generator? Noise = null);

/// <summary>What a client's local training ended with.</summary>
/// <param name="Trained">Its trained adapters (the caller disposes them).</param>
/// <param name="Loss">Its mean training loss.</param>
/// <param name="Fisher">Its Fisher estimate when asked (squared mini-batch gradients, or the exact pass's).</param>
/// <param name="SplitBytes">Bytes it moved across the split (read from <see cref="SplitTraffic"/>).</param>
internal sealed record ClientOutcome(AdapterState Trained, double Loss, AdapterState? Fisher, long SplitBytes = 0);

internal sealed partial class ClientTrainer
{
    /// <summary>
    /// Trains several clients together, each with its own adapters, AdamW state, data order and number of steps:
    /// at step s every client that still has a mini-batch s contributes it, their adapters are stacked and
    /// selected per sample (NanoEdge's stacked <c>Adapt</c>), and forwards and backwards through the frozen LLM of up
    /// to <c>train_batch_tokens</c> each, whichever clients their samples belong to, serve them all. The loss
    /// back-propagated is the sum over clients of each one's batch-mean loss, so each
    /// client's gradient is its own; the rest of its step (clipping, proximal and extra terms, squared gradients)
    /// is <see cref="LocalOptimisation.Step"/> on its own parameters. With <c>dp</c>, each client's gradient is
    /// DP-SGD's instead (<see cref="PrivateStep"/>): the exact per-sample gradients of every sample of the pass with
    /// its own client's adapters, clipped, summed and noised per client from the client's own generator. The same
    /// result as <see cref="Train"/> client by client, to float rounding. The step loop is <see cref="StepTogether"/>.
    /// </summary>
    public ClientOutcome[] TrainBatched(IReadOnlyList<ClientJob> jobs)
    {
        var names = edge.AdapterParameters().Select(p => p.name).ToArray();
        var parameters = jobs.Select(j => names.Select(n => (n, new Parameter(j.Start[n].clone()))).ToArray())
            .ToArray();
        var runs = jobs.Select((j, i) => new LocalOptimisation(
            parameters[i], j.Data, j.Fit, j.Global, j.Order, config, config.LocalEpochs, null)).ToArray();
        try
        {
            Tensor? sent = null;
            var perSample = new List<Dictionary<string, Tensor>>();
            Tensor Pass(EncodedBatch batch, Tensor index, Tensor weight, int[] active)
            {
                var raw = edge.RawSequence(batch);
                var live = active.Select(i => runs[i].Live).ToArray();
                if (config.Dp is null)
                {
                    sent = edge.Adapt(raw, batch.IsImage, index, live);
                    var (nll, grad) = server.LossAndGradient(sent.detach(), batch.Labels, sum: true);
                    sent.backward([Weighted(grad, weight)]);
                    return nll;
                }
                using (no_grad()) sent = edge.Adapt(raw, batch.IsImage, index, live);
                var (dpNll, g) = server.LossAndGradient(sent, batch.Labels, sum: true);
                using (no_grad())
                    perSample.Add(PerSampleGradients(raw, g, batch.IsImage,
                        name => stack(live.Select(l => l[name]))[index]));
                return dpNll;
            }
            void BeforeSteps(int[] active, int[] counts, Tensor unsort)
            {
                if (perSample.Count == 0) return;
                var grads = names.ToDictionary(n => n, n => cat(perSample.Select(g => g[n]).ToArray(), 0)[unsort]);
                perSample.Clear();
                for (int a = 0, offset = 0; a < active.Length; offset += counts[a++])
                    SetNoisyMean(parameters[active[a]], grads.ToDictionary(g => g.Key,
                        g => g.Value[offset..(offset + counts[a])]), config.Dp!, jobs[active[a]].Noise!);
            }
            StepTogether(runs, config.TrainBatchTokens, edge.Device, Pass, BeforeSteps,
                (i, own) => Traffic.Step(jobs[i].Client, own, sent!));
            return runs.Select((run, i) =>
            {
                var (loss, squared) = run.Result();
                var trained = new AdapterState(parameters[i].ToDictionary(p => p.n, p => p.Item2.detach().clone()));
                return new ClientOutcome(trained, loss, squared);
            }).ToArray();
        }
        finally
        {
            foreach (var run in runs) run.Dispose();
            foreach (var (_, p) in parameters.SelectMany(p => p)) p.Dispose();
        }
    }

    /// <summary>
    /// Steps several clients' local optimisations together until all are done. At each step every run with a
    /// mini-batch left contributes it; the samples, sorted by length, go through <paramref name="pass"/> in chunks of
    /// at most <paramref name="budget"/> tokens (so a step's activations are bounded however many clients train
    /// together), gradients accumulating over the chunks. <c>pass(batch, client, weight, active)</c> back-propagates
    /// and returns the per-sample task loss [B]; <c>client</c> [B] indexes <c>active</c> (the runs of the step) and
    /// <c>weight</c> [B] is 1 / the sample's run's batch size, so that back-propagating the weighted sum gives each
    /// run the gradient of its own batch-mean loss. Then <paramref name="beforeSteps"/> (the step's active runs, their
    /// batch sizes, the permutation back from chunk order), and each run's <see cref="LocalOptimisation.Step"/>,
    /// followed by <paramref name="afterStep"/> with its samples.
    /// </summary>
    internal static void StepTogether(LocalOptimisation[] runs, long budget, Device device,
        Func<EncodedBatch, Tensor, Tensor, int[], Tensor> pass, Action<int[], int[], Tensor>? beforeSteps = null,
        Action<int, EncodedSample[]>? afterStep = null)
    {
        while (runs.Select((run, i) => (i, samples: run.Next())).Where(a => a.samples is not null).ToArray() is
               { Length: > 0 } step)
        {
            using var scope = NewDisposeScope();
            var active = step.Select(a => a.i).ToArray();
            var counts = step.Select(a => a.samples!.Length).ToArray();
            var samples = step.SelectMany(a => a.samples!).ToArray();
            var client = counts.SelectMany((n, c) => Enumerable.Repeat((long)c, n)).ToArray();
            var weights = counts.SelectMany(n => Enumerable.Repeat(1f / n, n)).ToArray();
            foreach (var i in active) runs[i].ZeroGrad();
            var order = Enumerable.Range(0, samples.Length).OrderBy(j => Length(samples[j])).ToArray();
            var nlls = new List<Tensor>();
            int c = 0;
            foreach (var chunk in Evaluator.Batches(order.Select(j => samples[j]), Length, budget))
            {
                var rows = order[c..(c + chunk.Length)];
                using var batch = EncodedBatch.Create(chunk, true, 0, device);
                nlls.Add(pass(batch, tensor(rows.Select(j => client[j]).ToArray(), device: device),
                    tensor(rows.Select(j => weights[j]).ToArray(), device: device), active));
                c += chunk.Length;
            }
            var unsort = tensor(Inverse(order), device: device);
            var all = cat(nlls.ToArray(), 0)[unsort];
            beforeSteps?.Invoke(active, counts, unsort);
            for (int a = 0, offset = 0; a < active.Length; offset += counts[a++])
            {
                runs[active[a]].Step(all[offset..(offset + counts[a])].mean(), counts[a]);
                afterStep?.Invoke(active[a], step[a].samples!);
            }
        }
    }

    /// <summary>Each sample's rows of <paramref name="gradient"/> [B, T, d] times its <paramref name="weight"/> [B]
    /// (in float32).</summary>
    internal static Tensor Weighted(Tensor gradient, Tensor weight) =>
        (gradient.to_type(ScalarType.Float32) * weight.view(-1, 1, 1)).to_type(gradient.dtype);

    /// <summary>A training sample's tokens: prompt and target.</summary>
    private static int Length(EncodedSample s) => s.PromptIds.Length + s.TargetIds.Length;

    /// <summary>The permutation that undoes <paramref name="order"/>.</summary>
    internal static long[] Inverse(int[] order)
    {
        var inverse = new long[order.Length];
        for (int j = 0; j < order.Length; j++) inverse[order[j]] = j;
        return inverse;
    }
}
