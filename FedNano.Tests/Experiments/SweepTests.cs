using FedNano.Experiments;
using FedNano.Reports;
using FedNano.Simulation;
using MathNet.Numerics.Statistics;
using NUnit.Framework;

namespace FedNano.Tests.Experiments;

/// <summary>
/// One small sweep (2 alphas x fedavg x 2 seeds, 2 rounds), cancelled in its third cell, that cell's newest checkpoint
/// corrupted, then started again twice: the tests look at what each start did and at the report.
/// </summary>
[Category("Slow")]
public class SweepTests
{
    private static readonly SimulationConfig Base = TinyRuns.Config("fedavg") with { Rounds = 2 };
    private static readonly SweepGrid Grid = new([0.5, 5], ["fedavg"], [0, 1], [2]);
    private string dir = "";
    private SweepCell cut = null!;
    private SweepOutcome second = null!, third = null!;
    private readonly List<string> log = [];

    [OneTimeSetUp]
    public void RunSweep()
    {
        dir = TinyRuns.TempDir("sweep");
        var cells = Sweep.Cells(Base, Grid);
        cut = cells[2];
        using var cancel = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => Sweep.Run(Base, Grid, dir, new SweepHooks
        {
            Cancel = cancel.Token,
            Progress = (cell, p) => { if (cell.Name == cut.Name && p.Round == 1) cancel.Cancel(); },
        }));
        var checkpoints = RunCheckpoints.List(Sweep.CellDir(dir, cut));
        Assert.That(checkpoints, Has.Count.EqualTo(2));
        File.WriteAllText(Path.Combine(checkpoints[^1], "state.json"), "{ \"format\": 1, \"st");   // partial
        second = Sweep.Run(Base, Grid, dir, new SweepHooks { Log = log.Add });
        third = Sweep.Run(Base, Grid, dir);
    }

    [Test]
    public void FinishedCellsAreSkippedAndTheSecondStartDoesNothing()
    {
        Assert.That(second.Skipped.Select(c => c.Name),
            Is.EquivalentTo(Sweep.Cells(Base, Grid).Take(2).Select(c => c.Name)));
        Assert.That(second.Ran.Select(c => c.Name), Is.EqualTo(Sweep.Cells(Base, Grid).Skip(2).Select(c => c.Name)));
        Assert.That(third.Ran, Is.Empty);
        Assert.That(third.Skipped, Has.Count.EqualTo(4));
        Assert.That(third.Aggregate, Is.EqualTo(second.Aggregate));
    }

    [Test]
    public void CorruptCheckpointIsReportedAndTheCellRedoneFromItsLastGoodRound()
    {
        Assert.That(log, Has.Some.Contains(cut.Name).And.Contains("unusable"));
        var info = RunFolder.ReadInfo(Sweep.CellDir(dir, cut))!;
        Assert.That(info.Resumes, Has.Count.EqualTo(1).And.Some.EndsWith("from step 1"));
        string fresh = TinyRuns.TempDir("fresh-cell");
        RunFolder.Run(cut.Config, fresh);
        foreach (var f in new[] { RunFolder.RoundsFile, RunFolder.SummaryFile })
            Assert.That(File.ReadAllText(Path.Combine(Sweep.CellDir(dir, cut), f)),
                Is.EqualTo(File.ReadAllText(Path.Combine(fresh, f))), f);
    }

    [Test]
    public void AggregateIsMeanAndSampleStdOverSeeds()
    {
        foreach (double alpha in Grid.Alphas)
        {
            var perSeed = Grid.Seeds
                .Select(s => RunResults.Load(
                    Sweep.CellDir(dir, Sweep.Cells(Base, Grid).Single(c => c.Alpha == alpha && c.Seed == s))))
                .Select(r => r.Summary.Single(x => x.Method == "fedavg" && x.Client == "mean").Accuracy).ToArray();
            var row = third.Aggregate.Single(a => a.Alpha == alpha && a.Method == "fedavg" && a.Client == "mean");
            Assert.That(row.Seeds, Is.EqualTo(2));
            // percent, rounded to 4 decimals in aggregate.csv
            Assert.That(row.AccuracyMean, Is.EqualTo((perSeed[0] + perSeed[1]) / 2).Within(1e-4));
            Assert.That(row.AccuracyStd, Is.EqualTo(Math.Abs(perSeed[0] - perSeed[1]) / Math.Sqrt(2)).Within(1e-4));
        }
        Assert.That(third.Aggregate.Count(a => a.Method == "zero-shot" && a.Client == "mean"), Is.EqualTo(2),
            "zero-shot once per alpha, over seeds");
        Assert.That(File.Exists(Path.Combine(dir, Sweep.AggregateFile)));
    }

    [Test]
    public void SweepOfAnotherConfigIsRefusedSayingWhatDiffers()
    {
        var e = Assert.Throws<ConfigException>(
            () => Sweep.Run(Base with { BatchSize = 4, Adapter = Base.Adapter with { Rank = 8 } }, Grid, dir))!;
        Assert.That(e.Message, Does.Contain("batch_size: 8 in the folder, 4 now")
            .And.Contain("adapter.rank: 4 in the folder, 8 now"));
        // the grid's own fields may change: more seeds is the same sweep extended
        Assert.DoesNotThrow(() => Sweep.Cells(Base with { Seed = 9 }, Grid));
    }

    [Test]
    public void ReportWritesTablesAndPlots()
    {
        string outDir = TinyRuns.TempDir("report");
        var report = SweepReport.Load(dir, out int unfinished);
        var files = report.Write(outDir, "test sweep", unfinished);
        Assert.That(unfinished, Is.EqualTo(0));
        string md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.That(md, Does.Contain("| Method | Client 0 | Client 1 | **Avg** | n |"),
            "clients numbered from 0, as in the CSV files");
        Assert.That(md, Does.Contain("| Method | α = 0.5 | α = 5 |"));
        var mean = report.Final(2, 0.5, "fedavg", "mean")!.Value;
        Assert.That(md, Does.Contain($"{mean.Mean:F1} ± {mean.Std:F1}"));
        Assert.That(files.Count(f => f.EndsWith(".png")), Is.EqualTo(2 * 2 + 1 + 1));
        foreach (var png in files.Where(f => f.EndsWith(".png")))
            Assert.That(File.ReadAllBytes(png)[..4],
                Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
    }
}
