using FedNano.Edge;

namespace FedNano.Strategies;

/// <summary>What a sampled client does in a round, as the strategy configures it.</summary>
public sealed record FitInstructions
{
    /// <summary>Estimate the diagonal Fisher of the adapters in an extra pass over the local data after training.</summary>
    public bool ComputeFisher { get; init; }
    /// <summary>Accumulate the squared mini-batch gradients of local training as a Fisher estimate (no extra pass).</summary>
    public bool AccumulateSquaredGradients { get; init; }
    /// <summary>Weight mu of the proximal term <c>mu/2 ||theta - theta_global||^2</c> added to the local loss (0: none).</summary>
    public double ProximalMu { get; init; }
}

/// <summary>What a client uploads after local training.</summary>
/// <param name="Client">Client index.</param>
/// <param name="Samples">Number of local training samples |D_k|.</param>
/// <param name="Parameters">The trained adapter parameters theta_k.</param>
/// <param name="Fisher">Diagonal Fisher F_k, shaped like the parameters, when the strategy asked for one.</param>
public sealed record ClientUpdate(int Client, int Samples, AdapterState Parameters, AdapterState? Fisher);

/// <summary>
/// A federated aggregation strategy, shaped like Flower's: it configures each sampled client's round and
/// aggregates the clients' uploads into the next global adapters. Implement it in your own code to add a
/// method; pass it to <see cref="FedNano.Simulation.FederatedSimulation.RunStrategy"/>.
/// </summary>
public interface IStrategy
{
    /// <summary>The method's name as it appears in results (e.g. <c>fedavg</c>).</summary>
    string Name { get; }

    /// <summary>The instructions for <paramref name="client"/> in round <paramref name="round"/> (1-based).</summary>
    FitInstructions ConfigureFit(int round, int client);

    /// <summary>The new global adapters from the round's uploads. Must not dispose its inputs.</summary>
    AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates);
}
