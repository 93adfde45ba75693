using FedNano.Edge;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

using FedNano.Tests.Simulation;

namespace FedNano.Tests.Strategies;

/// <summary>
/// A strategy written outside Core: the element-wise (lower) median of the clients' adapters, with an extra L2 term
/// pulling the adapters towards zero during local training.
/// </summary>
internal sealed class MedianWithDecay : IStrategy
{
    public int ExtraLossCalls;
    public int Aggregations;

    public string Name => "median";

    public FitInstructions ConfigureFit(int round, int client) => new()
    {
        ExtraLoss = p => { ExtraLossCalls++; return p.Values.Select(t => t.pow(2).sum()).Aggregate((a, b) => a + b) * 1e-3; },
    };

    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates)
    {
        Aggregations++;
        return new AdapterState(global.Tensors.ToDictionary(p => p.Key, p => stack(updates.Select(u => u.Parameters[p.Key]).ToArray()).msort()[(updates.Count - 1) / 2]));
    }
}

[NonParallelizable]
public class UserStrategyTests
{
    [Test]
    public void AStrategyFromOutsideCorePlugsIn()
    {
        var config = TinySetup.Config(rounds: 2);
        var strategy = new MedianWithDecay();
        var result = TinySetup.Simulation(config).RunStrategy(strategy);
        Assert.That(result.Method, Is.EqualTo("median"));
        Assert.That(strategy.Aggregations, Is.EqualTo(2));
        Assert.That(strategy.ExtraLossCalls, Is.GreaterThan(0));
        Assert.That(result.Rounds, Has.Count.EqualTo(2 * config.Clients));
        Assert.That(result.Rounds.All(r => r.Traffic.UploadedParams > 0 && !double.IsNaN(r.Accuracy)), Is.True);
    }
}
