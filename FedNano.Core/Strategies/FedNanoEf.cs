using FedNano.Edge;
using FedNano.Fisher;

namespace FedNano.Strategies;

/// <summary>
/// FedNano-EF, the efficient variant of FedNano's Fisher merging: the same aggregation as <see cref="FedNanoFisher"/>,
/// theta = sum_k |D_k| F_k theta_k / sum_k |D_k| F_k, but F_k costs no extra pass over the data: it is
/// <see cref="SquaredGradientFisher"/>, the squared mini-batch gradients of local training averaged over the steps
/// (optionally normalised per client, <c>fisher_normalise</c>).
/// "FedNano: Toward Lightweight Federated Tuning for Pretrained Multimodal Large Language Models" (2025).
/// </summary>
public sealed class FedNanoEf(double floor = 1e-20, bool normalise = false) : IStrategy
{
    private readonly SquaredGradientFisher estimator = new(normalise);

    /// <summary>Denominator at or below which an element falls back to the size-weighted mean.</summary>
    public double Floor { get; } = floor;

    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "fednano-ef";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new() { Fisher = estimator };

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        FedNanoFisher.Merge(global, updates, Floor);
}
