using FedNano.Edge;

namespace FedNano.Strategies;

/// <summary>
/// FedProx: each client minimises its local loss plus <c>mu/2 ||theta - theta_global||^2</c> on the adapters,
/// which keeps heterogeneous clients near the global model; the server averages by sample size as FedAvg does.
/// With <c>mu = 0</c> it is FedAvg exactly. Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020.
/// </summary>
public sealed class FedProx : IStrategy
{
    /// <summary>A FedProx with proximal weight <paramref name="mu"/> (at least 0).</summary>
    public FedProx(double mu)
    {
        if (!(mu >= 0)) throw new ConfigException($"fedprox_mu must be >= 0 (got {mu})");
        Mu = mu;
    }

    /// <summary>The proximal weight mu.</summary>
    public double Mu { get; }

    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "fedprox";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new() { ProximalMu = Mu };

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        FedAvg.WeightedMean(global, updates);
}
