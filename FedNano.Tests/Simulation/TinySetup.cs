using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Strategies;

namespace FedNano.Tests.Simulation;

/// <summary>
/// One small random LLaVA shared by these tests (not the shipped backbone) and a few synthetic samples
/// over two clients: fast, and independent of any pretrained accuracy.
/// </summary>
internal static class TinySetup
{
    private static readonly Lazy<Backbone> Shared = new(() => TestBackbones.Random(11));

    public static Backbone Backbone => Shared.Value;

    public static SimulationConfig Config(int rounds = 1) => new()
    {
        SyntheticSamples = 32, Clients = 2, MinPartitionSize = 6, Rounds = rounds, BatchSize = 8, LearningRate = 1e-2,
        Adapter = new FedNano.Adapters.AdapterConfig { Rank = 4 },
        FedDpa = new FedDpaConfig { Instances = 3, LoraRank = 2 },
    };

    public static FederatedSimulation Simulation(SimulationConfig config)
    {
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, config.Seed, SyntheticDialect.Client, 32);
        return new FederatedSimulation(config, Backbone, FederatedData.Partition(samples, config));
    }
}

/// <summary>
/// Wraps a strategy and keeps copies of every upload and aggregate (a strategy written outside Core).
/// </summary>
internal sealed class Recorder(IStrategy inner) : IStrategy
{
    public List<ClientUpdate> Uploads { get; } = [];
    public List<AdapterState> Globals { get; } = [];

    public string Name => inner.Name;
    public FitInstructions ConfigureFit(int round, int client) => inner.ConfigureFit(round, client);
    public AdapterState? ClientState(int client, AdapterState global) => inner.ClientState(client, global);
    public void OnClientTrained(int round, int client, AdapterState trained) =>
        inner.OnClientTrained(round, client, trained);
    public IClientAlgorithm CreateClient(FederatedSimulation simulation) => inner.CreateClient(simulation);

    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates)
    {
        Uploads.AddRange(updates.Select(u => u with { Parameters = u.Parameters.Clone(), Fisher = u.Fisher?.Clone() }));
        var next = inner.Aggregate(round, global, updates);
        Globals.Add(next.Clone());
        return next;
    }
}
