using System.Diagnostics;
using FedNano.Data;
using FedNano.Partitioning;
using FedNano.Simulation;
using NUnit.Framework;
using NUnit.Framework.Constraints;

namespace FedNano.Tests.Partitioning;

public class ClientDirichletPartitionerTests
{
    /// <summary><paramref name="n"/> labels of 4 kinds, unevenly common (4 : 3 : 2 : 1), scrambled.</summary>
    private static string[] Labels(int n) =>
        Enumerable.Range(0, n).Select(i => $"label{"0000111223"[i * 7 % 10]}").ToArray();

    private static int[][] Client(string[] labels, int clients, double alpha, int min, double sigma, int seed) =>
        ClientDirichletPartitioner.Partition(labels, clients, alpha, min, sigma, seed);

    [TestCase(0.1, 0.0)]
    [TestCase(0.5, 1.0)]
    [TestCase(100.0, 2.0)]
    public void EveryIndexLandsInExactlyOneClientAndEveryClientHasItsMinimum(double alpha, double sigma)
    {
        var labels = Labels(20_000);
        var parts = Client(labels, 1000, alpha, 4, sigma, seed: 3);
        Assert.That(parts, Has.Length.EqualTo(1000));
        Assert.That(parts.SelectMany(p => p).Order(), Is.EqualTo(Enumerable.Range(0, labels.Length)));
        Assert.That(parts.Min(p => p.Length), Is.GreaterThanOrEqualTo(4));
        Assert.That(parts.All(p => p.SequenceEqual(p.Order())), "each part sorted");
        if (sigma == 0) Assert.That(parts.Select(p => p.Length).Distinct(), Is.EqualTo(new[] { 20 }), "equal sizes");
    }

    [Test]
    public void TheIssuesThousandClientsFailForTheLabelSchemeAndWorkForTheClientScheme()
    {
        var samples = Labels(20_000).Select((l, i) => new MultimodalSample
        {
            Id = $"s{i}", Question = "q", Choices = ["a", "b"], AnswerIndex = 0,
            Meta = new Dictionary<string, string> { ["category"] = l },
        }).ToArray();
        var config = new SimulationConfig { Clients = 1000, Alpha = 0.5, MinPartitionSize = 4 };
        config.Validate();
        // the label scheme (the default) tries 10,000 draws, about 15 s here; 100 show the same
        var labels = samples.Select(s => s.Meta["category"]).ToArray();
        Assert.That(() => DirichletPartitioner.Partition(labels, 1000, 0.5, 4, 0, maxAttempts: 100),
            Throws.TypeOf<ConfigException>().With.Message.Contains("gave every one of 1000 clients at least 4")
                .And.Message.Contains("partition_scheme client"));
        var data = FederatedData.Partition(samples, config with { PartitionScheme = "client" });
        Assert.That(data.Clients, Has.Count.EqualTo(1000));
        Assert.That(data.Clients.Sum(c => c.Train.Count + c.Test.Count), Is.EqualTo(20_000));
        Assert.That(data.Clients.All(c => c.Train.Count + c.Test.Count == 20 && c.Test.Count == 5), Is.True);
    }

    /// <summary>
    /// Over many clients, the label shares f of a client's n samples average to the Dirichlet's mean, E[p] = 1/L, and
    /// their second moment to E[f^2] = E[p^2] (1 - 1/n) + E[p] / n with E[p^2] = (alpha + 1) / (L (L alpha + 1)): the
    /// mixes have the spread of Dirichlet(alpha), far from the overall mix's. Equal label counts, so no label runs
    /// short on average.
    /// </summary>
    [TestCase(0.3)]
    [TestCase(1.0)]
    [TestCase(5.0)]
    public void LabelMixesHaveTheDirichletsMeanAndSpread(double alpha)
    {
        const int clients = 2000, n = 100, kinds = 4;
        var labels = Enumerable.Range(0, clients * n).Select(i => $"l{i % kinds}").ToArray();
        var parts = Client(labels, clients, alpha, 2, 0, seed: 11);
        var shares = parts.Select(p => Enumerable.Range(0, kinds)
            .Select(j => p.Count(i => labels[i] == $"l{j}") / (double)p.Length).ToArray()).ToArray();
        for (int j = 0; j < kinds; j++)
            Assert.That(shares.Average(s => s[j]), Is.EqualTo(1.0 / kinds).Within(0.01), $"mean share of l{j}");
        double secondMoment = shares.Average(s => s.Average(f => f * f));
        double ep2 = (alpha + 1) / (kinds * (kinds * alpha + 1));
        double expected = ep2 * (1 - 1.0 / n) + 1.0 / kinds / n;
        double overall = 1.0 / (kinds * kinds) + 1.0 / kinds * (1 - 1.0 / kinds) / n;
        TestContext.Out.WriteLine($"alpha {alpha}: E[f^2] {secondMoment:F4}, Dirichlet {expected:F4}, "
            + $"if every mix were the overall one {overall:F4}");
        Assert.That(secondMoment, Is.EqualTo(expected).Within(0.05 * expected));
    }

