using FedNano.Edge;
using FedNano.Simulation;
using static TorchSharp.torch;

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

    /// <summary>The single learner uploads nothing.</summary>
    public FitInstructions ConfigureFit(int round, int client) => new() { Upload = false };

    /// <summary>Nothing is aggregated: the learner's adapters are the state.</summary>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) => global.Clone();

    /// <summary>
    /// Runs it on <paramref name="sim"/>'s backbone and data, from the start or from <paramref name="start"/>, calling
    /// <paramref name="afterRound"/> after every round (see <see cref="FederatedSimulation.Run"/>).
    /// </summary>
    internal static MethodResult Run(FederatedSimulation sim, SimulationState? start = null, Action<SimulationState>? afterRound = null)
    {
        const string Name = MethodName;
        sim.CheckStart(start, Name);
        var pooled = sim.Train.SelectMany(t => t).ToArray();
        int steps = sim.Train.Sum(t => sim.Trainer.StepsFor(t.Length));
        var rows = new List<RoundResult>(start?.Rows ?? []);
        sim.Edge.LoadAdapterState(start?.Global ?? sim.Initial);
        IReadOnlyList<IReadOnlyList<Simulation.Prediction>> final = start?.Final ?? [];
        for (int round = (start?.Round ?? 0) + 1; round <= sim.Config.Rounds; round++)
        {
            var (loss, _) = sim.Trainer.Train(pooled, new FitInstructions { Upload = false }, null, sim.DataOrder(round, -1), steps);
            using var state = sim.Edge.AdapterState();
            var losses = Enumerable.Repeat(loss, sim.Train.Length).ToArray();
            final = sim.EvaluateAll(state, _ => new ClientTraffic(), Name, round, rows, trainLoss: losses, countSplit: false);
            afterRound?.Invoke(new SimulationState(Name, round, state, FederatedSimulation.NoClientState, rows, final));
            sim.Report(Name, round, rows);
        }
        return new MethodResult(Name, rows, final);
    }
}
