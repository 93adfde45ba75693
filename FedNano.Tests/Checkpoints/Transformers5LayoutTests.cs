using System.Text.Json.Nodes;
using FedNano.Checkpoints;
using FedNano.Models;
using NUnit.Framework;
using static TorchSharp.torch;
using static FedNano.Tests.Checkpoints.LlavaCheckpointTests;

namespace FedNano.Tests.Checkpoints;

/// <summary>
/// The converted reference checkpoint rewritten as transformers 5 writes <c>LlavaForConditionalGeneration</c>
/// (keys renamed, one file, a transformers-5 <c>config.json</c>): it loads with the same config and logits, and a
/// config.json field whose math is not implemented, or a config that is not a LLaVA one, is refused by name.
/// </summary>
public class Transformers5LayoutTests
{
    private TempCopy tmp = null!;

    [SetUp]
    public void Copy() => tmp = new TempCopy(Converted);

    [TearDown]
    public void Delete() => tmp.Dispose();

    private string ConfigPath => Path.Combine(tmp.Path, "config.json");

    /// <summary>Prefixes (vision tower, projector, language model, LM head) replacing the older layout's.</summary>
    private static readonly Dictionary<string, string[]> Variants = new()
    {
        // the modules' names in transformers 5 (LlavaForConditionalGeneration.model.*, CLIP without vision_model)
        ["in-memory"] = ["model.vision_tower.", "model.multi_modal_projector.", "model.language_model.", "lm_head."],
        // save_pretrained of a model built from a config in transformers 5.x (the legacy renaming reverted, the
        // CLIP prefix change dropped): the CLIP tower without vision_model
        ["saved"] = ["vision_tower.", "multi_modal_projector.", "language_model.model.", "language_model.lm_head."],
        ["saved-flat"] = ["vision_tower.", "multi_modal_projector.", "language_model.", "lm_head."],
    };

    private static readonly string[] OldPrefixes =
        ["vision_tower.vision_model.", "multi_modal_projector.", "language_model.model.", "language_model.lm_head."];

    /// <summary>Rewrites the copy in place: renamed keys in one model.safetensors, a transformers-5 config.</summary>
    private void MakeTransformers5(string variant)
    {
        var weights = SafetensorsCheckpoint.Open(tmp.Path);
        var tensors = weights.Owner.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
        {
            int i = Array.FindIndex(OldPrefixes, p.Key.StartsWith);
            return KeyValuePair.Create(Variants[variant][i] + p.Key[OldPrefixes[i].Length..], p.Value.Read(p.Key));
        }).ToList();
        foreach (var file in weights.Files) File.Delete(file.Path);
        File.Delete(Path.Combine(tmp.Path, SafetensorsCheckpoint.IndexFile));
        SafetensorsFile.Save(Path.Combine(tmp.Path, SafetensorsCheckpoint.SingleFile), tensors,
                             new Dictionary<string, string> { ["format"] = "pt" });

