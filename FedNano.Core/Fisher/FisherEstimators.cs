using FedNano.Edge;
using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>The built-in Fisher estimators by name, and the per-client normalisation they share.</summary>
public static class FisherEstimators
{
    private static readonly Dictionary<string, Func<bool, IFisherEstimator>> Factories = new()
    {
        [EmpiricalFisher.EstimatorName] = n => new EmpiricalFisher(n),
        [SampledFisher.EstimatorName] = n => new SampledFisher(n),
        [SquaredGradientFisher.EstimatorName] = n => new SquaredGradientFisher(n),
    };

    /// <summary>The estimators' names, as configs and the CLI spell them.</summary>
    public static IReadOnlyList<string> Names => Factories.Keys.ToArray();

    /// <summary>The estimator <paramref name="name"/>; a <see cref="ConfigException"/> naming the known ones.</summary>
    public static IFisherEstimator Create(string name, bool normalise = false) =>
        Factories.TryGetValue(name ?? "", out var create) ? create(normalise)
            : throw new ConfigException($"fisher '{name}' is not one of {string.Join(", ", Names)}");

    /// <summary>
    /// <paramref name="fisher"/> divided by its mean over all its values (a new state; the input is left as is), so
    /// the result has mean 1; a Fisher that is zero everywhere (or not finite) is returned as a copy.
    /// </summary>
    public static AdapterState Normalised(AdapterState fisher)
    {
        using var scope = NewDisposeScope();
        double sum = fisher.Tensors.Values.Sum(t => t.to_type(ScalarType.Float64).sum().item<double>());
        double mean = sum / Math.Max(fisher.Count, 1);
        bool usable = mean > 0 && double.IsFinite(mean);
        return new AdapterState(fisher.Tensors.ToDictionary(p => p.Key,
            p => (usable ? p.Value / mean : p.Value.clone()).MoveToOuterDisposeScope()));
    }
}
