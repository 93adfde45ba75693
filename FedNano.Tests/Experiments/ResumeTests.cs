using FedNano.Experiments;
using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Experiments;

[Category("Slow")]
public class ResumeTests
{
    private sealed class Stop : Exception;

    private static string Uninterrupted(SimulationConfig config)
    {
        string dir = TinyRuns.TempDir("full");
        RunFolder.Run(config, dir);
        return dir;
    }

    /// <summary>
    /// Runs into a new folder and stops (as a kill would) once <paramref name="method"/> has finished round
    /// <paramref name="round"/>.
    /// </summary>
    private static string Interrupted(SimulationConfig config, string method, int round)
    {
        string dir = TinyRuns.TempDir("cut");
        Assert.Throws<Stop>(() => RunFolder.Run(config, dir, new RunHooks
        {
            Progress = p => { if (p.Method == method && p.Round == round) throw new Stop(); },
        }));
        Assert.That(File.Exists(Path.Combine(dir, RunFolder.SummaryFile)), Is.False,
            "an interrupted run has no summary");
        Assert.That(RunFolder.ReadInfo(dir)!.Status, Is.EqualTo("failed"), "an exception marks the run failed " +
                                                                           "(a kill leaves it running)");
        return dir;
    }

    private static void AssertSameResults(string expected, string actual)
    {
        foreach (var f in new[] { RunFolder.RoundsFile, RunFolder.SummaryFile })
            Assert.That(File.ReadAllText(Path.Combine(actual, f)),
                Is.EqualTo(File.ReadAllText(Path.Combine(expected, f))), f);
    }

    [Test]
    public void ResumedRunEqualsUninterruptedRun()
    {
        var config = TinyRuns.Config("fednano", "centralized");
        string full = Uninterrupted(config);
        // stopped in the middle of the first method and at the end of it (between methods)
        foreach (var (method, round) in new[] { ("fednano", 2), ("fednano", 3) })
        {
            string cut = Interrupted(config, method, round);
            Assert.That(RunCheckpoints.List(cut), Has.Count.EqualTo(2), "the last two checkpoints are kept");
            var outcome = RunFolder.Run(config, cut);
            Assert.That(outcome.ResumedFromStep, Is.EqualTo(round));
            AssertSameResults(full, cut);
            Assert.That(RunFolder.ReadInfo(cut)!.Resumes, Has.Count.EqualTo(1));
        }
        // a finished folder is not run again
        Assert.That(RunFolder.Run(config, full).AlreadyFinished, Is.True);
    }

    /// <summary>
    /// Every method continues exactly; the personalising ones (local: own adapters; feddpa-f after its last round:
    /// local LoRA) put their clients' state into the checkpoint.
    /// </summary>
    [TestCase("local", 2, true)]
    [TestCase("fedprox", 2, false)]
    [TestCase("fednano-ef", 2, false)]
    [TestCase("feddpa-f", 2, false)]
    [TestCase("feddpa-f", 3, true)]
    public void EveryMethodResumesToTheUninterruptedResult(string method, int round, bool clientState)
    {
        var config = TinyRuns.Config(method);
        string full = Uninterrupted(config);
        string cut = Interrupted(config, method, round);
        var keys = FedNano.Checkpoints.SafetensorsFile
            .Open(Path.Combine(RunCheckpoints.List(cut)[^1], "tensors.safetensors")).Entries.Keys;
        Assert.That(keys.Any(k => k.StartsWith("client/", StringComparison.Ordinal)), Is.EqualTo(clientState),
            "client state in the checkpoint");
        var outcome = RunFolder.Run(config, cut);
        Assert.That(outcome.ResumedFromStep, Is.EqualTo(round));
        AssertSameResults(full, cut);
    }

    [Test]
    public void CorruptNewestCheckpointIsReportedAndTheOlderOneIsUsed()
    {
        var config = TinyRuns.Config("fedavg");
        string full = Uninterrupted(config);
        string cut = Interrupted(config, "fedavg", 2);
        var newest = RunCheckpoints.List(cut)[^1];
        string tensors = Path.Combine(newest, "tensors.safetensors");
        var bytes = File.ReadAllBytes(tensors);
        bytes[^3] ^= 0x55;                        // one flipped byte in the data
        File.WriteAllBytes(tensors, bytes);
        Directory.CreateDirectory(
            Path.Combine(cut, RunCheckpoints.Folder, ".step-000003.0123.tmp")); // a half-written one

        var log = new List<string>();
        var outcome = RunFolder.Run(config, cut, new RunHooks { Log = log.Add });
        Assert.That(outcome.ResumedFromStep, Is.EqualTo(1));
        Assert.That(log, Has.Some.Contains(Path.GetFileName(newest)).And.Contains("SHA-256"));
        Assert.That(log, Has.Some.Contains("half-written"));
        AssertSameResults(full, cut);
    }

    [Test]
    public void TruncatedStateIsReportedAndTheRunStartsOverWhenNothingIsLeft()
    {
        var config = TinyRuns.Config("fedavg");
        string full = Uninterrupted(config);
        string cut = Interrupted(config, "fedavg", 1);
        var only = RunCheckpoints.List(cut).Single();
        var state = Path.Combine(only, "state.json");
        File.WriteAllText(state, File.ReadAllText(state)[..40]);
        var log = new List<string>();
        var outcome = RunFolder.Run(config, cut, new RunHooks { Log = log.Add });
        Assert.That(outcome.ResumedFromStep, Is.EqualTo(0));
        Assert.That(log, Has.Some.Contains("unusable"));
        AssertSameResults(full, cut);
    }

    [Test]
    public void FolderOfAnotherConfigIsRefusedNamingTheFields()
    {
        var config = TinyRuns.Config("fedavg");
        string cut = Interrupted(config, "fedavg", 1);
        var e = Assert.Throws<ConfigException>(
            () => RunFolder.Run(config with { Rounds = 2, LearningRate = 0.01 }, cut))!;
        Assert.That(e.Message, Does.Contain("rounds: 3 in the folder, 2 now")
            .And.Contain("learning_rate: 0.005 in the folder, 0.01 now"));
    }
}
