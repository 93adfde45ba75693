using System.Text.Json;
using NUnit.Framework;
using static FedNano.Tests.Simulation.RunCommandTests;

namespace FedNano.Tests.Experiments;

[NonParallelizable]
public class ExperimentCommandTests
{
    private static string ConfigFile(string dir, double learningRate = 0.005)
    {
        var c = TinyRuns.Config("fedavg") with { Rounds = 1, LearningRate = learningRate };
        string path = Path.Combine(dir, $"config-{learningRate}.json");
        File.WriteAllText(path, c.ToJson());
        return path;
    }

    [Category("Slow")]
    [Test]
    public void SweepTwiceThenReport()
    {
        string dir = TinyRuns.TempDir("cli"), outDir = Path.Combine(dir, "sweep");
        string[] args = ["sweep", "--config", ConfigFile(dir), "--alphas", "0.5,2", "--methods", "fedavg",
            "--seeds", "0", "--out", outDir];
        Assert.That(Fednano(args).code, Is.Zero);
        var stamps = Directory.GetFiles(outDir, "summary.csv", SearchOption.AllDirectories)
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);
        Assert.That(stamps, Has.Count.EqualTo(2));
        Assert.That(Fednano(args).code, Is.Zero);
        Assert.That(stamps.All(p => File.GetLastWriteTimeUtc(p.Key) == p.Value), "the second start reran nothing");
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "aggregate.csv"))[0], Is.EqualTo(
            "alpha,clients,method,client,seeds,accuracy_mean_pct,accuracy_std_pct,uploaded_params_per_round"));

        var (code, err) = Fednano("sweep", "--config", ConfigFile(dir, 0.01), "--out", outDir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("different config").And.Contain("learning_rate: 0.005 in the folder, 0.01 now"));

        Assert.That(Fednano("report", outDir).code, Is.Zero);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.md")),
            Does.Contain("| Method | α = 0.5 | α = 2 |"));
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "plots"), "*.png"), Has.Length.EqualTo(2 + 2 + 1 + 1));
    }

    [Test]
    public void BadResumeAndReportInputIsOneLineExitTwo()
    {
        string dir = TinyRuns.TempDir("cli-bad");
        foreach (var (args, expected) in new[]
        {
            (new[] { "run", "--resume", Path.Combine(dir, "nope") }, "folder not found"),
            (["run", "--resume", dir, "--seed", "1"], "drop the other options"),
            (["run", "--resume", dir], "has no config.json"),
            (["report", dir], "neither a sweep folder"),
            (["sweep", "--config", ConfigFile(dir), "--alphas", "0.5,x", "--out", Path.Combine(dir, "s")],
                "--alphas '0.5,x'"),
        })
        {
            var (code, err) = Fednano(args);
            Assert.That(code, Is.EqualTo(2), string.Join(' ', args));
            Assert.That(err, Does.Contain(expected));
            Assert.That(err, Does.Not.Contain("   at "));
        }
    }
}