    /// <summary>
    /// With log-normal weights, the sizes beyond the minimum have the log-normal's coefficient of variation,
    /// sqrt(exp(sigma^2) - 1).
    /// </summary>
    [TestCase(0.5)]
    [TestCase(1.0)]
    public void LogNormalSizesHaveTheLogNormalsSpread(double sigma)
    {
        var parts = Client(Labels(500_000), 10_000, 0.5, 10, sigma, seed: 5);
        var extra = parts.Select(p => p.Length - 10.0).ToArray();
        double mean = extra.Average(), cv = Math.Sqrt(extra.Average(x => (x - mean) * (x - mean))) / mean;
        Assert.That(parts.Min(p => p.Length), Is.GreaterThanOrEqualTo(10));
        Assert.That(parts.Sum(p => p.Length), Is.EqualTo(500_000));
        double logNormal = Math.Sqrt(Math.Exp(sigma * sigma) - 1);
        Assert.That(cv, Is.EqualTo(logNormal).Within(0.1 * logNormal));
    }

    [Test]
    public void SameSeedSamePartitionOtherSeedAnother()
    {
        var labels = Labels(5000);
        Assert.That(Client(labels, 200, 0.5, 4, 1, 7), Is.EqualTo(Client(labels, 200, 0.5, 4, 1, 7)));
        Assert.That(Client(labels, 200, 0.5, 4, 1, 8), Is.Not.EqualTo(Client(labels, 200, 0.5, 4, 1, 7)));
    }

    /// <summary>Mean over clients of the share of their commonest label, 4 equally common labels.</summary>
    [Test]
    public void SmallAlphaConcentratesLabels()
    {
        var labels = Enumerable.Range(0, 20_000).Select(i => $"l{i % 4}").ToArray();
        double Top(double alpha) => Client(labels, 500, alpha, 4, 0, 1)
            .Average(p => p.GroupBy(i => labels[i]).Max(g => g.Count()) / (double)p.Length);
        Assert.That(Top(0.05), Is.GreaterThan(0.85));
        Assert.That(Top(100), Is.LessThan(0.4)); // 0.25 plus the noise of 40 samples
    }

    [Test]
    public void BadInputIsRefused()
    {
        var labels = Labels(100);
        static IResolveConstraint Refused(string why) => Throws.TypeOf<ConfigException>().With.Message.Contains(why);
        Assert.That(() => Client(labels, 5, 0, 4, 0, 1), Refused("alpha"));
        Assert.That(() => Client(labels, 5, 1, 4, -1, 1), Refused("client_size_sigma"));
        Assert.That(() => Client(labels, 30, 1, 4, 0, 1), Refused("30 clients x min_partition_size 4 exceeds the 100"));
    }

    /// <summary>
    /// 10,000 clients of the synthetic benchmark (data creation and partition, as a run makes them): seconds, and far
    /// below 4 GB (the managed heap that stays alive, about 12 KB of pixels per sample).
    /// </summary>
    [Test]
    public void TenThousandClientsAreMadeQuicklyInLittleMemory()
    {
        var config = new SimulationConfig
        {
            Clients = 10_000, SyntheticSamples = 40_000, MinPartitionSize = 4, Alpha = 0.5,
            PartitionScheme = "client", ClientSizeSigma = 0.5,
        };
        config.Validate();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        var samples = DatasetRegistry.Get("synthetic").Load(new DatasetContext(config, 32))["all"];
        double made = clock.Elapsed.TotalSeconds;
        var data = FederatedData.Partition(samples, config);
        double partitioned = clock.Elapsed.TotalSeconds - made;
        long live = GC.GetTotalMemory(forceFullCollection: true) - before;
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        TestContext.Out.WriteLine($"10,000 clients, 40,000 samples: data {made:F1} s, partition {partitioned:F2} s, "
            + $"live {live / 1e6:F0} MB, process peak {peak / 1e6:F0} MB");
        Assert.That(data.Clients, Has.Count.EqualTo(10_000));
        Assert.That(data.Clients.Sum(c => c.Train.Count + c.Test.Count), Is.EqualTo(40_000));
        Assert.That(partitioned, Is.LessThan(10), "partition seconds");
        Assert.That(live, Is.LessThan(1_000_000_000L), "live bytes");
        Assert.That(peak, Is.LessThan(4_000_000_000L), "process peak bytes");
        GC.KeepAlive(samples);
    }
}
