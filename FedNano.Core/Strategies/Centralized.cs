using FedNano.Edge;

namespace FedNano.Strategies;

/// <summary>
/// The centralized upper bound: one learner (at the server, no clients) trains the NanoAdapters on the pooled
/// training data of all clients with the same budget of optimiser steps as the federated methods (each round, as
/// many mini-batches as all clients' local training together takes), and is evaluated on every client's test part.
/// Nothing is communicated; the data pooling it presumes is exactly what federated learning avoids.
/// </summary>
public sealed class Centralized : IStrategy
{
    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "centralized";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public bool PoolsData => true;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new();

    /// <summary>The learner's adapters are the new state.</summary>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        updates.Count == 1 ? updates[0].Parameters.Clone() : global.Clone();
}
