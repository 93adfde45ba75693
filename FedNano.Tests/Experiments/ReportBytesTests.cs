using FedNano.Experiments;
using FedNano.Reports;
using NUnit.Framework;

namespace FedNano.Tests.Experiments;

/// <summary>The report's uploaded bytes come from <c>rounds.csv</c>'s <c>uploaded_bytes</c> (Fisher values count), and older files without it still read.</summary>
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
        Assert.That(ef.All(r => r.UploadedFisher == r.UploadedParams && r.UploadedParams > 0), Is.True, "FedNano-EF uploads a Fisher value per parameter");
        double fromLedger = ef.Sum(r => 4.0 * (r.UploadedParams + r.UploadedFisher));  // float32 parameters and Fisher values
        Assert.That(new SweepReport([run]).UploadedBytes(config.Clients, "fednano-ef")!.Value.Mean, Is.EqualTo(fromLedger));

        // a rounds.csv written before the ledger: only the parameters, at 4 bytes each, and accuracy as a fraction
        string rounds = Path.Combine(dir, RunFolder.RoundsFile);
        var lines = File.ReadAllLines(rounds);
        var header = lines[0].Split(',');
        string[] legacy = ["method", "round", "client", "accuracy_pct", "loss", "train_loss", "uploaded_params"];
        var keep = legacy.Select(c => Array.IndexOf(header, c)).ToArray();
        string Fraction(string pct) => (double.Parse(pct, System.Globalization.CultureInfo.InvariantCulture) / 100).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllLines(rounds, [string.Join(",", legacy).Replace("accuracy_pct", "accuracy"),
            .. lines.Skip(1).Select(l => string.Join(",", keep.Select((i, j) => j == 3 ? Fraction(l.Split(',')[i]) : l.Split(',')[i])))]);
        var old = RunResults.Load(dir);
        Assert.That(old.Rounds.Where(r => r.Method == "fednano-ef").Select(r => r.UploadedBytes), Is.EqualTo(ef.Select(r => 4 * r.UploadedParams)));
        Assert.That(old.Rounds.Select(r => r.Accuracy), Is.EqualTo(run.Rounds.Select(r => r.Accuracy)).Within(1e-9), "a fraction read as percent");
        Assert.That(old.Rounds.All(r => r.ClientResidentParams is null && r.DownloadedParams == 0), Is.True);
        Directory.Delete(dir, true);
    }
}
