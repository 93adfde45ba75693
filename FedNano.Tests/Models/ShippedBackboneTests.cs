using FedNano.Data.Synthetic;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Tests.Data;
using NUnit.Framework;

namespace FedNano.Tests.Models;

/// <summary>The tiny backbone shipped in data/tiny-backbone: it loads, and it is what the README says it is.</summary>
public class ShippedBackboneTests
{
    private static string Dir => Path.Combine(DataFixtures.RepoRoot, TinyBackbone.DefaultDirectory);

    [Test]
    public void LoadsWithTheTinyArchitecture()
    {
        var backbone = TinyBackbone.Load(Dir);
        Assert.That(backbone.Model.Config, Is.EqualTo(TinyBackbone.Config(backbone.Tokenizer.VocabSize)).Using<LlavaConfig>(
            (a, b) => a.TextConfig == b.TextConfig && a.VisionConfig == b.VisionConfig));
        Assert.That(backbone.Model.parameters().All(p => p.isfinite().all().item<bool>()), Is.True);
    }

    /// <summary>Pretrained on the English split: it reads English questions; the clients' French dialect it cannot.</summary>
    [Test]
    public void ReadsTheGeneralSplitButNotTheClientDialect()
    {
        var backbone = TinyBackbone.Load(Dir);
        double Accuracy(SyntheticDialect d)
        {
            var config = new SimulationConfig { Clients = 1, MinPartitionSize = 2 };
            var samples = SyntheticBenchmark.Generate(240, 99, d);
            var data = new FederatedData([new ClientData(0, samples.Take(1).ToArray(), samples)], "category");
            return new FederatedSimulation(config, backbone, data).ZeroShot().MeanAccuracy;
        }
        Assert.That(Accuracy(SyntheticDialect.General), Is.GreaterThan(0.8));
        Assert.That(Accuracy(SyntheticDialect.Client), Is.LessThan(0.45)); // chance is about 1/3.3 with 2-5 options
    }
}
