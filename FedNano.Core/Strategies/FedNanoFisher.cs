using FedNano.Edge;
using FedNano.Fisher;
using static TorchSharp.torch;

namespace FedNano.Strategies;

/// <summary>
/// FedNano's aggregation, Fisher merging: element-wise
/// theta = sum_k |D_k| F_k theta_k / sum_k |D_k| F_k, with F_k the diagonal Fisher of client k by its
/// <see cref="Estimator"/>: by default the empirical one (<see cref="EmpiricalFisher"/>), the mean over its training
/// samples of the squared per-sample gradient of the answer's log-likelihood, computed in an extra pass after local
/// training; or the model-sampled Fisher or FedNano-EF's squared gradients (<c>fisher</c>). Where sum_k |D_k| F_k is
/// at most <see cref="Floor"/> (no client's data informs that parameter), the element falls back to the
/// size-weighted mean (FedAvg). Parameters every client considers uninformative thus still move as in FedAvg,
/// and a client whose Fisher is zero on an element leaves that element to the others.
/// Based on Matena and Raffel, "Merging Models with Fisher-Weighted Averaging", NeurIPS 2022, as used by
/// "FedNano: Toward Lightweight Federated Tuning for Pretrained Multimodal Large Language Models" (2025).
/// </summary>
public sealed class FedNanoFisher(double floor = 1e-20, IFisherEstimator? estimator = null) : IStrategy
{
    /// <summary>Denominator at or below which an element falls back to the size-weighted mean.</summary>
    public double Floor { get; } = floor;

    /// <summary>How each client estimates its Fisher (default: <see cref="EmpiricalFisher"/>).</summary>
    public IFisherEstimator Estimator { get; } = estimator ?? new EmpiricalFisher();

    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "fednano";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new() { Fisher = Estimator };

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        Merge(global, updates, Floor);

    /// <summary>Fisher merging of the updates (each must carry a Fisher); see the class summary.</summary>
    public static AdapterState Merge(AdapterState global, IReadOnlyList<ClientUpdate> updates, double floor)
    {
        if (updates.Count == 0) return global.Clone();
        if (updates.FirstOrDefault(u => u.Fisher is null) is { } missing)
            throw new InvalidOperationException(
                $"client {missing.Client} uploaded no Fisher: Fisher merging needs FitInstructions.Fisher");
        using var mean = FedAvg.WeightedMean(global, updates);
        return new AdapterState(global.Tensors.ToDictionary(p => p.Key, p =>
        {
            using var scope = NewDisposeScope();
            var num = zeros_like(p.Value, dtype: ScalarType.Float64);
            var den = zeros_like(p.Value, dtype: ScalarType.Float64);
            foreach (var u in updates)
            {
                var w = u.Fisher![p.Key].to_type(ScalarType.Float64) * (double)u.Samples;
                num = num + w * u.Parameters[p.Key].to_type(ScalarType.Float64);
                den = den + w;
            }
            var informed = den > floor;
            var merged = where(informed, num / where(informed, den, ones_like(den)),
                mean[p.Key].to_type(ScalarType.Float64));
            return merged.to_type(p.Value.dtype).MoveToOuterDisposeScope();
        }));
    }
}
