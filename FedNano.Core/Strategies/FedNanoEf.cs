using FedNano.Edge;

namespace FedNano.Strategies;

/// <summary>
/// FedNano-EF, the efficient variant of FedNano's Fisher merging: the same aggregation as <see cref="FedNanoFisher"/>,
/// theta = sum_k |D_k| F_k theta_k / sum_k |D_k| F_k, but F_k costs no extra pass over the data. It is accumulated
/// during local training from the gradients the optimiser sees anyway: at every local step t the squared mini-batch
/// gradient g_t^2 (element-wise, the gradient of the batch-mean loss) is added, and the sum is divided by the number
/// of steps, F_k = (1/T) sum_t g_t^2. With batch size 1 and unchanged parameters it equals the exact empirical Fisher
/// of <see cref="FedNanoFisher"/>; with larger batches it is the Fisher of the batch-mean gradient (smaller by about
/// the batch size, which Fisher merging's ratio cancels when every client uses the same batch size).
/// "FedNano: Toward Lightweight Federated Tuning for Pretrained Multimodal Large Language Models" (2025).
/// </summary>
public sealed class FedNanoEf(double floor = 1e-20) : IStrategy
{
    /// <summary>Denominator at or below which an element falls back to the size-weighted mean.</summary>
    public double Floor { get; } = floor;

    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "fednano-ef";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new() { AccumulateSquaredGradients = true };

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) => FedNanoFisher.Merge(global, updates, Floor);
}
