using FedNano.Edge;
using FedNano.Fisher;
using FedNano.Strategies;
using TorchSharp;
using AdapterTensors = System.Collections.Generic.IReadOnlyDictionary<string, TorchSharp.torch.Tensor>;
using Samples = System.Collections.Generic.IReadOnlyList<FedNano.Edge.EncodedSample>;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>One client's part of a Fisher pass.</summary>
/// <param name="Client">Its index (its traffic counts to it).</param>
/// <param name="Adapters">Its adapters by name.</param>
/// <param name="Data">Its training samples.</param>
/// <param name="Pass">Which answers' log-likelihood gradients it squares.</param>
/// <param name="Generator">Its seeded source of any answer draw.</param>
internal sealed record FisherJob(
    int Client, AdapterTensors Adapters, Samples Data, IFisherPass Pass, Generator Generator);

/// <summary>
/// Local training of a client's NanoAdapters across the split: the client runs its NanoEdge, the server runs
/// the frozen LLM and the loss, and only the gradient with respect to the sequence comes back. Counts what
/// crosses the split, by client, in <see cref="Traffic"/>.
/// </summary>
internal sealed partial class ClientTrainer(
    NanoEdge edge, SplitServer server, SimulationConfig config, SplitTraffic? traffic = null)
{
    /// <summary>What each client moved across the split (activations up, gradients down).</summary>
    public SplitTraffic Traffic { get; } = traffic ?? new();

    /// <summary>
    /// Trains the edge's adapters (already loaded with the starting state) on <paramref name="train"/> for the
    /// configured epochs (or exactly <paramref name="steps"/> mini-batches, reshuffling after each pass); returns
    /// the mean training loss and, when asked, the gradient observer's Fisher estimate (<see cref="IGradientFisher"/>).
    /// With <c>dp</c> set and a <paramref name="noise"/> generator, every step's gradient is DP-SGD's
    /// (<see cref="PrivateStep"/>). Traffic counts to <paramref name="client"/>.
    /// </summary>
    public (double loss, AdapterState? fisher) Train(IReadOnlyList<EncodedSample> train, FitInstructions fit,
        AdapterState? global, Random rng, int? steps = null, Generator? noise = null, int client = 0)
    {
        edge.train();
        try
        {
            Func<EncodedBatch, Tensor> step = config.Dp is { } dp && noise is not null
                ? batch => PrivateStep(batch, dp, noise, client)
                : batch => SplitStep(batch, edge.Adapt, client);
            return Optimise(edge.AdapterParameters().ToArray(), train, fit, global, rng, config, config.LocalEpochs,
                steps, edge.Device, step);
        }
        finally { edge.eval(); }
    }

    /// <summary>
    /// <see cref="Train"/> of trainable <paramref name="parameters"/> of the client's own, which
    /// <paramref name="transform"/> applies to the frozen input sequence [B, T, d] and its image mask [B, T] in place
    /// of the NanoAdapters (a user's client algorithm); no DP.
    /// </summary>
    public (double loss, AdapterState? fisher) TrainOwn(IReadOnlyList<(string name, Parameter parameter)> parameters,
        Func<Tensor, Tensor, Tensor> transform, IReadOnlyList<EncodedSample> train, FitInstructions fit,
        AdapterState? global, Random rng, int? steps, int client) =>
        Optimise(parameters, train, fit, global, rng, config, config.LocalEpochs, steps, edge.Device,
            batch => SplitStep(batch, transform, client));

    /// <summary>One step's forward and backward across the split; returns the batch-mean loss.</summary>
    private Tensor SplitStep(EncodedBatch batch, Func<Tensor, Tensor, Tensor> transform, int client)
    {
        using var raw = edge.RawSequence(batch);
        var sent = transform(raw, batch.IsImage);                              // client: NanoEdge
        var (nll, grad) = server.LossAndGradient(sent.detach(), batch.Labels); // split up: LLM + loss
        sent.backward([grad]);                                                 // split down, into the client
        Traffic.Step(client, batch.Samples, sent);
        return nll.mean();
    }

    /// <summary>
    /// The local optimisation loop shared by every client-training path: AdamW over <paramref name="parameters"/>,
    /// mini-batches of <paramref name="data"/> in the order drawn from <paramref name="rng"/>; <paramref name="step"/>
    /// runs the forward and backward of the task loss on a batch and returns the loss. The rest of a step is
    /// <see cref="LocalOptimisation.Step"/>'s.
    /// </summary>
    internal static (double loss, AdapterState? fisher) Optimise(
        IReadOnlyList<(string name, Parameter parameter)> parameters, IReadOnlyList<EncodedSample> data,
        FitInstructions fit, AdapterState? global, Random rng, SimulationConfig config, int epochs, int? steps,
        Device device, Func<EncodedBatch, Tensor> step)
    {
        using var run = new LocalOptimisation(parameters, data, fit, global, rng, config, epochs, steps);
        while (run.Next() is { } samples)
        {
            using var scope = NewDisposeScope();
            using var batch = EncodedBatch.Create(samples, true, 0, device);
            run.ZeroGrad();
            run.Step(step(batch), batch.Count);
        }
        return run.Result();
    }

    /// <summary>Mini-batches one pass of the configured local epochs over <paramref name="samples"/> takes.</summary>
    public int StepsFor(int samples) => config.LocalEpochs * ((samples + config.BatchSize - 1) / config.BatchSize);

    /// <summary>
    /// The diagonal Fisher of the edge's adapters on <paramref name="data"/> by <paramref name="pass"/> (default: the
    /// empirical one): the mean over samples of the squared per-sample gradient of the log-likelihood of the answer
    /// the pass picks (the target, or one drawn from <paramref name="generator"/>), computed exactly from batched
    /// passes (see <see cref="Adapters.NanoAdapter.PerSampleGradientsOf"/>); with <c>dp</c> and a
    /// <paramref name="noise"/> generator, the clipped and noised empirical one of <see cref="PrivateFisher"/>.
    /// Traffic counts to <paramref name="client"/>.
    /// </summary>
    public AdapterState Fisher(IReadOnlyList<EncodedSample> data, IFisherPass? pass = null, Generator? generator = null,
        Generator? noise = null, int client = 0)
    {
        if (config.Dp is { } dp && noise is not null) return PrivateFisher(data, dp, noise, client);
        var live = edge.AdapterParameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var job = new FisherJob(client, live, data, pass ?? new EmpiricalFisher(), generator ?? new Generator(0));
        return FisherPass([job], edgeAdapters: true)[0];
    }

    /// <summary>
    /// <see cref="Fisher(IReadOnlyList{EncodedSample}, IFisherPass?, Generator?, Generator?, int)"/> of several
    /// clients' adapters, each on its own data with its own pass, their i-th batches in one pass through the frozen LLM
    /// (adapters stacked as in <see cref="TrainBatched"/>).
    /// </summary>
    public AdapterState[] Fisher(IReadOnlyList<FisherJob> clients)
        => FisherPass(clients, edgeAdapters: false);

    /// <summary>Consecutive groups of clients' batches of at most <c>batch_size</c> samples in all.</summary>
    private IEnumerable<(int k, EncodedSample[] samples)[]> Groups(
        IEnumerable<(int k, EncodedSample[] samples)> batches)
    {
        var group = new List<(int k, EncodedSample[] samples)>();
        foreach (var b in batches)
        {
            if (group.Count > 0 && group.Sum(g => g.samples.Length) + b.samples.Length > config.BatchSize)
            {
                yield return group.ToArray();
                group.Clear();
            }
            group.Add(b);
        }
        if (group.Count > 0) yield return group.ToArray();
    }

    /// <summary>The client index [B] of a batch of consecutive runs of <paramref name="counts"/> samples.</summary>
    private Tensor ClientIndex(int[] counts) =>
        tensor(counts.SelectMany((n, c) => Enumerable.Repeat((long)c, n)).ToArray(), device: edge.Device);

    /// <summary>The Fisher pass; with <paramref name="edgeAdapters"/> the one client's adapters are the
    /// edge's.</summary>
    private AdapterState[] FisherPass(IReadOnlyList<FisherJob> clients, bool edgeAdapters)
    {
        var sums = clients.Select(c => c.Adapters.ToDictionary(p => p.Key, p => zeros_like(p.Value))).ToArray();
        for (int i = 0; clients.Any(c => i < c.Data.Count); i += config.BatchSize)
            // the clients' i-th batches, together in passes of at most batch_size samples (one client's step's memory)
            foreach (var group in Groups(clients.Select((c, k) => (k, samples: c.Data.Skip(i).Take(config.BatchSize)
                         .ToArray())).Where(a => a.samples.Length > 0)))
            {
                using var scope = NewDisposeScope();
                var client = ClientIndex(group.Select(a => a.samples.Length).ToArray());
                var adapters = group.Select(a => clients[a.k].Adapters).ToArray();
                Tensor Weights(string name) =>
                    edgeAdapters ? adapters[0][name] : stack(adapters.Select(a => a[name]))[client];
                Tensor Send(EncodedBatch b, Tensor raw)
                {
                    using (no_grad())
                        return edgeAdapters ? edge.Adapt(raw, b.IsImage) : edge.Adapt(raw, b.IsImage, client, adapters);
                }
                var active = Answered(group, clients, Send);
                using var batch =
                    EncodedBatch.Create(active.SelectMany(a => a.samples).ToArray(), true, 0, edge.Device);
                var raw = edge.RawSequence(batch);
                var sent = Send(batch, raw);
                var (_, g) = server.LossAndGradient(sent, batch.Labels, sum: true);
                foreach (var (k, samples) in active) Traffic.Step(clients[k].Client, samples, sent);
                using (no_grad())
                    foreach (var (name, t) in PerSampleGradients(raw, g, batch.IsImage, Weights))
                    {
                        int offset = 0;
                        foreach (var (k, samples) in active)
                        {
                            sums[k][name].add_(t[offset..(offset + samples.Length)].pow(2).sum(dim: 0));
                            offset += samples.Length;
                        }
                    }
            }
        return sums.Select((s, k) => new AdapterState(
            s.ToDictionary(p => p.Key, p => p.Value.div_(Math.Max(clients[k].Data.Count, 1))))).ToArray();
    }

    /// <summary>
    /// The samples of a Fisher batch, the clients' runs <paramref name="group"/>, each with the answer its client's
    /// pass picks as its target (a copy with that option's letter where it is not the true one). The options are
    /// scored (the sequences up, <paramref name="send"/>, and the option scores down, counted in <see cref="Traffic"/>)
    /// at most once, only if a pass asks.
    /// </summary>
    private (int k, EncodedSample[] samples)[] Answered((int k, EncodedSample[] samples)[] group,
        IReadOnlyList<FisherJob> clients, Func<EncodedBatch, Tensor, Tensor> send)
    {
        Tensor? scores = null;
        Tensor Scores()
        {
            if (scores is not null) return scores;
            using var batch = EncodedBatch.Create(group.SelectMany(a => a.samples).ToArray(), true, 0, edge.Device);
            int width = Math.Max(1, batch.Samples.Max(s => s.ChoiceIds.Length));
            var ids = batch.Samples.SelectMany(s => Enumerable.Range(0, width)
                .Select(c => c < s.ChoiceIds.Length ? (long)s.ChoiceIds[c] : 0)).ToArray();
            var offered = batch.Samples.SelectMany(s => Enumerable.Range(0, width)
                .Select(c => c < s.ChoiceIds.Length)).ToArray();
            var sent = send(batch, edge.RawSequence(batch));
            using (no_grad())
                scores = server.NextTokenLogProbs(sent, batch.AnswerPositions)
                    .gather(1, tensor(ids, [batch.Count, width], device: sent.device))
                    .masked_fill(tensor(offered, [batch.Count, width], device: sent.device).logical_not(),
                        double.NegativeInfinity).cpu();
            foreach (var (k, samples) in group)
                Traffic.Add(clients[k].Client, SplitTraffic.Sequences(samples.Length,
                        samples.Max(s => s.PromptIds.Length + s.TargetIds.Length), sent)
                    + SplitTraffic.Scores(samples.Sum(s => s.ChoiceIds.Length)));
            return scores;
        }
        int offset = 0;
        return group.Select(a =>
        {
            int from = offset;
            offset += a.samples.Length;
            var truth = tensor(a.samples.Select(s => (long)s.Sample.AnswerIndex).ToArray());
            var picked = clients[a.k].Pass.Answers(truth, () => Scores()[from..(from + a.samples.Length)],
                clients[a.k].Generator).cpu().data<long>().ToArray();
            return (a.k, a.samples.Select((s, b) => s.ChoiceIds.Length == 0 || picked[b] == s.Sample.AnswerIndex ? s
                : s with { TargetIds = [s.ChoiceIds[picked[b]], .. s.TargetIds[1..]] }).ToArray());
        }).ToArray();
    }

}
