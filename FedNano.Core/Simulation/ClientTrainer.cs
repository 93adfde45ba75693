using FedNano.Edge;
using FedNano.Strategies;
using TorchSharp;
using AdapterTensors = System.Collections.Generic.IReadOnlyDictionary<string, TorchSharp.torch.Tensor>;
using Samples = System.Collections.Generic.IReadOnlyList<FedNano.Edge.EncodedSample>;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

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
    /// the mean training loss and, when asked, the squared-gradient Fisher estimate. With <c>dp</c> set and a
    /// <paramref name="noise"/> generator, every step's gradient is DP-SGD's (<see cref="PrivateStep"/>). Traffic
    /// counts to <paramref name="client"/>.
    /// </summary>
    public (double loss, AdapterState? squaredGrads) Train(IReadOnlyList<EncodedSample> train, FitInstructions fit,
        AdapterState? global, Random rng, int? steps = null, Generator? noise = null, int client = 0)
    {
        edge.train();
        try
        {
            Func<EncodedBatch, Tensor> step = config.Dp is { } dp && noise is not null
                ? batch => PrivateStep(batch, dp, noise, client)
                : batch =>
                {
                    var sent = edge.Forward(batch);                                    // client: NanoEdge
                    var (nll, grad) = server.LossAndGradient(sent.detach(), batch.Labels); // split up: LLM + loss
                    sent.backward([grad]);                                             // split down, into the adapters
                    Traffic.Step(client, batch.Samples, sent);
                    return nll.mean();
                };
            return Optimise(edge.AdapterParameters().ToArray(), train, fit, global, rng, config, config.LocalEpochs,
                steps, edge.Device, step);
        }
        finally { edge.eval(); }
    }

    /// <summary>
    /// The local optimisation loop shared by every client-training path: AdamW over <paramref name="parameters"/>,
    /// mini-batches of <paramref name="data"/> in the order drawn from <paramref name="rng"/>; <paramref name="step"/>
    /// runs the forward and backward of the task loss on a batch and returns the loss. The rest of a step is
    /// <see cref="LocalOptimisation.Step"/>'s.
    /// </summary>
    internal static (double loss, AdapterState? squaredGrads) Optimise(
        IReadOnlyList<(string name, Parameter parameter)> parameters, IReadOnlyList<EncodedSample> data, FitInstructions fit, AdapterState? global,
        Random rng, SimulationConfig config, int epochs, int? steps, Device device, Func<EncodedBatch, Tensor> step)
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
    /// The empirical diagonal Fisher of the adapters on <paramref name="data"/>: the mean over samples of the
    /// squared per-sample gradient of the target's log-likelihood, computed exactly from batched passes
    /// (see <see cref="Adapters.NanoAdapter.SquaredPerSampleGradients"/>); with <c>dp</c> and a
    /// <paramref name="noise"/> generator, the clipped and noised one of <see cref="PrivateFisher"/>. Traffic counts
    /// to <paramref name="client"/>.
    /// </summary>
    public AdapterState Fisher(IReadOnlyList<EncodedSample> data, Generator? noise = null, int client = 0)
    {
        if (config.Dp is { } dp && noise is not null) return PrivateFisher(data, dp, noise, client);
        var live = edge.AdapterParameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        return FisherPass([(client, live, data)], edgeAdapters: true)[0];
    }

    /// <summary>
    /// <see cref="Fisher(IReadOnlyList{EncodedSample}, Generator, int)"/> of several clients' adapters, each on its
    /// own data, their i-th batches in one pass through the frozen LLM (adapters stacked as in
    /// <see cref="TrainBatched"/>).
    /// </summary>
    public AdapterState[] Fisher(IReadOnlyList<(int client, AdapterTensors adapters, Samples data)> clients)
        => FisherPass(clients, edgeAdapters: false);

    /// <summary>Consecutive groups of clients' batches of at most <c>batch_size</c> samples in all.</summary>
    private IEnumerable<(int k, EncodedSample[] samples)[]> Groups(IEnumerable<(int k, EncodedSample[] samples)> batches)
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

    /// <summary>The Fisher pass; with <paramref name="edgeAdapters"/> the one client's adapters are the edge's.</summary>
    private AdapterState[] FisherPass(
        IReadOnlyList<(int client, AdapterTensors adapters, Samples data)> clients, bool edgeAdapters)
    {
        var sums = clients.Select(c => c.adapters.ToDictionary(p => p.Key, p => zeros_like(p.Value))).ToArray();
        var sides = new[] { ("adapter_i", edge.AdapterI.Scale, false), ("adapter_t", edge.AdapterT.Scale, true) };
        for (int i = 0; clients.Any(c => i < c.data.Count); i += config.BatchSize)
            // the clients' i-th batches, together in passes of at most batch_size samples (one client's step's memory)
            foreach (var active in Groups(clients.Select((c, k) => (k, samples: c.data.Skip(i).Take(config.BatchSize)
                         .ToArray())).Where(a => a.samples.Length > 0)))
            {
                using var scope = NewDisposeScope();
                using var batch = EncodedBatch.Create(active.SelectMany(a => a.samples).ToArray(), true, 0, edge.Device);
                var client = ClientIndex(active.Select(a => a.samples.Length).ToArray());
                var adapters = active.Select(a => clients[a.k].adapters).ToArray();
                Tensor Weights(string name) => edgeAdapters ? adapters[0][name] : stack(adapters.Select(a => a[name]))[client];
                var raw = edge.RawSequence(batch);
                Tensor sent;
                using (no_grad())
                    sent = edgeAdapters ? edge.Adapt(raw, batch.IsImage) : edge.Adapt(raw, batch.IsImage, client, adapters);
                var (_, g) = server.LossAndGradient(sent, batch.Labels, sum: true);
                foreach (var (k, samples) in active) Traffic.Step(clients[k].client, samples, sent);
                using (no_grad())
                    foreach (var (prefix, scale, text) in sides)
                    {
                        var mask = text ? batch.IsImage.logical_not() : batch.IsImage;
                        var down = Weights(prefix + ".down.weight");
                        var up = Weights(prefix + ".up.weight");
                        foreach (var (name, t) in Adapters.NanoAdapter.PerSampleGradientsOf(raw, g, mask, down, up, scale))
                        {
                            int offset = 0;
                            foreach (var (k, samples) in active)
                            {
                                sums[k][prefix + "." + name].add_(t[offset..(offset + samples.Length)].pow(2).sum(dim: 0));
                                offset += samples.Length;
                            }
                        }
                    }
            }
        return sums.Select((s, k) => new AdapterState(
            s.ToDictionary(p => p.Key, p => p.Value.div_(Math.Max(clients[k].data.Count, 1))))).ToArray();
    }
}
