using FedNano.Edge;
using FedNano.Experiments;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tests.Experiments;
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
        ExtraLoss = p =>
        {
            ExtraLossCalls++;
            return p.Values.Select(t => t.pow(2).sum()).Aggregate((a, b) => a + b) * 1e-3;
        },
    };

    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates)
    {
        Aggregations++;
        return new AdapterState(global.Tensors.ToDictionary(p => p.Key,
            p => stack(updates.Select(u => u.Parameters[p.Key]).ToArray()).msort()[(updates.Count - 1) / 2]));
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

    private sealed class Stop : Exception;

    /// <summary>
    /// Runs <paramref name="config"/> in a run folder, and again interrupted in <paramref name="method"/>'s second
    /// round and resumed: the same files; then <c>fednano report</c> on it names the method.
    /// </summary>
    internal static void RunsThroughRunFolders(SimulationConfig config, string method)
    {
        string full = TinyRuns.TempDir(method + "-full"), cut = TinyRuns.TempDir(method + "-cut");
        RunFolder.Run(config, full);
        Assert.Throws<Stop>(() => RunFolder.Run(config, cut, new RunHooks
        {
            Progress = p => { if (p.Method == method && p.Round == 2) throw new Stop(); },
        }));
        Assert.That(RunFolder.Run(config, cut).ResumedFromStep, Is.EqualTo(2));
        foreach (var f in new[] { RunFolder.RoundsFile, RunFolder.SummaryFile })
            Assert.That(File.ReadAllText(Path.Combine(cut, f)), Is.EqualTo(File.ReadAllText(Path.Combine(full, f))), f);
        Assert.That(File.ReadAllText(Path.Combine(full, RunFolder.SummaryFile)), Does.Contain(method));
        var (code, err) = RunCommandTests.Fednano("report", cut);
        Assert.That(code, Is.Zero, err);
        Assert.That(File.ReadAllText(Path.Combine(cut, "report.md")), Does.Contain(method));
    }

    /// <summary>
    /// A method registered from outside Core runs by name through run folders as the built-in ones do: checkpoints,
    /// resume after an interruption (the same files as an uninterrupted run), report.
    /// </summary>
    [Test]
    public void ARegisteredMethodGetsRunFoldersCheckpointsResumeAndReports()
    {
        const string name = "median-registered";
        if (!MethodCatalog.All.Contains(name))
            MethodCatalog.Register(new MethodEntry(name, "Median", _ => new NamedMedian(name)));
        RunsThroughRunFolders(TinyRuns.Config(name, "fedavg"), name);
        Assert.Throws<ArgumentException>(() =>
            MethodCatalog.Register(new MethodEntry("fedavg", "FedAvg", _ => new FedAvg())));
        Assert.That(() => MethodCatalog.Expand(["not-registered"]),
            Throws.TypeOf<ConfigException>().With.Message.Contains("unknown method"));
    }
}

/// <summary>The median strategy under a registered name.</summary>
internal sealed class NamedMedian(string name) : IStrategy
{
    private readonly MedianWithDecay inner = new();
    public string Name => name;
    public FitInstructions ConfigureFit(int round, int client) => inner.ConfigureFit(round, client);
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        inner.Aggregate(round, global, updates);
}
