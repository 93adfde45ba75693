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
    /// result as <see cref="Train"/> client by client, to float rounding.
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
            while (runs.Select((run, i) => (i, samples: run.Next())).Where(a => a.samples is not null).ToArray() is
                   { Length: > 0 } active)
            {
                using var scope = NewDisposeScope();
                var counts = active.Select(a => a.samples!.Length).ToArray();
                var samples = active.SelectMany(a => a.samples!).ToArray();
                var client = counts.SelectMany((n, c) => Enumerable.Repeat((long)c, n)).ToArray();
                // each sample's gradient times 1 / its client's batch size: the gradient of the sum of batch means
                var weights = counts.SelectMany(n => Enumerable.Repeat(1f / n, n)).ToArray();
                foreach (var (i, _) in active) runs[i].ZeroGrad();
                var live = active.Select(a => runs[a.i].Live).ToArray();
                // through the LLM in chunks of at most train_batch_tokens, so a step's activations are bounded
                // however many clients train together; sorted by length, so a chunk pads little; gradients
                // accumulate over the chunks
                var order = Enumerable.Range(0, samples.Length).OrderBy(j => Length(samples[j])).ToArray();
                var nlls = new List<Tensor>();
                var perSample = new List<Dictionary<string, Tensor>>();
                Tensor? sent = null;
                int c = 0;
                foreach (var chunk in Evaluator.Batches(order.Select(j => samples[j]), Length, config.TrainBatchTokens))
                {
                    var rows = order[c..(c + chunk.Length)];
                    using var batch = EncodedBatch.Create(chunk, true, 0, edge.Device);
                    var raw = edge.RawSequence(batch);
                    var index = tensor(rows.Select(j => client[j]).ToArray(), device: edge.Device);
                    if (config.Dp is not null)
                    {
                        using (no_grad()) sent = edge.Adapt(raw, batch.IsImage, index, live);
                        var (nll, grad) = server.LossAndGradient(sent, batch.Labels, sum: true);
                        using (no_grad())
                            perSample.Add(PerSampleGradients(raw, grad, batch.IsImage,
                                name => stack(live.Select(l => l[name]))[index]));
                        nlls.Add(nll);
                    }
                    else
                    {
                        sent = edge.Adapt(raw, batch.IsImage, index, live);
                        var (nll, grad) = server.LossAndGradient(sent.detach(), batch.Labels, sum: true);
                        var weight = tensor(rows.Select(j => weights[j]).ToArray(), device: edge.Device)
                            .view(-1, 1, 1);
                        sent.backward([(grad.to_type(ScalarType.Float32) * weight).to_type(grad.dtype)]);
                        nlls.Add(nll);
                    }
                    c += chunk.Length;
                }
                var unsort = tensor(Inverse(order), device: edge.Device);
                var all = cat(nlls.ToArray(), 0)[unsort];
                var grads = perSample.Count == 0 ? null
                    : names.ToDictionary(n => n, n => cat(perSample.Select(g => g[n]).ToArray(), 0)[unsort]);
                int offset = 0;
                foreach (var (i, own) in active)
                {
                    if (grads is not null)
                        SetNoisyMean(parameters[i], grads.ToDictionary(g => g.Key,
                            g => g.Value[offset..(offset + own!.Length)]), config.Dp!, jobs[i].Noise!);
                    runs[i].Step(all[offset..(offset + own!.Length)].mean(), own.Length);
                    Traffic.Step(jobs[i].Client, own, sent!);
                    offset += own.Length;
                }
            }
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

    /// <summary>A training sample's tokens: prompt and target.</summary>
    private static int Length(EncodedSample s) => s.PromptIds.Length + s.TargetIds.Length;

    /// <summary>The permutation that undoes <paramref name="order"/>.</summary>
    private static long[] Inverse(int[] order)
    {
        var inverse = new long[order.Length];
        for (int j = 0; j < order.Length; j++) inverse[order[j]] = j;
        return inverse;
    }
}