        EditConfig(root =>
        {
            root["dtype"] = root["torch_dtype"]!.DeepClone();
            root.Remove("torch_dtype");
            root["image_token_id"] = root["image_token_index"]!.DeepClone();
            root.Remove("image_token_index");
            root["image_seq_length"] = 16;
            root["multimodal_projector_bias"] = true;
            root["transformers_version"] = "5.17.0";
            var text = root["text_config"]!.AsObject();
            text["rope_parameters"] =
                new JsonObject { ["rope_theta"] = text["rope_theta"]!.DeepClone(), ["rope_type"] = "default" };
            text.Remove("rope_theta");
            text["head_dim"] = 8;
            text["attention_bias"] = false;
            text["mlp_bias"] = false;
            text["attention_dropout"] = 0.0;
            text["pretraining_tp"] = 1;
            text["eos_token_id"] = new JsonArray(2);
            text["dtype"] = "bfloat16";
            var vision = root["vision_config"]!.AsObject();
            vision["attention_dropout"] = 0.0;
            vision["dropout"] = 0.0;
            vision["initializer_factor"] = 1.0;
            vision["dtype"] = "bfloat16";
        });
    }

    private void EditConfig(Action<JsonObject> edit)
    {
        var root = (JsonObject)JsonNode.Parse(File.ReadAllText(ConfigPath))!;
        edit(root);
        File.WriteAllText(ConfigPath, root.ToJsonString());
    }

    private static Tensor Logits(LlavaModel model)
    {
        var r = SafetensorsFile.Open(Path.Combine(Root, "reference.safetensors"));
        using var _ = no_grad();
        var embed = model.LanguageModel.Model.EmbedTokens;
        var seq = cat([embed.forward(r.Read("input_ids_before_image")).unsqueeze(0),
                       model.ImageTokens(r.Read("pixel_values")),
                       embed.forward(r.Read("input_ids_after_image")).unsqueeze(0)], 1);
        return model.LanguageModel.forward(seq);
    }

    [TestCase("in-memory")]
    [TestCase("saved")]
    [TestCase("saved-flat")]
    public void LoadsWithTheSameConfigAndLogitsAsTheOlderLayout(string variant)
    {
        MakeTransformers5(variant);
        Assert.That(File.Exists(Path.Combine(tmp.Path, SafetensorsCheckpoint.IndexFile)), Is.False);
        var older = LlavaCheckpoint.Open(Converted);
        var v5 = LlavaCheckpoint.Open(tmp.Path);
        Assert.That(v5.Layout, Is.EqualTo(LlavaLayout.Converted));
        Assert.That(v5.Config.TextConfig, Is.EqualTo(older.Config.TextConfig));
        Assert.That(v5.Config.VisionConfig, Is.EqualTo(older.Config.VisionConfig));
        Assert.That(v5.TensorCount, Is.EqualTo(older.TensorCount));
        using var a = older.CreateModel();
        using var b = v5.CreateModel();
        var (la, lb) = (Logits(a), Logits(b));
        Assert.That(la.abs().max().item<float>(), Is.GreaterThan(1.0), "logits are not trivially small");
        Assert.That(la.equal(lb).all().item<bool>(), Is.True, "same weights, same logits, bit for bit");
    }

    [Test]
    public void RopeThetaIsReadFromRopeParameters()
    {
        MakeTransformers5("saved");
        EditConfig(j => j["text_config"]!["rope_parameters"]!["rope_theta"] = 500000.0);
        Assert.That(LlavaCheckpoint.Open(tmp.Path).Config.TextConfig.RopeTheta, Is.EqualTo(500000.0));
        EditConfig(j => j["text_config"]!["rope_theta"] = 10000.0);
        Assert.That(Refused().Message, Does.Contain("text_config.rope_theta").And.Contain("disagree"));
    }

    private ConfigException Refused() => Assert.Throws<ConfigException>(() => LlavaCheckpoint.Open(tmp.Path))!;

    [TestCase("text_config", "rope_parameters", """{"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}""")]
    [TestCase("text_config", "rope_parameters", """{"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0}""")]
    [TestCase("text_config", "rope_parameters", """{"rope_theta": 10000.0, "partial_rotary_factor": 0.5}""")]
    [TestCase("text_config", "rope_scaling", """{"type": "dynamic", "factor": 2.0}""")]
    [TestCase("text_config", "attention_bias", "true")]
    [TestCase("text_config", "mlp_bias", "true")]
    [TestCase("text_config", "head_dim", "16")]
    [TestCase("text_config", "model_type", "\"mistral\"")]
    [TestCase("vision_config", "model_type", "\"siglip_vision_model\"")]
    [TestCase("", "multimodal_projector_bias", "false")]
    public void FieldWhoseMathIsNotImplementedIsRefusedByName(string section, string field, string json)
    {
        MakeTransformers5("saved");
        EditConfig(root => (section.Length == 0 ? root : root[section]!.AsObject())[field] = JsonNode.Parse(json));
        var name = section.Length == 0 ? field : $"{section}.{field}";
        Assert.That(Refused().Message, Does.Contain(name).And.Contain(ConfigPath));
        Assert.Throws<ConfigException>(() => LlavaConfig.Load(ConfigPath), "LlavaConfig.Load refuses it too");
    }

    [Test]
    public void FieldWhoseMathIsNotImplementedIsRefusedInLlavasOwnLayout()
    {
        using var copy = new TempCopy(Root);
        var config = Path.Combine(copy.Path, "original", "llava-tiny", "config.json");
        var root = (JsonObject)JsonNode.Parse(File.ReadAllText(config))!;
        root["rope_scaling"] = JsonNode.Parse("""{"type": "linear", "factor": 2.0}""");
        File.WriteAllText(config, root.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => LlavaCheckpoint.Open(Path.GetDirectoryName(config)!))!;
        Assert.That(e.Message, Does.Contain("rope_scaling").And.Contain(config));
    }

    [TestCase("""{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32}""", "'llama'")]
    [TestCase("""{"model_type": "llava_next", "text_config": {}, "vision_config": {}}""", "'llava_next'")]
    [TestCase("""{"hidden_size": 32, "num_hidden_layers": 2}""", "no model_type")]
    [TestCase("""{"model_type": "llava", "vision_config": {}}""", "no text_config")]
    public void ConfigThatIsNotALlavaOneIsRefused(string json, string named)
    {
        File.WriteAllText(ConfigPath, json);
        foreach (var e in new[]
                 {
                     Assert.Throws<ConfigException>(() => LlavaConfig.Load(ConfigPath))!,
                     Assert.Throws<ConfigException>(() => LlavaCheckpoint.Open(tmp.Path))!,
                 })
            Assert.That(e.Message, Does.Contain(named).And.Contain("LLaVA").And.Contain(ConfigPath));
    }

    [Test]
    public void OwnSavedConfigStillLoads()
    {
        var config = new LlavaConfig();
        config.Save(ConfigPath);
        var loaded = LlavaConfig.Load(ConfigPath);
        Assert.That(loaded.TextConfig, Is.EqualTo(config.TextConfig));
        Assert.That(loaded.VisionConfig, Is.EqualTo(config.VisionConfig));
        Assert.That(loaded.ImageMean, Is.EqualTo(config.ImageMean));
    }
}
