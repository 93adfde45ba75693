using FedNano.Edge;
using FedNano.Strategies;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>
/// Local training of a client's NanoAdapters across the split: the client runs its NanoEdge, the server runs
/// the frozen LLM and the loss, and only the gradient with respect to the sequence comes back. Counts what
/// crosses the split.
/// </summary>
internal sealed class ClientTrainer(NanoEdge edge, SplitServer server, SimulationConfig config)
{
    /// <summary>Bytes that crossed the split (activations up, gradients down) since creation.</summary>
    public long SplitBytes { get; private set; }

    /// <summary>
    /// Trains the edge's adapters (already loaded with the starting state) on <paramref name="train"/> for the
    /// configured epochs (or exactly <paramref name="steps"/> mini-batches, reshuffling after each pass); returns
    /// the mean training loss and, when asked, the squared-gradient Fisher estimate.
    /// </summary>
    public (double loss, AdapterState? squaredGrads) Train(IReadOnlyList<EncodedSample> train, FitInstructions fit, AdapterState? global, Random rng, int? steps = null)
    {
        edge.train();
        try
        {
            return Optimise(edge.AdapterParameters().ToArray(), train, fit, global, rng, config, config.LocalEpochs, steps, edge.Device, batch =>
            {
                var sent = edge.Forward(batch);                                    // client: NanoEdge
                var (nll, grad) = server.LossAndGradient(sent.detach(), batch.Labels); // split up; server: LLM + loss
                sent.backward([grad]);                                             // split down, into the adapters
                SplitBytes += 2 * sent.numel() * sent.ElementSize;
                return nll.mean();
            });
        }
        finally { edge.eval(); }
    }

    /// <summary>
    /// The local optimisation loop shared by every client-training path: AdamW over <paramref name="parameters"/>,
    /// mini-batches of <paramref name="data"/> in the order drawn from <paramref name="rng"/>; <paramref name="step"/>
    /// runs the forward and backward of the task loss on a batch and returns the loss. Adds the strategy's proximal and
    /// extra loss terms, accumulates squared mini-batch gradients (of the task loss) when asked, and clips the gradient
    /// to <c>max_grad_norm</c> before each step.
    /// </summary>
    internal static (double loss, AdapterState? squaredGrads) Optimise(
        IReadOnlyList<(string name, Parameter parameter)> parameters, IReadOnlyList<EncodedSample> data, FitInstructions fit, AdapterState? global,
        Random rng, SimulationConfig config, int epochs, int? steps, Device device, Func<EncodedBatch, Tensor> step)
    {
        using var optimizer = optim.AdamW(parameters.Select(p => p.parameter), config.LearningRate, weight_decay: config.WeightDecay);
        var squared = fit.AccumulateSquaredGradients ? parameters.ToDictionary(p => p.name, p => zeros_like(p.parameter)) : null;
        var live = parameters.ToDictionary(p => p.name, p => (Tensor)p.parameter);
        int done = 0;
        double lossSum = 0;
        long seen = 0;
        for (int epoch = 0; data.Count > 0 && (steps is { } s ? done < s : epoch < epochs); epoch++)
        {
            var order = data.OrderBy(_ => rng.Next()).ToArray();
            for (int i = 0; i < order.Length && (steps is null || done < steps); i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                using var batch = EncodedBatch.Create(order[i..Math.Min(i + config.BatchSize, order.Length)], true, 0, device);
                optimizer.zero_grad();
                var loss = step(batch);
                if (squared is not null)
                    using (no_grad())
                        foreach (var (name, p) in parameters) squared[name].add_(p.grad!.pow(2));
                if (fit.ProximalMu > 0 && global is not null)
                    (parameters.Select(p => (p.parameter - global[p.name]).pow(2).sum()).Aggregate((a, b) => a + b) * (fit.ProximalMu / 2)).backward();
                fit.ExtraLoss?.Invoke(live).backward();
                if (config.MaxGradNorm > 0) nn.utils.clip_grad_norm_(parameters.Select(p => p.parameter), config.MaxGradNorm);
                optimizer.step();
                lossSum += loss.item<float>() * batch.Count;
                seen += batch.Count;
                done++;
            }
        }
        AdapterState? fisher = squared is null ? null : new AdapterState(squared.ToDictionary(p => p.Key, p => p.Value.div_(Math.Max(done, 1))));
        return (seen == 0 ? 0 : lossSum / seen, fisher);
    }

    /// <summary>Mini-batches one pass of the configured local epochs over <paramref name="samples"/> takes.</summary>
    public int StepsFor(int samples) => config.LocalEpochs * ((samples + config.BatchSize - 1) / config.BatchSize);

    /// <summary>
    /// The empirical diagonal Fisher of the adapters on <paramref name="data"/>: the mean over samples of the
    /// squared per-sample gradient of the target's log-likelihood, computed exactly from batched passes
    /// (see <see cref="Adapters.NanoAdapter.SquaredPerSampleGradients"/>).
    /// </summary>
    public AdapterState Fisher(IReadOnlyList<EncodedSample> data)
    {
        var sums = edge.AdapterParameters().ToDictionary(p => p.name, p => zeros_like(p.parameter));
        for (int i = 0; i < data.Count; i += config.BatchSize)
        {
            using var scope = NewDisposeScope();
            using var batch = EncodedBatch.Create(data.Skip(i).Take(config.BatchSize).ToArray(), true, 0, edge.Device);
            var raw = edge.RawSequence(batch);
            Tensor sent;
            using (no_grad()) sent = edge.Adapt(raw, batch.IsImage);
            var (_, g) = server.LossAndGradient(sent, batch.Labels, sum: true);
            SplitBytes += 2 * sent.numel() * sent.ElementSize;
            using (no_grad())
            {
                foreach (var (name, t) in edge.AdapterI.SquaredPerSampleGradients(raw, g, batch.IsImage)) sums["adapter_i." + name].add_(t);
                foreach (var (name, t) in edge.AdapterT.SquaredPerSampleGradients(raw, g, batch.IsImage.logical_not())) sums["adapter_t." + name].add_(t);
            }
        }
        return new AdapterState(sums.ToDictionary(p => p.Key, p => p.Value.div_(Math.Max(data.Count, 1))));
    }
}
