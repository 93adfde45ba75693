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
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, 11, SyntheticDialect.Client, backbone.Llava().Config.VisionConfig.ImageSize);
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
        Assert.That(after["adapter_i.up.weight"].abs().sum().item<float>(), Is.GreaterThan(0), "NanoAdapter-I did not train");
        Assert.That(after["adapter_t.up.weight"].abs().sum().item<float>(), Is.GreaterThan(0), "NanoAdapter-T did not train");
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
