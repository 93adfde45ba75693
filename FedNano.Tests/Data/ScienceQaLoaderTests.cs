using System.Text.Json.Nodes;
using FedNano.Data;
using FedNano.Data.ScienceQa;
using NUnit.Framework;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace FedNano.Tests.Data;

public class ScienceQaLoaderTests
{
    string? _tmp;

    [TearDown]
    public void Clean() { if (_tmp is not null && Directory.Exists(_tmp)) Directory.Delete(_tmp, true); _tmp = null; }

    [Test]
    public void InspectCountsTheFixture()
    {
        var r = DatasetInspector.Inspect("scienceqa", DataFixtures.ScienceQa);
        var problems = DataFixtures.ScienceQaProblems();
        Assert.That(r.Total, Is.EqualTo(150).And.EqualTo(problems.Count));
        Assert.That(r.Splits,
            Is.EquivalentTo(new Dictionary<string, int> { ["train"] = 50, ["val"] = 50, ["test"] = 50 }));
        Assert.That(r.WithImage, Is.EqualTo(67));
        Assert.That(r.ImagesFound, Is.Zero);
        Assert.That(r.MissingImages, Has.Count.EqualTo(67));
        Assert.That(r.Groups, Is.EquivalentTo(new Dictionary<string, int>
            { ["natural science"] = 97, ["language science"] = 37, ["social science"] = 16 }));
        Assert.That(r.ChoiceCounts.Sum(kv => kv.Value), Is.EqualTo(150));
        // the image paths follow the official layout images/{split}/{pid}/image.png
        Assert.That(r.MissingImages, Does.Contain(Path.Combine("images", "train", "1", "image.png")));
    }

