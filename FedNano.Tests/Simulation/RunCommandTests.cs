using System.Text.Json;
using NUnit.Framework;

namespace FedNano.Tests.Simulation;

[NonParallelizable]
public class RunCommandTests
{
    private string dir = "";

    [SetUp]
    public void SetUp()
    {
        dir = Path.Combine(Path.GetTempPath(), "fednano-run-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    /// <summary>Runs the fednano entry point; returns its exit code and what it wrote to stderr.</summary>
    internal static (int code, string err) Fednano(params string[] args)
    {
        var err = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            return ((int)typeof(FedNano.Cli.Commands.RunCommand).Assembly.EntryPoint!.Invoke(null, [args])!,
                captured.ToString());
        }
        finally { Console.SetError(err); }
    }

    private string Config(object overrides)
    {
        var model = TestBackbones.SaveRandom(Path.Combine(dir, "model"));
        var fields = new Dictionary<string, object?>
        {
            ["synthetic_samples"] = 40, ["clients"] = 2, ["alpha"] = 1.0, ["min_partition_size"] = 8, ["rounds"] = 1,
            ["batch_size"] = 8, ["adapter"] = new { rank = 4 }, ["methods"] = new[] { "fednano" },
            ["model_dir"] = model,
        };
        foreach (var p in overrides.GetType().GetProperties()) fields[p.Name] = p.GetValue(overrides);
        string path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, JsonSerializer.Serialize(fields));
        return path;
    }

    [Category("Slow")]
    [Test]
    public void SameSeedGivesTheIdenticalSummaryAnotherSeedAnother()
    {
        string config = Config(new { });
        string Summary(string name, string seed)
        {
            var (code, err) = Fednano("run", "--config", config, "--seed", seed, "--out", Path.Combine(dir, name));
            Assert.That(code, Is.Zero, err);
            return File.ReadAllText(Path.Combine(dir, name, "summary.csv"));
        }
        string a = Summary("a", "0"), b = Summary("b", "0"), c = Summary("c", "1");
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
        Assert.That(a.Split('\n')[0], Does.StartWith("method,client,accuracy_pct,"));
        Assert.That(a, Does.Contain("zero-shot,mean,").And.Contain("fednano,mean,"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "a", "rounds.csv")).Split('\n')[0],
            Does.Contain("method,round,client,accuracy_pct,loss"));
    }

    private static readonly object[] BadInputs =
    [
        new object[] { new[] { "--config", "NOPE.json" }, "NOPE.json" },
        new object[] { new[] { "--method", "fedmagic" }, "unknown method 'fedmagic'" },
        new object[] { new[] { "--alpha", "0" }, "alpha must be > 0" },
        new object[] { new[] { "--alpha", "-1" }, "alpha must be > 0" },
        new object[] { new[] { "--rank", "0" }, "adapter.rank must be > 0" },
        new object[] { new[] { "--clients", "100" }, "100 clients but only 40 samples" },
        new object[] { new[] { "--rounds", "x" }, "--rounds" },
    ];

    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsOneLineExitTwoAndNothingWritten(string[] extra, string expected)
    {
        string config = Config(new { });
        string outDir = Path.Combine(dir, "out");
        var baseArgs = extra.Contains("--config")
            ? new[] { "run", "--out", outDir }
            : ["run", "--config", config, "--out", outDir];
        var args = baseArgs.Concat(extra).ToArray();
        var (code, err) = Fednano(args);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(expected));
        Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"), Is.False);
    }

    [TestCase("{\"alpha\": \"high\"}", "'$.alpha'")]
    [TestCase("{\"alpah\": 0.5}", "alpah")]
    [TestCase("{\"rounds\": 3,", "config.json")]
    public void MalformedConfigNamesTheField(string json, string expected)
    {
        string path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, json);
        var (code, err) = Fednano("run", "--config", path, "--out", Path.Combine(dir, "out"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(expected));
        Assert.That(err.TrimEnd().Split('\n'), Has.Length.LessThanOrEqualTo(2));
    }
}
