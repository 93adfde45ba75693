using System.Text.Json.Nodes;
using FedNano.Data;
using FedNano.Data.IconQa;
using FedNano.Data.Images;
using FedNano.Data.ScienceQa;
using FedNano.Tests.Data;
using NUnit.Framework;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace FedNano.Tests.Reliability;

/// <summary>Data files may only name files inside the data root; ids are in one split; images decode at load
/// time.</summary>
public class DataConfinementTests
{
    private string tmp = "";

    [SetUp] public void SetUp() => tmp = DataFixtures.TempDir();
    [TearDown] public void TearDown() => Directory.Delete(tmp, true);

    private string ScienceQaCopy()
    {
        string root = Path.Combine(tmp, "sqa");
        DataFixtures.CopyDir(DataFixtures.ScienceQa, root);
        return root;
    }

    private string IconQaCopy()
    {
        string root = Path.Combine(tmp, "iconqa");
        DataFixtures.CopyDir(DataFixtures.IconQa, root);
        return root;
    }

    private static void Edit(string path, Action<JsonObject> edit)
    {
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(j);
        File.WriteAllText(path, j.ToJsonString());
    }

    private static string Png(string path, int width = 32, int height = 32)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var img = new Image<Rgb24>(width, height, new Rgb24(200, 10, 10));
        img.SaveAsPng(path);
        return path;
    }

    private static readonly DatasetLoadOptions Caption = new() { MissingImages = MissingImagePolicy.Caption };

    [TestCase(true)]
    [TestCase(false)]
    public void AScienceQaImageOutsideTheRootIsRefused(bool absolute)
    {
        string root = ScienceQaCopy(), outside = Png(Path.Combine(tmp, "outside.png"));
        string image = absolute ? outside : Path.GetRelativePath(Path.Combine(root, "images", "train", "1"), outside);
        Edit(Path.Combine(root, "problems.json"), j => j["1"]!["image"] = image);
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(root, Caption))!;
        Assert.That(e.Message, Does.Contain("problem 1").And.Contain("outside the data root"));
    }

    [Test]
    public void AnIconQaIdOutsideTheRootIsRefused()
    {
        string root = IconQaCopy();
        Edit(Path.Combine(root, "iconqa_data", "pid_splits.json"),
            j => j["choose_txt_train"]!.AsArray().Add("../../../evil"));
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(root))!;
        Assert.That(e.Message, Does.Contain("'../../../evil'").And.Contain("outside the data root"));
    }

    [Test]
    public void AnIdInTwoSplitsIsRefused()
    {
        string sqa = ScienceQaCopy(), icon = IconQaCopy();
        Edit(Path.Combine(sqa, "pid_splits.json"), j => j["test"]!.AsArray().Add("1"));
        Assert.That(Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(sqa, Caption))!.Message,
            Does.Contain("'1' is in split 'train' and in split 'test'"));
        string splits = Path.Combine(icon, "iconqa_data", "pid_splits.json");
        string id = JsonNode.Parse(File.ReadAllText(splits))!["choose_txt_train"]![0]!.GetValue<string>();
        Edit(splits, j => j["choose_txt_test"]!.AsArray().Add(id));
        Assert.That(Assert.Throws<ConfigException>(() => IconQaLoader.Load(icon))!.Message,
            Does.Contain($"'{id}' is in split 'train' and in split 'test'"));
    }

    [Test]
    public void APngCutShortIsRefusedAtLoadTime()
    {
        string root = ScienceQaCopy();
        string png = Png(Path.Combine(root, "images", "train", "1", "image.png"));
        var bytes = File.ReadAllBytes(png);
        File.WriteAllBytes(png, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ConfigException>(() => ScienceQaLoader.Load(root))!;
        Assert.That(e.Message, Does.Contain(Path.Combine("images", "train", "1", "image.png") + " (id 1,"));
    }

    [Test]
    public void AnImageWhosePaddedSquareIsAbsurdIsRefusedBeforeDecoding()
    {
        string png = Png(Path.Combine(tmp, "wide.png"), 50000, 1);
        Assert.That(new FileInfo(png).Length, Is.LessThan(10_000));
        var e = Assert.Throws<ConfigException>(() => new ImageProcessor(32, [0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f])
            .Process(SampleImage.FromFile(png), "s1").Dispose())!;
        Assert.That(e.Message, Does.Contain("50000 x 1").And.Contain("sample s1"));
    }
}
