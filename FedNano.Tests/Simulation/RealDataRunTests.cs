using System.Globalization;
using System.Text.Json.Nodes;
using FedNano.Cli.Commands;
using FedNano.Data;
using FedNano.Data.Images;
using FedNano.Data.Synthetic;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Tests.Data;
using FedNano.Tokenizers;
using NUnit.Framework;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace FedNano.Tests.Simulation;

/// <summary>
/// <c>fednano run</c> on the ScienceQA and IconQA fixtures with a small random backbone of the tiny architecture
/// (the shipped one is not needed: the tests check the plumbing and the files, not accuracy).
/// </summary>
[NonParallelizable]
public class RealDataRunTests
{
    string dir = "", modelDir = "", config = "";
    TinyTokenizer tokenizer = null!;

    [OneTimeSetUp]
    public void MakeBackbone()
    {
        dir = DataFixtures.TempDir();
        modelDir = Path.Combine(dir, "backbone");
        Directory.CreateDirectory(modelDir);
        tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400,
            Path.Combine(modelDir, TinyTokenizer.FileName));
        var c = TinyBackbone.Config(tokenizer.VocabSize);
        c.Save(Path.Combine(modelDir, "config.json"));
        manual_seed(3);
        using var model = new LlavaModel(c);
        model.save_safetensors(Path.Combine(modelDir, "model.safetensors"));
        config = Path.Combine(dir, "fast.json");
        File.WriteAllText(config, $$"""
            { "clients": 2, "rounds": 1, "batch_size": 8, "min_partition_size": 10, "methods": ["fednano"],
              "adapter": { "rank": 4, "scale": 1.0 }, "seed": 1, "model_dir": "{{modelDir}}" }
            """);
    }

    [OneTimeTearDown]
    public void Clean() { if (Directory.Exists(dir)) Directory.Delete(dir, true); }

    static (int Code, string Err) Run(params string[] args)
    {
        var e = Console.Error;
        var se = new StringWriter();
        Console.SetError(se);
        try { return (RunCommand.Build().Parse(args).Invoke(), se.ToString()); }
        finally { Console.SetError(e); }
    }

    static List<string[]> Csv(string path) => File.ReadAllLines(path).Skip(1).Select(l => l.Split(',')).ToList();

    /// <summary>
    /// Checks what every real-data run folder must hold and returns the breakdown rows (method, group, category,
    /// count, correct, accuracy).
    /// </summary>
    static List<string[]> CheckRunFolder(string outDir, int poolSize)
    {
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EquivalentTo(new[]
            { "summary.csv", "rounds.csv", "config.json", "run.json", "breakdown.csv", "predictions-zero-shot.json",
                "predictions-fednano.json" }));
        var summary = Csv(Path.Combine(outDir, "summary.csv"));
        var breakdown = Csv(Path.Combine(outDir, "breakdown.csv"));
        foreach (var method in new[] { "zero-shot", "fednano" })
        {
            var perClient = summary.Where(r => r[0] == method && r[1] != "mean").ToArray();
            int tests = perClient.Sum(r => int.Parse(r[3]));
            double correct = perClient.Sum(r =>
                double.Parse(r[2], CultureInfo.InvariantCulture) / 100 * int.Parse(r[3])); // accuracy_pct
            var avg = breakdown.Single(r => r[0] == method && r[2] == "Avg");
            // the breakdown pools every client's test part: its counts agree with the per-client accuracies
            Assert.That(int.Parse(avg[3]), Is.EqualTo(tests));
            Assert.That(int.Parse(avg[4]), Is.EqualTo((int)Math.Round(correct)));
            Assert.That(tests, Is.GreaterThanOrEqualTo(2).And.LessThan(poolSize / 2),
                "each client holds out about test_fraction of its part");
            var results = JsonNode.Parse(
                File.ReadAllText(Path.Combine(outDir, $"predictions-{method}.json")))!["results"]!.AsObject();
            Assert.That(results, Has.Count.EqualTo(tests));
        }
        return breakdown;
    }

    [Category("Slow")]
    [Test]
    public void IconQaRunWritesThePerTaskAndSkillBreakdown()
    {
        string outDir = Path.Combine(dir, "iconqa-run");
        var (code, err) =
            Run("--config", config, "--dataset", "iconqa", "--data-root", DataFixtures.IconQa, "--out", outDir);
        Assert.That((code, err), Is.EqualTo((0, "")));
        var rows = CheckRunFolder(outDir, 150);
        var fednano = rows.Where(r => r[0] == "fednano").ToArray();
        Assert.That(fednano.Where(r => r[1] == "task").Select(r => r[2]),
            Is.EqualTo(new[] { "choose_img", "choose_txt", "fill_in_blank" }));
        int avg = int.Parse(fednano.Single(r => r[2] == "Avg")[3]);
        Assert.That(fednano.Where(r => r[1] == "task").Sum(r => int.Parse(r[3])), Is.EqualTo(avg));
        Assert.That(fednano.Where(r => r[1] == "skill").Sum(r => int.Parse(r[3])), Is.EqualTo(avg));
        // the default partition label for IconQA is its skill; the run records it
        Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["partition_by"]!
            .GetValue<string>(), Is.EqualTo("skill"));
        // free answers are written as text, multiple choice as an option index
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "predictions-fednano.json")))!["results"]!
            .AsObject();
        var loaded = FedNano.Data.IconQa.IconQaLoader.Load(DataFixtures.IconQa).Splits.Values.SelectMany(s => s)
            .ToDictionary(s => s.Id);
        foreach (var (pid, value) in results)
        {
            var s = loaded[pid];
            if (s.IsMultipleChoice) Assert.That(value!.GetValue<int>(), Is.InRange(0, s.Choices.Count - 1));
            else Assert.That(value!.GetValueKind(), Is.EqualTo(System.Text.Json.JsonValueKind.String));
        }
    }

    [Category("Slow")]
    [Test]
    public void ScienceQaWithCaptionsWritesTheOfficialCategories()
    {
        string outDir = Path.Combine(dir, "scienceqa-run");
        var (code, err) = Run("--config", config, "--dataset", "scienceqa", "--data-root", DataFixtures.ScienceQa,
            "--missing-images", "caption", "--partition-by", "subject", "--out", outDir);
        Assert.That((code, err), Is.EqualTo((0, "")));
        var rows = CheckRunFolder(outDir, 150);
        foreach (var method in new[] { "zero-shot", "fednano" })
        {
            var m = rows.Where(r => r[0] == method).ToArray();
            Assert.That(m.Select(r => r[2]),
                Is.EqualTo(new[] { "NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg" }));
            int Count(string cat) => int.Parse(m.Single(r => r[2] == cat)[3]);
            Assert.That(Count("NAT") + Count("SOC") + Count("LAN"), Is.EqualTo(Count("Avg")));
            Assert.That(Count("G1-6") + Count("G7-12"), Is.EqualTo(Count("Avg")));
        }
    }

    [Test]
    public void BadInputIsOneLineAndNothingIsWritten()
    {
        string outDir = Path.Combine(dir, "bad-run");
        var (code, err) = Run("--config", config, "--dataset", "iconqa", "--data-root", DataFixtures.IconQa,
            "--partition-by", "colour", "--out", outDir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("partition label 'colour'").And.Contain("skill"));
        Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        (code, err) = Run("--config", config, "--dataset", "scienceqa", "--out", outDir);
        Assert.That((code, err), Is.EqualTo((2, "fednano: dataset 'scienceqa' needs data_root (--data-root): " +
            "the folder holding the official release (from " + config + " and the command line)" +
            Environment.NewLine)));
        string nowhere = Path.Combine(dir, "no-such-folder");
        (code, err) = Run("--config", config, "--dataset", "scienceqa", "--data-root", nowhere, "--out", outDir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(nowhere).And.Contain("not found"));
        (code, err) = Run("--config", config, "--dataset", "scienceqa", "--data-root", DataFixtures.ScienceQa,
            "--missing-images", "blank", "--out", outDir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("'blank'").And.Contain("error, caption, skip"));
        // the fixture has no image files: the default policy says so and how to go on
        (code, err) =
            Run("--config", config, "--dataset", "scienceqa", "--data-root", DataFixtures.ScienceQa, "--out", outDir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--missing-images"));
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".partial"), Is.False);
    }

    [Test]
    public void LongContextsAreCutAtAWordToTheTokenBudget()
    {
        string shortText = "The sun is a star.";
        Assert.That(Experiment.TruncateContext(shortText, tokenizer, 96), Is.SameAs(shortText));
        string longText = string.Join(' ', Enumerable.Range(0, 60).Select(i => $"word{i} xylophonist"));
        const int max = 40;
        string cut = Experiment.TruncateContext(longText, tokenizer, max)!;
        Assert.That(tokenizer.Encode(cut), Has.Count.LessThanOrEqualTo(max));
        Assert.That(cut, Does.EndWith(" ..."));
        string kept = cut[..^4];
        Assert.That(longText, Does.StartWith(kept + " "));
        // maximal: one more word would not fit
        string oneMore = string.Join(' ', longText.Split(' ').Take(kept.Split(' ').Length + 1)) + " ...";
        Assert.That(tokenizer.Encode(oneMore), Has.Count.GreaterThan(max));
    }

    [Test]
    public void TheTinyPixelFunctionTakesFilesAndInMemoryPixels()
    {
        var c = TinyBackbone.Config(tokenizer.VocabSize);
        var pixels = TinyBackbone.PixelsFor(c);
        int n = c.VisionConfig.ImageSize;
        var rng = new Random(5);
        var chw = Enumerable.Range(0, 3 * n * n).Select(_ => (float)rng.NextDouble()).ToArray();
        using var inMemory = pixels(SampleImage.FromPixels(chw, n, n));
        for (int i = 0; i < chw.Length; i += 97)
        {
            int ch = i / (n * n);
            float expected = (chw[i] - c.ImageMean[ch]) / c.ImageStd[ch];
            Assert.That(inMemory[ch, (i % (n * n)) / n, i % n].item<float>(), Is.EqualTo(expected).Within(1e-5f));
        }
        string file = Directory.EnumerateFiles(DataFixtures.IconQa, "image.png", SearchOption.AllDirectories).First();
        using var fromFile = pixels(SampleImage.FromFile(file));
        using var reference = ImageProcessor.For(c).Process(SampleImage.FromFile(file));
        Assert.That(fromFile.shape, Is.EqualTo(new long[] { 3, n, n }));
        Assert.That(fromFile.equal(reference).all().item<bool>(), Is.True);
    }
}
