using FedNano.Simulation;
using static TorchSharp.torch;

namespace FedNano.Strategies;

/// <summary>
/// The centralized upper bound: one learner (at the server, no clients) trains the NanoAdapters on the pooled
/// training data of all clients with the same budget of optimiser steps as the federated methods (each round, as
/// many mini-batches as all clients' local training together takes), and is evaluated on every client's test part.
/// Nothing is communicated; the data pooling it presumes is exactly what federated learning avoids.
/// </summary>
public static class Centralized
{
    /// <summary>The method's name in results.</summary>
    public const string Name = "centralized";

    /// <summary>
    /// Runs it on <paramref name="sim"/>'s backbone and data, from the start or from <paramref name="start"/>, calling
    /// <paramref name="afterRound"/> after every round (see <see cref="FederatedSimulation.Run"/>).
    /// </summary>
    public static MethodResult Run(FederatedSimulation sim, SimulationState? start = null, Action<SimulationState>? afterRound = null)
    {
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
