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
        Assert.That(backbone.Llava().Config,
            Is.EqualTo(TinyBackbone.Config(backbone.Tokenizer.VocabSize)).Using<LlavaConfig>(
                (a, b) => a.TextConfig == b.TextConfig && a.VisionConfig == b.VisionConfig));
        Assert.That(backbone.Model.parameters().All(p => p.isfinite().all().item<bool>()), Is.True);
    }

    /// <summary>
    /// Pretrained on the English split: it reads English questions; the clients' French dialect it cannot.
    /// </summary>
    [Category("Slow")]
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
        // pretraining measured 99.7% on 600 held-out samples
        Assert.That(Accuracy(SyntheticDialect.General), Is.GreaterThan(0.9));
        // chance is 35% (2-5 options); pretraining measured 43.7%
        Assert.That(Accuracy(SyntheticDialect.Client), Is.LessThan(0.5));
    }

    /// <summary>
    /// The benchmark's promise, with the quickstart config's data and budget: adaptation matters. The frozen backbone
    /// with identity adapters is near chance on the clients' task, and NanoAdapters trained on all clients' training
    /// data pooled (the centralized upper bound) reach at least 85 % test accuracy. About half a minute on 2 cores.
    /// </summary>
    [Category("Slow")]
    [Test]
    public void AdaptersTrainedOnPooledClientDataReach85Percent()
    {
        var config = SimulationConfig.Load(Path.Combine(DataFixtures.RepoRoot, "configs", "quickstart.json"));
        var simulation = Experiment.Create(config with { ModelDir = Dir });
        Assert.That(simulation.ZeroShot().MeanAccuracy, Is.LessThan(0.5));
        Assert.That(simulation.Run("centralized").MeanAccuracy, Is.GreaterThanOrEqualTo(0.85));
    }
}
