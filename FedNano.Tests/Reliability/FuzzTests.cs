using System.Text.Json.Nodes;
using FedNano.Experiments;
using FedNano.Tests.Data;
using FedNano.Tests.Experiments;
using NUnit.Framework;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace FedNano.Tests.Reliability;

/// <summary>
/// Generated configs, option values and corrupted files (safetensors, JSON, CSV, PNG) thrown at the commands, from a
/// fixed seed: every exit code is 0, 1 or 2, a failure is one line without "Unhandled exception" or a stack trace,
/// and a failed command leaves no half-written folder (none at all, or one whose run.json says failed).
/// </summary>
[NonParallelizable]
public class FuzzTests
{
    private string dir = "";
    private readonly Random rng = new(12);
    private int cases;
    private readonly int[] codes = new int[3];

    [SetUp] public void SetUp() => dir = TinyRuns.TempDir("fuzz");
    [TearDown] public void TearDown() => Directory.Delete(dir, true);

    private static readonly string[] Values =
        ["null", "-1", "0", "1", "2", "3", "0.5", "1e400", "-1e400", "99999999999", "\"x\"", "\"\"", "true", "[]", "{}",
            "[null]", "NaN", "\"all\""];
    private static readonly string[] Fields =
    [
        "synthetic_samples", "clients", "alpha", "min_partition_size", "rounds", "batch_size", "adapter", "methods",
        "seed", "learning_rate", "test_fraction", "client_fraction", "fisher_floor", "fedprox_mu", "feddpa",
        "max_grad_norm", "weight_decay",
        "partition_by", "dataset", "missing_images", "backbone", "device", "precision", "on_nonfinite", "local_epochs",
        "max_context_tokens", "nonsense_field",
    ];
    private static readonly string[] OptionValues =
        ["0", "-1", "1", "2", "1e400", "NaN", "abc", "99999999999", "", "0.1,x", "1,,2"];

