using FedNano.Experiments;
using FedNano.Tests.Experiments;
using NUnit.Framework;

namespace FedNano.Tests.Reliability;

/// <summary>report, sweep and resume use a run's CSV files only when they hold every row its config implies.</summary>
[NonParallelizable]
public class ResultVerificationTests
{
    private string dir = "";

    [SetUp] public void SetUp() => dir = TinyRuns.TempDir("verify");
    [TearDown] public void TearDown() => Directory.Delete(dir, true);

    private string FinishedRun()
    {
        string run = Path.Combine(dir, "run");
        var config = TinyRuns.Config("fedavg") with { Rounds = 1, SyntheticSamples = 32 };
        RunFolder.Run(config, run);
        return run;
    }

    private static void CutMidRow(string file)
    {
        string text = File.ReadAllText(file);
        File.WriteAllText(file, text[..(text.Length * 2 / 3)]);
    }

    [TestCase("summary.csv", true)]
    [TestCase("summary.csv", false)]
    [TestCase("rounds.csv", true)]
    public void ReportRefusesFilesCutShortAndResumeRewritesThem(string file, bool midRow)
    {
        string run = FinishedRun(), path = Path.Combine(run, file);
        string whole = File.ReadAllText(path);
        if (midRow) CutMidRow(path); else File.WriteAllText(path, "");
        Assert.That(RunFolder.IsFinished(run), Is.False);

        var (code, err) = Cli.Fednano("report", run);
        Assert.That(code, Is.EqualTo(2), err);
        Cli.AssertOneLine(err);
        Assert.That(err, Does.Contain(file).And.Contain("--resume"));
        Assert.That(File.Exists(Path.Combine(run, "report.md")), Is.False);

        (code, err) = Cli.Fednano("run", "--resume", run);
        Assert.That(code, Is.Zero, err);
        Assert.That(File.ReadAllText(path), Is.EqualTo(whole));
    }

    [Test]
    public void ASweepCellWithOnlyAHeaderIsRedoneNotAggregated()
    {
        var config = TinyRuns.Config("fedavg") with { Rounds = 1, SyntheticSamples = 32 };
        var grid = new SweepGrid([1.0], ["fedavg"], [0, 1], [2]);
        string sweep = Path.Combine(dir, "sweep");
        var first = Sweep.Run(config, grid, sweep);
        var cell = Sweep.Cells(config, grid)[1];
        string summary = Path.Combine(Sweep.CellDir(sweep, cell), "summary.csv");
        File.WriteAllText(summary, File.ReadAllLines(summary)[0] + "\n");

        var again = Sweep.Run(config, grid, sweep);
        Assert.That(again.Ran.Select(c => c.Name), Is.EqualTo(new[] { cell.Name }));
        Assert.That(again.Aggregate.Select(r => r.Seeds), Is.All.EqualTo(2));
        Assert.That(again.Aggregate, Is.EqualTo(first.Aggregate));
    }
}
