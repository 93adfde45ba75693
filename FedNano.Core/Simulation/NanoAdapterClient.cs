using FedNano.Edge;
using FedNano.Strategies;

namespace FedNano.Simulation;

/// <summary>
/// The default client algorithm: NanoAdapters on the shared NanoEdge, trained across the split by
/// <see cref="ClientTrainer"/> (one client after another, or a round's clients batched: <c>execution</c>) and
/// evaluated by <see cref="Evaluator"/> with the client's adapters loaded.
/// </summary>
internal sealed class NanoAdapterClient(FederatedSimulation sim) : IClientAlgorithm
{
    public AdapterState Initial => sim.Initial;

    bool IClientAlgorithm.OnNanoEdge => true;

    public long ResidentParameters(int client, AdapterState global) =>
        sim.EdgeFrozenParameters + (sim.Ranks?.Values(client, global) ?? global.Count);

    public ClientFit[] Fit(
        int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global) =>
        sim.TrainClients(round, clients, fits, starts, global)
            .Select(o => new ClientFit(o.Trained, o.Loss, o.Fisher, o.SplitBytes)).ToArray();

    public void Dispose() { }
}
