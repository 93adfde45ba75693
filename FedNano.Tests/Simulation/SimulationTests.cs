using FedNano.Data.Synthetic;
using FedNano.Simulation;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Simulation;

public class SimulationTests
{
    internal static SimulationConfig SmallConfig => new()
    {
        SyntheticSamples = 48, Clients = 2, Alpha = 1.0, MinPartitionSize = 8, Rounds = 1, BatchSize = 8,
        Adapter = new FedNano.Adapters.AdapterConfig { Rank = 4 }, LearningRate = 1e-2,
    };

    internal static FederatedSimulation Create(SimulationConfig config, int seed = 1)
    {
        var backbone = TestBackbones.Random(seed);
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, 11, SyntheticDialect.Client,
            backbone.Llava().Config.VisionConfig.ImageSize);
        return new FederatedSimulation(config, backbone, FederatedData.Partition(samples, config));
    }

    [TestCase("fedavg")]
    [TestCase("fednano")]
    [TestCase("fednano-ef")]
    [TestCase("fedprox")]
    [TestCase("local")]
    public void ARoundChangesOnlyTheAdapters(string method)
    {
        var sim = Create(SmallConfig);
        var frozen = sim.Edge.FrozenParameters().Select(p => p.parameter)
            .Concat(sim.Backbone.Model.LanguageModel.parameters()).Distinct().ToArray();
        var before = frozen.Select(p => p.detach().clone()).ToArray();
        var adaptersBefore = sim.Edge.AdapterState();

        var result = sim.Run(method);

        Assert.That(result.Rounds, Has.Count.EqualTo(2));
        for (int i = 0; i < frozen.Length; i++)
        {
            Assert.That(frozen[i].equal(before[i]).all().item<bool>(), Is.True, "a frozen parameter changed");
            Assert.That(frozen[i].grad, Is.Null, "a frozen parameter got a gradient");
            Assert.That(frozen[i].requires_grad, Is.False);
        }
        var after = sim.Edge.AdapterState();
        Assert.That(after["adapter_i.up.weight"].abs().sum().item<float>(), Is.GreaterThan(0),
            "NanoAdapter-I did not train");
        Assert.That(after["adapter_t.up.weight"].abs().sum().item<float>(), Is.GreaterThan(0),
            "NanoAdapter-T did not train");
        Assert.That(adaptersBefore["adapter_t.up.weight"].abs().sum().item<float>(), Is.Zero);
    }

    [Test]
    public void FisherMergingDiffersFromFedAvgAndFisherIsPositive()
    {
        var sim = Create(SmallConfig);
        var fedavg = sim.Run("fedavg");
        var fednano = sim.Run("fednano");
        Assert.That(fednano.Rounds.Select(r => r.Loss), Is.Not.EqualTo(fedavg.Rounds.Select(r => r.Loss)));
    }

    [Test]
    public void ZeroShotUsesIdentityAdaptersAndUploadsNothing()
    {
        var result = Create(SmallConfig).ZeroShot();
        Assert.That(result.Rounds.All(r => r.Round == 0 && r.UploadedParameters == 0), Is.True);
        Assert.That(result.Rounds.Select(r => r.Client), Is.EqualTo(new[] { 0, 1 }));
    }
}

/// <summary>Evaluating a share of the clients, every few rounds (for large federations).</summary>
public class EvaluationScheduleTests
{
    [Test]
    public void ASeededShareOfClientsIsEvaluatedEveryNthRound()
    {
        var config = TinySetup.Config(rounds: 3) with
        {
            Clients = 4, SyntheticSamples = 64, MinPartitionSize = 6, EvaluateEvery = 2, EvaluateFraction = 0.5,
        };
        var sim = TinySetup.Simulation(config);
        var fedavg = sim.Run("fedavg");
        var fednano = sim.Run("fednano");
        var zero = sim.ZeroShot();
        bool[] Evaluated(MethodResult r, int round) => Enumerable.Range(0, 4)
            .Select(k => r.Rounds.Any(x => x.Round == round && x.Client == k && !double.IsNaN(x.Accuracy))).ToArray();
        Assert.That(Evaluated(zero, 0).Count(e => e), Is.EqualTo(2), "the start: half the clients");
        Assert.That(Evaluated(fedavg, 1), Has.All.False, "round 1 is not an evaluation round");
        Assert.That(fedavg.Rounds.Count(r => r.Round == 1), Is.EqualTo(4), "but every client that trained has its row");
        Assert.That(fedavg.Rounds.Where(r => r.Round == 1)
            .All(r => !double.IsNaN(r.TrainLoss) && r.Traffic.UploadedParams > 0));
        foreach (int round in new[] { 2, 3 })
        {
            Assert.That(Evaluated(fedavg, round).Count(e => e), Is.EqualTo(2), $"round {round}");
            Assert.That(Evaluated(fednano, round), Is.EqualTo(Evaluated(fedavg, round)),
                "the same clients for every method");
        }
        Assert.That(fedavg.ClientAccuracy.Count(a => !double.IsNaN(a)), Is.EqualTo(2));
        Assert.That(double.IsNaN(fedavg.MeanAccuracy), Is.False, "the mean is over the evaluated clients");
    }
}
