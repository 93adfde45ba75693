using FedNano.Edge;
using FedNano.Fisher;
using FedNano.Strategies;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>
/// One client's local optimisation, a step at a time: AdamW over its own parameters, its mini-batches in the
/// order drawn from its generator (reshuffled each epoch), and after the task loss's backward the rest of a
/// step — a Fisher estimator's gradient observer (of the task loss) when asked, the strategy's proximal and extra
/// loss terms, clipping to <c>max_grad_norm</c> over its own parameters, the optimiser step. Several of them can be
/// stepped together, their task losses back-propagated in one pass (<see cref="ClientTrainer.TrainBatched"/>).
/// </summary>
internal sealed class LocalOptimisation : IDisposable
{
    private readonly IReadOnlyList<(string name, Parameter parameter)> parameters;
    private readonly FitInstructions fit;
    private readonly AdapterState? global;
    private readonly double maxGradNorm;
    private readonly optim.Optimizer optimizer;
    private readonly IGradientObserver? observer;
    private readonly IEnumerator<EncodedSample[]> batches;
    private int done;
    private double lossSum;
    private long seen;

    public LocalOptimisation(IReadOnlyList<(string name, Parameter parameter)> parameters,
        IReadOnlyList<EncodedSample> data, FitInstructions fit, AdapterState? global, Random rng,
        SimulationConfig config, int epochs, int? steps)
    {
        this.parameters = parameters;
        this.fit = fit;
        this.global = global;
        maxGradNorm = config.MaxGradNorm;
        var trainable = parameters.Select(p => p.parameter);
        optimizer = optim.AdamW(trainable, config.LearningRate, weight_decay: config.WeightDecay);
        Live = parameters.ToDictionary(p => p.name, p => (Tensor)p.parameter);
        observer = (fit.Fisher as IGradientFisher)?.Observe(Live);
        batches = Batches(data, rng, config.BatchSize, epochs, steps).GetEnumerator();
    }

    /// <summary>The live trainable parameters by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Live { get; }

    private IEnumerable<EncodedSample[]> Batches(
        IReadOnlyList<EncodedSample> data, Random rng, int size, int epochs, int? steps)
    {
        for (int epoch = 0; data.Count > 0 && (steps is { } s ? done < s : epoch < epochs); epoch++)
        {
            var order = data.OrderBy(_ => rng.Next()).ToArray();
            for (int i = 0; i < order.Length && (steps is null || done < steps); i += size)
                yield return order[i..Math.Min(i + size, order.Length)];
        }
    }

    /// <summary>The next mini-batch, or null when local training is over.</summary>
    public EncodedSample[]? Next() => batches.MoveNext() ? batches.Current : null;

    /// <summary>Clears the gradients before a step's task-loss backward.</summary>
    public void ZeroGrad() => optimizer.zero_grad();

    /// <summary>
    /// The rest of a step once the gradient of the batch-mean task loss <paramref name="loss"/> (over
    /// <paramref name="count"/> samples) is in the parameters' gradients.
    /// </summary>
    public void Step(Tensor loss, int count)
    {
        observer?.Step(parameters.ToDictionary(p => p.name, p => p.parameter.grad!));
        if (fit.ProximalMu > 0 && global is not null)
        {
            var distance = parameters.Select(p => (p.parameter - global[p.name]).pow(2).sum())
                .Aggregate((a, b) => a + b);
            (distance * (fit.ProximalMu / 2)).backward();
        }
        fit.ExtraLoss?.Invoke(Live).backward();
        if (maxGradNorm > 0) nn.utils.clip_grad_norm_(parameters.Select(p => p.parameter), maxGradNorm);
        if (fit.GradientMask is { } mask)
            foreach (var (name, p) in parameters) p.grad?.mul_(mask[name]);
        optimizer.step();
        lossSum += loss.item<float>() * count;
        seen += count;
        done++;
    }

    /// <summary>The mean training loss and, when asked, the gradient observer's Fisher estimate.</summary>
    public (double loss, AdapterState? fisher) Result() => (seen == 0 ? 0 : lossSum / seen, observer?.Estimate());

    public void Dispose()
    {
        batches.Dispose();
        optimizer.Dispose();
        observer?.Dispose();
    }
}
