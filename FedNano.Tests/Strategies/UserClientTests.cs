using FedNano.Edge;
using FedNano.Fisher;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tests.Experiments;
using FedNano.Tests.Simulation;
using NUnit.Framework;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Tests.Strategies;

/// <summary>
/// A client algorithm written outside Core, through the public client API only
/// (<see cref="FederatedSimulation.TrainAcrossSplit"/>, <see cref="FederatedSimulation.EvaluationClient"/>):
/// NanoAdapters written anew, so the built-in ones are an independent reference.
/// </summary>
[NonParallelizable]
public class UserClientTests
{
    [TestCase(null)]
    [TestCase(SquaredGradientFisher.EstimatorName)]
    public void AUserClientAlgorithmRunsAsTheBuiltInOne(string? fisher)
    {
        var config = TinySetup.Config(rounds: 2) with { Execution = "sequential" };
        IStrategy BuiltIn() => fisher is null ? new FedAvg() : MethodCatalog.Strategy("fednano-ef", config);
        var expected = TinySetup.Simulation(config).RunStrategy(BuiltIn());
        var actual = TinySetup.Simulation(config).RunStrategy(new WithOwnClient(BuiltIn()));

        Assert.That(actual.Rounds.Select(r => r.Traffic), Is.EqualTo(expected.Rounds.Select(r => r.Traffic)), "ledger");
        Assert.That(actual.Rounds.Select(r => r.TrainLoss),
            Is.EqualTo(expected.Rounds.Select(r => r.TrainLoss)).Within(1e-6));
        Assert.That(actual.Rounds.Select(r => r.Loss), Is.EqualTo(expected.Rounds.Select(r => r.Loss)).Within(1e-6));
        Assert.That(actual.ClientAccuracy, Is.EqualTo(expected.ClientAccuracy));
        Assert.That(expected.Rounds.Select(r => r.Traffic.SplitBytesTrain), Is.All.GreaterThan(0));
    }

    [Test]
    public void AnExactFisherPassIsRefusedWithAClientModelOfItsOwn()
    {
        var config = TinySetup.Config();
        var sim = TinySetup.Simulation(config);
        Assert.That(() => sim.RunStrategy(new WithOwnClient(MethodCatalog.Strategy("fednano", config))),
            Throws.ArgumentException.With.Message.Contains("use a gradient observer such as 'ef'"));
    }

    /// <summary>Registered by name, a user's client algorithm gets run folders, checkpoints, resume, reports.</summary>
    [Test]
    public void AUserClientAlgorithmGetsRunFoldersResumeAndReports()
    {
        const string name = "own-client";
        if (!MethodCatalog.All.Contains(name))
            MethodCatalog.Register(new MethodEntry(name, "Own client", _ => new WithOwnClient(new FedAvg(), name)));
        UserStrategyTests.RunsThroughRunFolders(TinyRuns.Config(name), name);
    }

    /// <summary>A strategy with the client algorithm below; the server side is <paramref name="inner"/>'s.</summary>
    private sealed class WithOwnClient(IStrategy inner, string? name = null) : IStrategy
    {
        public string Name => name ?? inner.Name;
        public FitInstructions ConfigureFit(int round, int client) => inner.ConfigureFit(round, client);
        public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
            inner.Aggregate(round, global, updates);
        public IClientAlgorithm CreateClient(FederatedSimulation simulation) => new OwnAdapters(simulation);
    }

    /// <summary>
    /// <c>x + s * up(down(x))</c> on the visual tokens (side i) and on the text embeddings (side t), with parameters
    /// of its own, started from the simulation's initial NanoAdapters.
    /// </summary>
    private sealed class OwnAdapters : IClientAlgorithm
    {
        private readonly FederatedSimulation sim;
        private readonly (string name, Parameter parameter)[] parameters;
        private readonly double scale;

        public OwnAdapters(FederatedSimulation sim)
        {
            this.sim = sim;
            Initial = sim.Edge.AdapterState();
            parameters = Initial.Tensors.Select(p => (p.Key, new Parameter(p.Value.clone()))).ToArray();
            scale = sim.Edge.AdapterI.Scale;
        }

        public AdapterState Initial { get; }

        public long ResidentParameters(int client, AdapterState global) => sim.EdgeFrozenParameters + global.Count;

        public ClientFit[] Fit(
            int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global) =>
            clients.Select((k, j) =>
            {
                Load(starts[j]);
                return sim.TrainAcrossSplit(round, k, parameters, Transform, fits[j], global);
            }).ToArray();

        public Func<int, EvalClient>? Evaluation(int round, AdapterState global) => _ =>
        {
            Load(global);
            return sim.EvaluationClient(Transform);
        };

        private void Load(AdapterState state)
        {
            using var _ = no_grad();
            foreach (var (name, p) in parameters) p.copy_(state[name]);
        }

        private Tensor Weight(string name) => parameters.Single(p => p.name == name).parameter;

        private Tensor Side(string side, Tensor x) =>
            x + scale * x.matmul(Weight(side + ".down.weight").t()).matmul(Weight(side + ".up.weight").t());

        private Tensor Transform(Tensor raw, Tensor isImage) =>
            where(isImage.unsqueeze(-1), Side("adapter_i", raw), Side("adapter_t", raw));

        public void Dispose()
        {
            Initial.Dispose();
            foreach (var (_, p) in parameters) p.Dispose();
        }
    }
}
