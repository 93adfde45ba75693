using System.Text.Json.Nodes;
using FedNano.Data;
using FedNano.Data.IconQa;
using NUnit.Framework;

namespace FedNano.Tests.Data;

public class IconQaLoaderTests
{
    string? _tmp;

    [TearDown]
    public void Clean() { if (_tmp is not null && Directory.Exists(_tmp)) Directory.Delete(_tmp, true); _tmp = null; }

    static string DataRoot => Path.Combine(DataFixtures.IconQa, "iconqa_data");

    [Test]
    public void InspectCountsTheFixture()
    {
        var r = DatasetInspector.Inspect("iconqa", DataFixtures.IconQa);
        int dataFiles = Directory.GetFiles(DataRoot, "data.json", SearchOption.AllDirectories).Length;
        int pngs = Directory.GetFiles(DataRoot, "*.png", SearchOption.AllDirectories).Length;
        Assert.That(r.Total, Is.EqualTo(150).And.EqualTo(dataFiles));
        Assert.That(r.Groups, Is.EquivalentTo(new Dictionary<string, int>
            { ["choose_img"] = 50, ["choose_txt"] = 50, ["fill_in_blank"] = 50 }));
        Assert.That(r.ImagesReferenced, Is.EqualTo(pngs));
        Assert.That(r.ImagesFound, Is.EqualTo(r.ImagesReferenced));
        Assert.That(r.MissingImages, Is.Empty);
        Assert.That(r.ChoiceCounts.Single(kv => kv.Key == 0).Value, Is.EqualTo(50));
    }

    [Test]
    public void LoadsEveryTaskAsItsDataJsonSays()
    {
        var ds = IconQaLoader.Load(DataFixtures.IconQa);
        var all = ds.Splits.Values.SelectMany(x => x).ToList();
        Assert.That(all, Has.Count.EqualTo(150));
        foreach (var s in all)
        {
            string folder = Path.Combine(DataRoot, "iconqa", s.Meta["split"], s.Meta["task"], s.Id);
            var d = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "data.json")))!;
            Assert.That(s.Question, Is.EqualTo((string)d["question"]!));
            Assert.That(s.Meta["skill"], Is.EqualTo((string)d["label"]!));
            Assert.That(s.Meta["grade"], Is.EqualTo((string)d["grade"]!));
            Assert.That(s.Image!.Path, Is.EqualTo(Path.Combine(folder, "image.png")));
            Assert.That(s.Context, Is.EqualTo((string?)d["hint"]));
            switch (s.Meta["task"])
            {
                case "fill_in_blank":
                    Assert.That(s.IsMultipleChoice, Is.False);
                    Assert.That(s.AnswerText, Is.EqualTo((string)d["answer"]!));
                    break;
                case "choose_img":
                    Assert.That(s.AnswerIndex, Is.EqualTo((int)d["answer"]!));
                    Assert.That(s.ChoiceImages!.Select(c => c.Path),
                        Is.EqualTo(d["choices"]!.AsArray().Select(c => Path.Combine(folder, (string)c!))));
                    break;
                default:
                    Assert.That(s.Choices, Is.EqualTo(d["choices"]!.AsArray().Select(c => (string)c!)));
                    Assert.That(s.ChoiceImages, Is.Null);
                    Assert.That(s.AnswerIndex, Is.EqualTo((int)d["answer"]!));
                    break;
            }
        }
    }

    [Test]
    public void AnswerIndexOutOfRangeNamesFileAndQuestion()
    {
        var (pid, dataJson) = CopyAndPick("choose_txt");
        var d = JsonNode.Parse(File.ReadAllText(dataJson))!;
        d["answer"] = 9;
        File.WriteAllText(dataJson, d.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(_tmp!))!;
        Assert.That(e.Message, Does.Contain(dataJson).And.Contain($"question {pid}").And.Contain("answer index 9"));
    }

    [Test]
    public void MalformedDataJsonNamesTheFile()
    {
        var (_, dataJson) = CopyAndPick("fill_in_blank");
        File.WriteAllText(dataJson, "{\"question\": \"How many?\", \"answer\": ");
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(_tmp!))!;
        Assert.That(e.Message, Does.Contain(dataJson).And.Contain("malformed"));
    }

    [Test]
    public void SplitNamingAnUnknownIdNamesFileAndId()
    {
        CopyAndPick("choose_img");
        string splits = Path.Combine(_tmp!, "iconqa_data", "pid_splits.json");
        var doc = (JsonObject)JsonNode.Parse(File.ReadAllText(splits))!;
        doc["choose_img_test"]!.AsArray().Add("424242");
        File.WriteAllText(splits, doc.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(_tmp!))!;
        Assert.That(e.Message, Does.Contain("pid_splits.json").And.Contain("'424242'").And.Contain("choose_img_test"));
    }

    [Test]
    public void CorruptChoiceImageUnderErrorNamesFileAndQuestion_SkipDropsIt()
    {
        var (pid, dataJson) = CopyAndPick("choose_img");
        string choice = Path.Combine(Path.GetDirectoryName(dataJson)!, "choice_1.png");
        File.WriteAllText(choice, "not a png");
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(_tmp!))!;
        Assert.That(e.Message, Does.Contain("choice_1.png").And.Contain($"id {pid}").And.Contain("1 of"));
        var ds = IconQaLoader.Load(_tmp!, new DatasetLoadOptions { MissingImages = MissingImagePolicy.Skip });
        Assert.That(ds.Skipped, Is.EqualTo(1));
        Assert.That(ds.Splits.Values.SelectMany(x => x).Select(s => s.Id).ToList(),
            Has.No.Member(pid).And.Count.EqualTo(149));
    }

    [Test]
    public void MissingImageUnderErrorNamesFileAndQuestion()
    {
        var (pid, dataJson) = CopyAndPick("fill_in_blank");
        File.Delete(Path.Combine(Path.GetDirectoryName(dataJson)!, "image.png"));
        var e = Assert.Throws<ConfigException>(() => IconQaLoader.Load(_tmp!))!;
        Assert.That(e.Message,
            Does.Contain(Path.Combine(pid, "image.png")).And.Contain($"id {pid}").And.Contain("missing"));
    }

    [Test]
    public void CaptionPolicyIsRefusedForIconQa() =>
        Assert.That(() => IconQaLoader.Load(DataFixtures.IconQa,
                new DatasetLoadOptions { MissingImages = MissingImagePolicy.Caption }),
            Throws.TypeOf<ConfigException>().With.Message.Contain("caption"));

    [Test]
    public void UnknownPartitionLabelIsNamed()
    {
        var train = IconQaLoader.Load(DataFixtures.IconQa).Split("train");
        var e = Assert.Throws<ConfigException>(() => RealDatasets.LabelValues(train, "subject"))!;
        Assert.That(e.Message, Does.Contain("'subject'").And.Contain("data.json").And.Contain("skill"));
        Assert.That(RealDatasets.LabelValues(train, "task"), Is.EquivalentTo(IconQaLoader.Tasks));
    }

    /// <summary>
    /// Copies the fixture into a temp folder and returns one question of <paramref name="task"/> in its train split.
    /// </summary>
    (string Pid, string DataJson) CopyAndPick(string task)
    {
        _tmp = DataFixtures.TempDir();
        DataFixtures.CopyDir(DataFixtures.IconQa, _tmp);
        string dir = Directory.GetDirectories(Path.Combine(_tmp, "iconqa_data", "iconqa", "train", task))
            .Order(StringComparer.Ordinal).First();
        return (Path.GetFileName(dir), Path.Combine(dir, "data.json"));
    }
}