    private T Pick<T>(IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    /// <summary>Runs fednano and checks the contract; <paramref name="outDir"/> is the folder the command may
    /// write.</summary>
    private int Check(string? outDir, params string[] args)
    {
        cases++;
        bool existed = outDir is not null && Directory.Exists(outDir);
        var (code, err) = Cli.Fednano(args);
        string what = string.Join(" ", args);
        Assert.That(code, Is.AnyOf(0, 1, 2), what);
        codes[code]++;
        if (code == 1) TestContext.Out.WriteLine($"exit 1: {what}: {err}");
        Assert.That(err, Does.Not.Contain("Unhandled exception").And.Not.Contain("   at "), what);
        if (code != 0)
        {
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), what + ": " + err);
            if (outDir is not null && !existed && Directory.Exists(outDir))
                Assert.That(RunFolder.ReadInfo(outDir)?.Status, Is.EqualTo("failed"), $"{what}: a half-written folder");
        }
        return code;
    }

    private string RawConfig(IEnumerable<(string Field, string Raw)> changes)
    {
        var fields = new Dictionary<string, string>
        {
            ["synthetic_samples"] = "40", ["clients"] = "2", ["alpha"] = "1.0", ["min_partition_size"] = "8",
            ["rounds"] = "1", ["batch_size"] = "8", ["adapter"] = "{\"rank\": 4}", ["methods"] = "[\"fedavg\"]",
            ["model_dir"] = $"\"{TinyRuns.BackboneDir}\"",
        };
        foreach (var (f, v) in changes) fields[f] = v;
        string path = Path.Combine(dir, $"c{cases}.json");
        File.WriteAllText(path, "{" + string.Join(", ", fields.Select(p => $"\"{p.Key}\": {p.Value}")) + "}");
        return path;
    }

    private static void Corrupt(Random rng, string file)
    {
        var bytes = File.ReadAllBytes(file);
        switch (rng.Next(4))
        {
            case 0: File.WriteAllBytes(file, bytes[..rng.Next(bytes.Length)]); break;                  // cut short
            case 1: bytes[rng.Next(Math.Min(bytes.Length, 200))] ^= (byte)(1 + rng.Next(255));
                File.WriteAllBytes(file, bytes); break;
            case 2: bytes[rng.Next(bytes.Length)] ^= 0x80; File.WriteAllBytes(file, bytes); break;    // anywhere
            default:
                File.WriteAllBytes(file, [.. Enumerable.Range(0, rng.Next(1, 64)).Select(_ => (byte)rng.Next(256))]);
                break;
        }
    }

    [Test]
    public void GeneratedInputsNeverCrash()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // configs with one or two fields set to generated values
        for (int i = 0; i < 150; i++)
        {
            var changes = Enumerable.Range(0, 1 + rng.Next(2)).Select(_ => (Pick(Fields), Pick(Values))).ToArray();
            string outDir = Path.Combine(dir, $"run{cases}");
            Check(outDir, "run", "--config", RawConfig(changes), "--out", outDir);
        }
        // option values
        string config = RawConfig([]);
        foreach (var option in new[] { "--alpha", "--rounds", "--rank", "--clients", "--seed", "--method" })
        {
            string outDir = Path.Combine(dir, $"run{cases}");
            Check(outDir, "run", "--config", config, option, Pick(OptionValues), "--out", outDir);
        }
        foreach (var option in new[] { "--alphas", "--seeds", "--clients", "--methods" })
        {
            string outDir = Path.Combine(dir, $"sweep{cases}");
            Check(outDir, "sweep", "--config", config, option, Pick(OptionValues), "--out", outDir);
        }
        Check(null, "params", "--model", "tiny", "--rank", Pick(OptionValues));

        // corrupted backbone files, read by partition (loads the backbone and the data, trains nothing)
        for (int i = 0; i < 16; i++)
        {
            string model = Path.Combine(dir, $"model{i}");
            DataFixtures.CopyDir(TinyRuns.BackboneDir, model);
            Corrupt(rng, Path.Combine(model,
                Pick(new[] { "model.safetensors", "model.safetensors", "config.json", "vocab.txt" })));
            Check(null, "partition", "--config", config, "--model-dir", model);
        }

        // corrupted result files of a finished run, read by report and by run --resume
        string finished = Path.Combine(dir, "finished");
        Assert.That(Check(finished, "run", "--config", config, "--out", finished), Is.Zero);
        for (int i = 0; i < 10; i++)
        {
            string run = Path.Combine(dir, $"finished{i}");
            DataFixtures.CopyDir(finished, run);
            Corrupt(rng, Path.Combine(run, Pick(new[] { "summary.csv", "rounds.csv", "config.json", "run.json" })));
            Check(null, "report", run);
            Check(null, "run", "--resume", run);
        }

        // a ScienceQA copy with its images, one PNG corrupted
        string sqa = Path.Combine(dir, "sqa");
        DataFixtures.CopyDir(DataFixtures.ScienceQa, sqa);
        var problems = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(sqa, "problems.json")))!;
        var images = problems.Where(p => p.Value!["image"]?.GetValue<string>() is { Length: > 0 })
            .Select(p => Path.Combine(sqa, "images", p.Value!["split"]!.GetValue<string>(), p.Key,
                p.Value!["image"]!.GetValue<string>())).ToArray();
        foreach (var png in images)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(png)!);
            using var img = new Image<Rgb24>(32, 32, new Rgb24(10, 200, 10));
            img.SaveAsPng(png);
        }
        for (int i = 0; i < 8; i++)
        {
            string png = Pick(images);
            var good = File.ReadAllBytes(png);
            Corrupt(rng, png);
            Check(null, "partition", "--config", config, "--dataset", "scienceqa", "--data-root", sqa,
                "--missing-images", Pick(new[] { "error", "skip" }));
            File.WriteAllBytes(png, good);
        }
        TestContext.Out.WriteLine($"{cases} cases in {clock.Elapsed.TotalSeconds:F0} s; exit 0/1/2: " +
                                  $"{string.Join("/", codes)}");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromMinutes(2)));
    }
}
