using FedNano.Edge;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tests.Simulation;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Reliability;

/// <summary>A client whose training turns NaN is detected: left out of the aggregate (skip) or the run stops
/// (stop).</summary>
[NonParallelizable]
public class NonFiniteTests
{
    /// <summary>FedAvg, except that client 0's local loss has a NaN term, so its gradients and update are
    /// NaN.</summary>
    private sealed class PoisonedClientZero : IStrategy
    {
        private readonly FedAvg inner = new();
        public string Name => "poisoned";
        public FitInstructions ConfigureFit(int round, int client) =>
            client == 0
                ? new FitInstructions { ExtraLoss = p => p.Values.First().sum() * float.NaN }
                : new FitInstructions();
        public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates)
        {
            Assert.That(updates.Select(u => u.Client), Has.None.EqualTo(0), "the NaN client is not aggregated");
            return inner.Aggregate(round, global, updates);
        }
    }

    [Test]
    public void SkipLeavesTheClientOutAndFlagsItsRows()
    {
        var config = TinySetup.Config(rounds: 2) with { OnNonFinite = "skip" };
        var result = TinySetup.Simulation(config).RunStrategy(new PoisonedClientZero());
        Assert.That(result.Rounds.Where(r => r.Client == 0).Select(r => r.NonFinite), Is.All.True);
        Assert.That(result.Rounds.Where(r => r.Client != 0).Select(r => r.NonFinite), Is.All.False);
        Assert.That(result.Rounds.Select(r => r.Loss), Is.All.Matches<double>(double.IsFinite),
            "the global adapters stay finite");
        Assert.That(result.Rounds.Where(r => r.Client == 0).Select(r => r.Traffic.UploadedParams), Is.All.Zero);

        var rows = ResultFiles.Rounds([result]).ToArray();
        Assert.That(rows.Where(r => r.Client == 0).Select(r => r.NonFinite), Is.All.EqualTo(1));
        Assert.That(rows.Where(r => r.Client == 0).Select(r => r.TrainLoss), Is.All.Not.Null,
            "not written as 'did not train'");
    }

    [Test]
    public void StopEndsTheRunNamingTheClient()
    {
        var config = TinySetup.Config(rounds: 2) with { OnNonFinite = "stop" };
        var e = Assert.Throws<NonFiniteException>(
            () => TinySetup.Simulation(config).RunStrategy(new PoisonedClientZero()))!;
        Assert.That(e.Message, Does.Contain("round 1, client 0").And.Contain("learning_rate"));
    }
}
