using FedNano.Data.Synthetic;
using FedNano.Simulation;
using FedNano.Tests.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Memory;

/// <summary>
/// A run's memory grows with its data and the clients of a round, not with the clients of the federation: 3 rounds of
/// FedNano with 10,000 clients (1 % sampled and evaluated per round) against 100 clients (1 % too: one client a round,
/// with the same samples) on the same 40,000 synthetic samples. As <c>fednano run</c> processes (shipped backbone,
/// <c>/usr/bin/time -v</c>) the two peaked at 1.02 and 1.08 GB resident.
/// </summary>
public class ManyClientsMemoryTests
{
    [Test]
    [Category("Slow")]
    public void TenThousandClientsTakeAtMostOnePointFiveTimesTheMemoryOfAHundred()
    {
        if (!ProcessMemory.Available) Assert.Ignore("needs /proc/self/clear_refs (Linux)");
        var config = TinySetup.Config(rounds: 3) with
        {
            SyntheticSamples = 40_000, PartitionScheme = "client", Alpha = 0.5, MinPartitionSize = 4,
            ClientFraction = 0.01, EvaluateFraction = 0.01, Adapter = new FedNano.Adapters.AdapterConfig(),
            BatchSize = 16, Methods = ["fednano"],
        };
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, config.Seed, SyntheticDialect.Client, 32);
        long Rise(int clients) => ProcessMemory.PeakRise(() =>
        {
            var c = config with { Clients = clients };
            var sim = new FederatedSimulation(c, TinySetup.Backbone, FederatedData.Partition(samples, c));
            var result = sim.Run("fednano");
            Assert.That(result.Rounds.Select(r => r.Round).Distinct().Count(), Is.EqualTo(3));
        });
        Rise(100); // once first: what the process keeps after a run (the heap it grew) counts in neither
        long hundred = Rise(100), many = Rise(10_000);
        long peak = ProcessMemory.Peak;
        TestContext.Out.WriteLine($"peak rise: 100 clients {hundred / 1e6:F0} MB, 10,000 clients {many / 1e6:F0} MB; " +
                                  $"process peak {peak / 1e6:F0} MB");
        Assert.That(many, Is.LessThanOrEqualTo(1.5 * hundred), "10,000 clients' peak rise over 100 clients'");
        Assert.That(peak, Is.LessThan(4_000_000_000L), "process peak bytes");
    }
}
