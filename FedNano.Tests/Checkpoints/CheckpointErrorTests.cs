using System.Text;
using System.Text.Json.Nodes;
using FedNano.Checkpoints;
using NUnit.Framework;
using static TorchSharp.torch;
using static FedNano.Tests.Checkpoints.LlavaCheckpointTests;

namespace FedNano.Tests.Checkpoints;

/// <summary>Broken copies of the reference checkpoints: each is refused at Open, naming the key and the file.</summary>
public class CheckpointErrorTests
{
    private TempCopy tmp = null!;
    private string converted = null!, original = null!;

    [SetUp]
    public void Copy()
    {
        tmp = new TempCopy(Root);
        converted = Path.Combine(tmp.Path, "converted", "llava-tiny-hf");
        original = Path.Combine(tmp.Path, "original", "llava-tiny");
    }

    [TearDown]
    public void Delete() => tmp.Dispose();

    private static string ShardOf(string dir, string key) => SafetensorsCheckpoint.Open(dir).Owner[key].Path;

    /// <summary>
    /// Rewrites the shard holding <paramref name="key"/> with <paramref name="edit"/> applied to its tensors.
    /// </summary>
    private static string EditShard(string dir, string key, Action<Dictionary<string, Tensor>> edit)
    {
        var path = ShardOf(dir, key);
        var file = SafetensorsFile.Open(path);
        var tensors = file.Entries.Values.OrderBy(e => e.Begin).ToDictionary(e => e.Name, e => file.Read(e.Name));
        edit(tensors);
        SafetensorsFile.Save(path, tensors);
        return path;
    }

    private static void EditJson(string path, Action<JsonObject> edit)
    {
        var root = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(root);
        File.WriteAllText(path, root.ToJsonString());
    }

    private static ConfigException Refused(string dir)
        => Assert.Throws<ConfigException>(() => LlavaCheckpoint.Open(dir))!;

    [Test]
    public void MissingKeyIsNamedInItsLayout()
    {
        const string key = "model.layers.1.mlp.up_proj.weight";
        EditShard(original, key, t => t.Remove(key));
        EditJson(Path.Combine(original, SafetensorsCheckpoint.IndexFile), j => j["weight_map"]!.AsObject().Remove(key));
        var e = Refused(original);
        Assert.That(e.Message, Does.Contain("missing").And.Contain($"'{key}'").And.Contain(original));
    }

    [Test]
    public void KeyListedInIndexButAbsentFromItsShard()
    {
        const string key = "language_model.model.norm.weight";
        var shard = EditShard(converted, key, t => t.Remove(key));
        var e = Refused(converted);
        Assert.That(e.Message, Does.Contain(key).And.Contain(Path.GetFileName(shard)).And.Contain("index.json"));
    }

    [Test]
    public void UnexpectedKeyIsRefused()
    {
        const string key = "language_model.model.norm.weight";
        var shard = EditShard(converted, key, t => t["language_model.model.extra.weight"] = zeros(3));
        EditJson(Path.Combine(converted, SafetensorsCheckpoint.IndexFile),
            j => j["weight_map"]!["language_model.model.extra.weight"] = Path.GetFileName(shard));
        var e = Refused(converted);
        Assert.That(e.Message, Does.Contain("unexpected key 'language_model.model.extra.weight'").And.Contain(shard));
    }

    [Test]
    public void WrongShapeIsRefused()
    {
        const string key = "multi_modal_projector.linear_1.weight";
        var shard = EditShard(converted, key, t => t[key] = zeros(32, 31));
        var e = Refused(converted);
        Assert.That(e.Message, Does.Contain(key).And.Contain(shard).And.Contain("[32, 31]").And.Contain("[32, 32]"));
    }

    [Test]
    public void ConfigThatDisagreesWithTheWeights()
    {
        EditJson(Path.Combine(converted, "config.json"), j => j["text_config"]!["intermediate_size"] = 48);
        var e = Refused(converted);
        Assert.That(e.Message,
            Does.Contain("config").And.Contain("mlp.").And.Contain("[48, 32]").And.Contain(".safetensors"));

        EditJson(Path.Combine(original, "config.json"), j => j["num_hidden_layers"] = 3);
        Assert.That(Refused(original).Message, Does.Contain("missing").And.Contain("'model.layers.2."));

        EditJson(Path.Combine(original, "config.json"), j => { j["num_hidden_layers"] = 2; j["mm_hidden_size"] = 64; });
        Assert.That(Refused(original).Message, Does.Contain("mm_hidden_size 64").And.Contain("clip-vit-tiny"));
    }

    [Test]
    public void UnknownDtypeIsRefused()
    {
        // the original layout is float16: relabel the first tensor of a shard as U16, a dtype FedNano does not read
        var shard = Path.Combine(original, "model-00002-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)BitConverter.ToInt64(bytes, 0));
        int at = header.IndexOf("\"F16\"", StringComparison.Ordinal);
        int keyStart = header.LastIndexOf("\"dtype\"", at, StringComparison.Ordinal);
        var key = header[..keyStart].TrimEnd('{', ':', '"').Split('"')[^1];
        Encoding.UTF8.GetBytes("\"U16\"").CopyTo(bytes, 8 + at);
        File.WriteAllBytes(shard, bytes);
        var e = Refused(original);
        Assert.That(e.Message, Does.Contain("unknown dtype 'U16'").And.Contain($"'{key}'").And.Contain(shard));
    }

    [Test]
    public void TruncatedShardIsRefusedBeforeAnythingIsRead()
    {
        var shard = Path.Combine(converted, "model-00002-of-00002.safetensors");
        using (var f = File.OpenWrite(shard)) f.SetLength(f.Length - 100);
        var e = Refused(converted);
        Assert.That(e.Message, Does.Contain("truncated").And.Contain(shard).And.Contain("tensor '"));
    }

    [Test]
    public void MissingShardIsNamed()
    {
        File.Delete(Path.Combine(original, "model-00001-of-00002.safetensors"));
        Assert.That(Refused(original).Message, Does.Contain("model-00001-of-00002.safetensors").And.Contain("missing"));
    }

    [Test]
    public void PickledCheckpointsAreNeverRead()
    {
        foreach (var f in Directory.GetFiles(converted, "*.safetensors*")) File.Delete(f);
        File.WriteAllBytes(Path.Combine(converted, "pytorch_model.bin"), [0x80, 0x02]);
        Assert.That(Refused(converted).Message, Does.Contain("pytorch_model.bin").And.Contain("never unpickles"));
    }

    [Test]
    public void SaveAndReadRoundTripEveryDtype()
    {
        var path = Path.Combine(tmp.Path, "roundtrip.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(2, 3), ["f16"] = randn(4).to(ScalarType.Float16),
            ["bf16"] = randn(3, 1).to(ScalarType.BFloat16),
            ["i64"] = arange(5), ["empty"] = zeros(0, 4),
        };
        SafetensorsFile.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var file = SafetensorsFile.Open(path);
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        foreach (var (k, t) in tensors)
        {
            var back = file.Read(k);
            Assert.That(back.dtype, Is.EqualTo(t.dtype), k);
            Assert.That(back.shape, Is.EqualTo(t.shape), k);
            Assert.That(back.equal(t).all().item<bool>(), Is.True, k);
        }
        Assert.That(Directory.GetFiles(tmp.Path, "*.tmp"), Is.Empty);
    }
}
