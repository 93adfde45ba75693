using FedNano.Experiments;
using FedNano.Tests.Experiments;
using NUnit.Framework;

namespace FedNano.Tests.Reliability;

/// <summary>Every command's failures end as one line on stderr with exit code 2 (bad input) or 1 (anything
/// else).</summary>
[NonParallelizable]
public class ErrorBoundaryTests
{
    private string dir = "";

    [SetUp] public void SetUp() => dir = TinyRuns.TempDir("errors");
    [TearDown] public void TearDown() { RunFolder.InjectOutOfMemoryAtStep = null; Directory.Delete(dir, true); }

    [Test]
    public void AnInjectedOutOfMemoryIsOneLineExitOneAndTheFolderResumes()
    {
        string config = Cli.Config(dir, new Dictionary<string, object?> { ["rounds"] = 3 });
        string whole = Path.Combine(dir, "whole"), cut = Path.Combine(dir, "cut");
        Assert.That(Cli.Fednano("run", "--config", config, "--out", whole).code, Is.Zero);

        RunFolder.InjectOutOfMemoryAtStep = 2; // libtorch's own allocation failure, after round 2's checkpoint
        var (code, err) = Cli.Fednano("run", "--config", config, "--out", cut);
        Assert.That(code, Is.EqualTo(1));
        Cli.AssertOneLine(err);
        Assert.That(err, Does.Contain("out of memory").And.Contain("batch_size").And.Contain("eval_batch_tokens")
            .And.Contain("activation_checkpointing").And.Contain($"--resume {cut}"));
        var info = RunFolder.ReadInfo(cut)!;
        Assert.That(info.Status, Is.EqualTo("failed"));
        Assert.That(info.Error, Does.Contain("allocate"));

        RunFolder.InjectOutOfMemoryAtStep = null;
        (code, err) = Cli.Fednano("run", "--resume", cut);
        Assert.That(code, Is.Zero, err);
        Assert.That(RunFolder.ReadInfo(cut)!.Resumes, Has.Count.EqualTo(1));
        Assert.That(File.ReadAllText(Path.Combine(cut, "summary.csv")),
            Is.EqualTo(File.ReadAllText(Path.Combine(whole, "summary.csv"))));
    }

    [Test]
    public void OutputFoldersThatCannotBeWrittenAreOneLineExitOne()
    {
        string config = Cli.Config(dir);
        string file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "x");
        foreach (var args in new[]
        {
            new[] { "run", "--config", config, "--out", "/proc/fednano-x" },
            ["run", "--config", config, "--out", Path.Combine(file, "sub")],
            ["sweep", "--config", config, "--out", Path.Combine(file, "sub")],
            ["pretrain", "--samples", "30", "--epochs", "1", "--out", "/proc/fednano-x"],
        })
        {
            var (code, err) = Cli.Fednano(args);
            Assert.That(code, Is.EqualTo(1), string.Join(" ", args) + ": " + err);
            Cli.AssertOneLine(err);
            Assert.That(err, Does.Contain("writable"));
        }
    }

    [Test]
    public void VerboseAddsTheDetails()
    {
        string file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "x");
        var (code, err) =
            Cli.Fednano("run", "--config", Cli.Config(dir), "--out", Path.Combine(file, "sub"), "--verbose");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("   at "));
    }

    [Test]
    public void PretrainOptionsOutOfRangeAreExitTwo()
    {
        foreach (var bad in new[] { new[] { "--learning-rate", "-1" }, ["--learning-rate", "NaN"],
            ["--samples", "2000000000"], ["--epochs", "0"] })
        {
            var (code, err) = Cli.Fednano(["pretrain", "--out", Path.Combine(dir, "bb"), .. bad]);
            Assert.That(code, Is.EqualTo(2), err);
            Cli.AssertOneLine(err);
            Assert.That(err, Does.Contain(bad[0]));
            Assert.That(Directory.Exists(Path.Combine(dir, "bb")), Is.False);
        }
    }
}
