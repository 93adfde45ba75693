using FedNano.Experiments;
using FedNano.Reports;
using NUnit.Framework;

namespace FedNano.Tests.Experiments;

/// <summary>
/// The report's uploaded bytes come from <c>rounds.csv</c>'s <c>uploaded_bytes</c> (Fisher values count), and older
/// files without it still read.
/// </summary>
public class ReportBytesTests
{
    [Category("Slow")]
    [Test]
    public void UploadedBytesAreTheLedgersAndOlderFilesFallBackToFourBytesAParameter()
    {
        var config = TinyRuns.Config("fednano-ef");
        string dir = TinyRuns.TempDir("bytes");
        RunFolder.Run(config, dir);
        var run = RunResults.Load(dir);
        var ef = run.Rounds.Where(r => r.Method == "fednano-ef").ToArray();
        Assert.That(ef.All(r => r.UploadedFisher == r.UploadedParams && r.UploadedParams > 0), Is.True,
            "FedNano-EF uploads a Fisher value per parameter");
        // float32 parameters and Fisher values
        double fromLedger = ef.Sum(r => 4.0 * (r.UploadedParams + r.UploadedFisher));
        Assert.That(new SweepReport([run]).UploadedBytes(config.Clients, "fednano-ef")!.Value.Mean,
            Is.EqualTo(fromLedger));

        // a rounds.csv written before the ledger: only the parameters, at 4 bytes each, and accuracy as a fraction
        string rounds = Path.Combine(dir, RunFolder.RoundsFile);
        var lines = File.ReadAllLines(rounds);
        var header = lines[0].Split(',');
        string[] legacy = ["method", "round", "client", "accuracy_pct", "loss", "train_loss", "uploaded_params"];
        var keep = legacy.Select(c => Array.IndexOf(header, c)).ToArray();
        string Fraction(string pct) => (double.Parse(pct, System.Globalization.CultureInfo.InvariantCulture) / 100)
            .ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllLines(rounds, [string.Join(",", legacy).Replace("accuracy_pct", "accuracy"),
            .. lines.Skip(1).Select(l => string.Join(",",
                keep.Select((i, j) => j == 3 ? Fraction(l.Split(',')[i]) : l.Split(',')[i])))]);
        var old = RunResults.Load(dir);
        Assert.That(old.Rounds.Where(r => r.Method == "fednano-ef").Select(r => r.UploadedBytes),
            Is.EqualTo(ef.Select(r => 4 * r.UploadedParams)));
        Assert.That(old.Rounds.Select(r => r.Accuracy), Is.EqualTo(run.Rounds.Select(r => r.Accuracy)).Within(1e-9),
            "a fraction read as percent");
        Assert.That(old.Rounds.All(r => r.ClientResidentParams is null && r.DownloadedParams == 0), Is.True);
        Directory.Delete(dir, true);
    }

    [Test]
    [Category("Slow")]
    public void ReportShowsUploadsApartAndTheDataSetsBreakdownInPercentWithClientsFromZero()
    {
        var config = TinyRuns.Config("fednano-ef", "fedavg");
        string dir = TinyRuns.TempDir("report-parts");
        RunFolder.Run(config, dir);
        var run = RunResults.Load(dir);
        var ef = run.Rounds.First(r => r.Method == "fednano-ef" && r.UploadedParams > 0);
        var report = new SweepReport([run]);
        Assert.That(report.UploadPerRound("fednano-ef"),
            Is.EqualTo(((double)ef.UploadedParams, (double)ef.UploadedFisher, (double)ef.UploadedBytes)));
        Assert.That(report.UploadPerRound("fedavg")!.Value.Fisher, Is.Zero);
        Assert.That(report.UploadPerRound("zero-shot"), Is.Null);
        Assert.That(report.Setting, Is.EqualTo("synthetic, tiny backbone"));
        var summary = run.Summary.Single(s => s.Method == "fedavg" && s.Client == "mean");
        Assert.That(report.Final(2, 1.0, "fedavg", "mean")!.Value.Mean, Is.EqualTo(summary.Accuracy).Within(1e-9),
            "both in percent");
        Assert.That(summary.Accuracy, Is.GreaterThan(1), "percent, not a fraction");

        // a breakdown.csv as a real-data run writes it: tasks and Avg in report.md, the many skill rows left out
        File.WriteAllLines(Path.Combine(dir, RunFolder.BreakdownFile),
        [
            "method,group,category,count,correct,accuracy_pct", "fedavg,task,choose_txt,4,3,75.00",
            "fedavg,skill,S1,4,1,25.00",
            "fedavg,all,Avg,4,3,75.00", "zero-shot,task,choose_txt,4,1,25.00", "zero-shot,all,Avg,4,1,25.00",
        ]);
        report.Write(dir, "run");
        string md = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(md, Does.Contain("| Group | Category | n | zero-shot | fedavg |")
            .And.Contain("| task | choose_txt | 4 | 25.0 | 75.0 |"));
        Assert.That(md, Does.Not.Contain("| skill |"));
        Assert.That(md, Does.Contain("| Method | Client 0 | Client 1 | **Avg** | n |")
            .And.Contain("3 rounds of 1 local epoch").And.Contain("1 finished run."));
        Assert.That(File.Exists(Path.Combine(dir, "plots", "uploads-per-round.png")));
        Directory.Delete(dir, true);
    }
}
