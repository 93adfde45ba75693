using System.Text;
using System.Text.Json.Nodes;
using FedNano.Checkpoints;
using FedNano.Models;
using FedNano.Tests.Experiments;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Reliability;

/// <summary>Broken copies of a tiny backbone folder: each is refused by <see cref="TinyBackbone.Load"/>, naming the
/// file and key.</summary>
public class TinyBackboneFileTests
{
    private string dir = "";
    private string Weights => Path.Combine(dir, "model.safetensors");

    [SetUp]
    public void SetUp()
    {
        dir = TinyRuns.TempDir("tiny-files");
        foreach (var f in Directory.GetFiles(TinyRuns.BackboneDir))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
    }

    [TearDown] public void TearDown() => Directory.Delete(dir, true);

    private string Refused()
    {
        var e = Assert.Throws<ConfigException>(() => TinyBackbone.Load(dir).Model.Dispose())!;
        Assert.That(e.Message, Does.Not.Contain('\n'));
        return e.Message;
    }

    /// <summary>Rewrites the JSON header with <paramref name="edit"/> applied, the data section unchanged.</summary>
    internal static void EditHeader(string path, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes);
        var header = (JsonObject)JsonNode.Parse(bytes.AsSpan(8, (int)n))!;
        edit(header);
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)text.Length), .. text, .. bytes.AsSpan(8 + (int)n)]);
    }

    private const string Bias = "vision_tower.vision_model.pre_layrnorm.bias",
        Weight = "vision_tower.vision_model.pre_layrnorm.weight";

    [Test]
    public void TheShippedLayoutLoads() => TinyBackbone.Load(dir).Model.Dispose();

    [Test]
    public void TruncatedFile()
    {
        var bytes = File.ReadAllBytes(Weights);
        File.WriteAllBytes(Weights, bytes[..^100]);
        Assert.That(Refused(), Does.Contain(Weights).And.Contain("truncated"));
    }

    [Test]
    public void AbsurdHeaderLength()
    {
        var bytes = File.ReadAllBytes(Weights);
        BitConverter.GetBytes(1L << 62).CopyTo(bytes, 0);
        File.WriteAllBytes(Weights, bytes);
        Assert.That(Refused(), Does.Contain(Weights).And.Contain("header length"));
    }

    [Test]
    public void RandomBytes()
    {
        File.WriteAllBytes(Weights, Enumerable.Range(0, 5000).Select(i => (byte)(i * 7919 % 251)).ToArray());
        Assert.That(Refused(), Does.Contain(Weights));
    }

    [Test]
    public void CorruptHeaderJson()
    {
        var bytes = File.ReadAllBytes(Weights);
        bytes[8] = (byte)'[';
        bytes[9] = (byte)'}';
        File.WriteAllBytes(Weights, bytes);
        Assert.That(Refused(), Does.Contain(Weights).And.Contain("JSON"));
    }

    [Test]
    public void UnknownDtype()
    {
        EditHeader(Weights, h => h[Bias]!["dtype"] = "F8_E9");
        Assert.That(Refused(), Does.Contain(Bias).And.Contain("unknown dtype 'F8_E9'"));
    }

    [Test]
    public void ChangedDtypeOfTheSameSize()
    {
        EditHeader(Weights, h => h[Bias]!["dtype"] = "I32");
        Assert.That(Refused(), Does.Contain(Bias).And.Contain("I32"));
    }

    [Test]
    public void OverlappingOffsets()
    {
        EditHeader(Weights, h => h[Bias]!["data_offsets"] = h[Weight]!["data_offsets"]!.DeepClone());
        Assert.That(Refused(), Does.Contain(Bias).And.Contain(Weight).And.Contain("overlap"));
    }

    [Test]
    public void ShapesDisagreeingWithConfigJson()
    {
        string config = Path.Combine(dir, "config.json");
        var root = JsonNode.Parse(File.ReadAllText(config))!;
        root["text_config"]!["intermediate_size"] = 200;
        File.WriteAllText(config, root.ToJsonString());
        Assert.That(Refused(), Does.Contain("mlp").And.Contain("config.json disagrees"));
    }

    [Test]
    public void VocabularyDisagreeingWithConfigJson()
    {
        File.AppendAllText(Path.Combine(dir, "vocab.txt"), "extraword\n");
        Assert.That(Refused(), Does.Contain("vocab.txt").And.Contain("vocab_size"));
    }

    [Test]
    public void NonFiniteWeightsAreRefused()
    {
        var file = SafetensorsFile.Open(Weights);
        var tensors = file.Entries.Values.OrderBy(e => e.Begin).ToDictionary(e => e.Name, e => file.Read(e.Name));
        tensors[Bias][3] = float.NaN;
        SafetensorsFile.Save(Weights, tensors);
        Assert.That(Refused(), Does.Contain(Bias).And.Contain("NaN"));
    }
}
