using System.Security.Cryptography;
using System.Text;
using FedNano.Partitioning;
using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Partitioning;

public class DirichletPartitionerTests
{
    private static readonly string[] Labels = Enumerable.Range(0, 1000).Select(i => $"label{i % 4}").ToArray();

    [TestCase(0.1)]
    [TestCase(1.0)]
    [TestCase(100.0)]
    public void EveryIndexLandsInExactlyOneClient(double alpha)
    {
        var parts = DirichletPartitioner.Partition(Labels, 5, alpha, 10, seed: 3);
        Assert.That(parts.SelectMany(p => p).Order(), Is.EqualTo(Enumerable.Range(0, Labels.Length)));
        Assert.That(parts.All(p => p.Length >= 10), Is.True);
    }

    /// <summary>Mean over clients of the share of their commonest label.</summary>
    private static double Concentration(double alpha, int seed)
    {
        var parts = DirichletPartitioner.Partition(Labels, 5, alpha, 10, seed);
        return parts.Average(p => p.GroupBy(i => Labels[i]).Max(g => g.Count()) / (double)p.Length);
    }

    [Test]
    public void SmallAlphaConcentratesLabels()
    {
        double skewed = Enumerable.Range(0, 5).Average(s => Concentration(0.1, s));
        double uniform = Enumerable.Range(0, 5).Average(s => Concentration(100, s));
        Assert.That(skewed, Is.GreaterThan(0.75));
        Assert.That(uniform, Is.LessThan(0.35)); // 4 labels equally shared: 0.25 plus noise
    }

    [Test]
    public void SameSeedSamePartitionOtherSeedAnother()
    {
        Assert.That(DirichletPartitioner.Partition(Labels, 5, 0.5, 10, 7),
            Is.EqualTo(DirichletPartitioner.Partition(Labels, 5, 0.5, 10, 7)));
        Assert.That(DirichletPartitioner.Partition(Labels, 5, 0.5, 10, 8),
            Is.Not.EqualTo(DirichletPartitioner.Partition(Labels, 5, 0.5, 10, 7)));
    }

    [Test]
    public void BadInputIsRefused()
    {
        Assert.That(() => DirichletPartitioner.Partition(Labels, 5, 0, 10, 1),
            Throws.TypeOf<ConfigException>().With.Message.Contain("alpha"));
        Assert.That(() => DirichletPartitioner.Partition(Labels[..3], 5, 1, 1, 1),
            Throws.TypeOf<ConfigException>().With.Message.Contain("5 clients but only 3 samples"));
    }

    /// <summary>
    /// The label scheme's draws are those it had before partition schemes existed (the SHA-256 of its partitions, taken
    /// with the code of commit 2fd406f), so earlier results stay as they were; one case needs many redraws.
    /// </summary>
    [TestCase(5, 0.5, 10, 7, "1875E362C934E5833EF05043D4DD8D40BE6B6180BE4E1B4D204F79487B10D467")]
    [TestCase(12, 0.1, 20, 3, "A3DB09C0A6DB3A9FCE94E6617849015CAC328EDE337E766ECF721480D43A12EF")]
    public void TheLabelSchemesDrawsAreUnchanged(int clients, double alpha, int min, int seed, string sha)
    {
        var config = new SimulationConfig { Clients = clients, Alpha = alpha, MinPartitionSize = min, Seed = seed };
        var parts = PartitionerRegistry.Get(config.PartitionScheme).Partition(Labels, config);
        Assert.That(parts, Is.EqualTo(DirichletPartitioner.Partition(Labels, clients, alpha, min, seed)));
        string text = string.Join(";", parts.Select(p => string.Join(",", p)));
        Assert.That(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))), Is.EqualTo(sha));
    }
}
