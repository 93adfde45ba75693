using System.Text.Json.Nodes;
using FedNano.Experiments;
using FedNano.Tests.Experiments;
using NUnit.Framework;

namespace FedNano.Tests.Reliability;

/// <summary>Checkpoints belong to their config; unusable ones and an unreadable run.json are moved aside, never mixed
/// in.</summary>
[NonParallelizable]
public class CheckpointBindingTests
{
    private string dir = "";

    [SetUp] public void SetUp() => dir = TinyRuns.TempDir("binding");
    [TearDown] public void TearDown() { RunFolder.InjectOutOfMemoryAtStep = null; Directory.Delete(dir, true); }

    /// <summary>A fedavg run of 3 rounds into a new folder, failed (as by an out-of-memory) after checkpoint
    /// <paramref name="step"/>.</summary>
    private string Failed(int step)
    {
        string config = Cli.Config(dir,
            new Dictionary<string, object?> { ["rounds"] = 3, ["methods"] = new[] { "fedavg" } });
        string run = Path.Combine(dir, $"run-{Guid.NewGuid():N}");
        RunFolder.InjectOutOfMemoryAtStep = step;
        Assert.That(Cli.Fednano("run", "--config", config, "--out", run).code, Is.EqualTo(1));
        RunFolder.InjectOutOfMemoryAtStep = null;
        return run;
    }

    private static void EditConfig(string run, Action<JsonObject> edit)
    {
        string path = Path.Combine(run, RunFolder.ConfigFile);
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(j);
        File.WriteAllText(path, j.ToJsonString());
    }

    [TestCase("rounds", 2, "rounds: 3 in the checkpoint, 2 now")]
    [TestCase("learning_rate", 0.5, "learning_rate: 0.002 in the checkpoint, 0.5 now")]
    public void ResumingWithAnEditedConfigIsRefusedNamingTheField(string field, double value, string expected)
    {
        string run = Failed(2);
        EditConfig(run, j => j[field] = value);
        var (code, err) = Cli.Fednano("run", "--resume", run);
        Assert.That(code, Is.EqualTo(2), err);
        Cli.AssertOneLine(err);
        Assert.That(err, Does.Contain(expected));
        Assert.That(RunCheckpoints.List(run), Has.Count.EqualTo(2), "the checkpoints are left as they were");
    }

    [Test]
    public void AfterARestartCausedByCorruptCheckpointsTheNewGoodOnesAreKept()
    {
        string run = Failed(2);
        foreach (var c in RunCheckpoints.List(run)) File.WriteAllText(Path.Combine(c, "state.json"), "{ not json");
        var (code, err) = Cli.Fednano("run", "--resume", run);
        Assert.That(code, Is.Zero, err);
        var kept = RunCheckpoints.List(run).Select(Path.GetFileName).ToArray();
        Assert.That(kept, Is.EqualTo(new[] { "step-000002", "step-000003" }),
            "the newest checkpoints of the new start are the ones kept");
        Assert.That(Directory.GetDirectories(Path.Combine(run, RunCheckpoints.Folder), ".unusable-*"),
            Has.Length.EqualTo(2));
    }

    [Test]
    public void AnUnreadableRunJsonIsMovedAsideNotOverwritten()
    {
        string run = Failed(1);
        string info = Path.Combine(run, RunFolder.InfoFile);
        File.WriteAllText(info, "{ \"status\": ");
        var (code, err) = Cli.Fednano("run", "--resume", run);
        Assert.That(code, Is.Zero, err);
        var aside = Directory.GetFiles(run, "run.json.unreadable-*");
        Assert.That(aside, Has.Length.EqualTo(1));
        Assert.That(File.ReadAllText(aside[0]), Is.EqualTo("{ \"status\": "));
        Assert.That(RunFolder.ReadInfo(run)!.Status, Is.EqualTo("finished"));
    }
}