    [Test]
    public void MissingImagesUnderErrorAreCountedAndNamed()
    {
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(DataFixtures.ScienceQa))!;
        Assert.That(e.Message, Does.Contain("67 of 67"));
        Assert.That(e.Message, Does.Contain(Path.Combine("images", "train", "1", "image.png")));
        Assert.That(e.Message, Does.Contain("--missing-images"));
    }

    [Test]
    public void CaptionPolicyPutsTheOfficialCaptionAfterTheHint()
    {
        var ds = ScienceQaLoader.Load(DataFixtures.ScienceQa,
            new DatasetLoadOptions { MissingImages = MissingImagePolicy.Caption });
        var problems = DataFixtures.ScienceQaProblems();
        var captions = DataFixtures.ScienceQaCaptions();
        Assert.That(ds.Splits.Keys, Is.EqualTo(new[] { "train", "val", "test" }));
        Assert.That(ds.Splits.Values.Sum(s => s.Count), Is.EqualTo(150));
        Assert.That(ds.Captioned, Is.EqualTo(67));
        foreach (var s in ds.Splits.Values.SelectMany(x => x))
        {
            var p = problems[s.Id]!;
            string hint = (string?)p["hint"] ?? "";
            bool hasImage = !string.IsNullOrEmpty((string?)p["image"]);
            Assert.That(s.Image, Is.Null);
            Assert.That(s.Meta["has_image"], Is.EqualTo(hasImage ? "true" : "false"));
            Assert.That(s.Meta["has_context"], Is.EqualTo(hint.Length > 0 ? "true" : "false"));
            Assert.That(s.Meta["subject"], Is.EqualTo((string)p["subject"]!));
            Assert.That(s.Meta["split"], Is.EqualTo((string)p["split"]!));
            Assert.That(s.AnswerIndex, Is.EqualTo((int)p["answer"]!));
            Assert.That(s.Context, Is.EqualTo(hasImage ? (hint + " " + (string)captions[s.Id]!).Trim() : hint));
        }
    }

    [Test]
    public void SkipPolicyDropsImageProblems()
    {
        var ds = ScienceQaLoader.Load(DataFixtures.ScienceQa,
            new DatasetLoadOptions { MissingImages = MissingImagePolicy.Skip });
        Assert.That(ds.Skipped, Is.EqualTo(67));
        Assert.That(ds.Splits.Values.Sum(s => s.Count), Is.EqualTo(150 - 67));
        Assert.That(ds.Splits.Values.SelectMany(x => x).All(s => s.Meta["has_image"] == "false"));
    }

    [Test]
    public void PresentImagesAreReferencedByPath()
    {
        _tmp = MiniRelease(out _);
        string img = Path.Combine(_tmp, "images", "test", "2", "image.png");
        Directory.CreateDirectory(Path.GetDirectoryName(img)!);
        using (var im = new Image<Rgb24>(4, 3)) im.SaveAsPng(img);
        var s = ScienceQaLoader.Load(_tmp).Split("test").Single(x => x.Id == "2");
        Assert.That(s.Image!.Path, Is.EqualTo(img));
    }

    [Test]
    public void MalformedJsonNamesTheFile()
    {
        _tmp = MiniRelease(out var problemsPath);
        File.WriteAllText(problemsPath, File.ReadAllText(problemsPath)[..^3]);
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(_tmp))!;
        Assert.That(e.Message, Does.Contain(problemsPath).And.Contain("malformed"));
    }

    [Test]
    public void AnswerIndexOutOfRangeNamesFileAndProblem()
    {
        _tmp = MiniRelease(out var problemsPath);
        var doc = (JsonObject)JsonNode.Parse(File.ReadAllText(problemsPath))!;
        doc["1"]!["answer"] = 7;
        File.WriteAllText(problemsPath, doc.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(_tmp))!;
        Assert.That(e.Message, Does.Contain(problemsPath).And.Contain("problem 1").And.Contain("answer index 7"));
    }

    [Test]
    public void SplitNamingAnUnknownIdNamesFileAndId()
    {
        _tmp = MiniRelease(out _);
        File.WriteAllText(Path.Combine(_tmp, "pid_splits.json"), """{"train": ["1"], "test": ["2", "999"]}""");
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(_tmp))!;
        Assert.That(e.Message, Does.Contain("pid_splits.json").And.Contain("'999'").And.Contain("'test'"));
    }

    [Test]
    public void CorruptImageUnderErrorNamesFileAndProblem()
    {
        _tmp = MiniRelease(out _);
        string img = Path.Combine(_tmp, "images", "test", "2", "image.png");
        Directory.CreateDirectory(Path.GetDirectoryName(img)!);
        File.WriteAllBytes(img, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(_tmp))!;
        Assert.That(e.Message, Does.Contain(Path.Combine("images", "test", "2", "image.png"))
            .And.Contain("id 2").And.Contain("unreadable"));
    }

    [Test]
    public void MissingImageUnderErrorNamesFileAndProblem()
    {
        _tmp = MiniRelease(out _);
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(_tmp))!;
        Assert.That(e.Message,
            Does.Contain(Path.Combine("images", "test", "2", "image.png")).And.Contain("id 2").And.Contain("missing"));
    }

    [Test]
    public void UnknownPartitionLabelNamesTheSampleAndKnownFields()
    {
        var ds = ScienceQaLoader.Load(DataFixtures.ScienceQa,
            new DatasetLoadOptions { MissingImages = MissingImagePolicy.Skip });
        var train = ds.Split("train");
        var e = Assert.Throws<ConfigException>(() => RealDatasets.LabelValues(train, "colour"))!;
        Assert.That(e.Message, Does.Contain("'colour'").And.Contain($"sample {train[0].Id}")
            .And.Contain("problems.json").And.Contain("category"));
        var categories = RealDatasets.LabelValues(train, "category");
        Assert.That(categories, Is.EquivalentTo(train.Select(s => s.Meta["category"]).Distinct()));
    }

    [Test]
    public void UnknownSplitRequestedIsNamed()
    {
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(DataFixtures.ScienceQa,
            new DatasetLoadOptions { MissingImages = MissingImagePolicy.Skip, Splits = ["minitest"] }))!;
        Assert.That(e.Message, Does.Contain("'minitest'").And.Contain("pid_splits.json"));
    }

    /// <summary>
    /// A two-problem release (problem 1 text-only in train, problem 2 with an image in test) in a temp folder.
    /// </summary>
    static string MiniRelease(out string problemsPath)
    {
        string dir = DataFixtures.TempDir();
        var all = DataFixtures.ScienceQaProblems();
        var text = all.First(kv => string.IsNullOrEmpty((string?)kv.Value!["image"])).Value!.DeepClone();
        var image = all.First(kv => !string.IsNullOrEmpty((string?)kv.Value!["image"])).Value!.DeepClone();
        text["split"] = "train"; image["split"] = "test";
        problemsPath = Path.Combine(dir, "problems.json");
        File.WriteAllText(problemsPath, new JsonObject { ["1"] = text, ["2"] = image }.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "pid_splits.json"), """{"train": ["1"], "test": ["2"]}""");
        return dir;
    }
}
