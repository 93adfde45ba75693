using System.Text.Json.Nodes;
using FedNano.Checkpoints;
using FedNano.Models;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Checkpoints;

/// <summary>
/// Loads the tiny MiniGPT-4 made by tools/make_minigpt4_reference.py (a sharded BLIP-2 folder, a float16 Vicuna
/// folder, the converted projection) and compares every stage with what PyTorch computed in float64.
/// </summary>
public class MiniGpt4CheckpointTests
{
    internal static readonly string Root =
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "minigpt4-reference");
    internal static readonly string Folder = Path.Combine(Root, "minigpt4-tiny");

    private static Dictionary<string, Tensor> Reference()
    {
        var f = SafetensorsFile.Open(Path.Combine(Root, "reference.safetensors"));
        return f.Entries.Keys.ToDictionary(k => k, f.Read);
    }

    private static double MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Test]
    public void EveryStageMatchesPyTorchReference()
    {
        var r = Reference();
        using var model = MiniGpt4Checkpoint.Open(Folder).CreateModel();
        using var _ = no_grad();
        var pixels = r["pixel_values"];
        var imageEmbeds = model.VisionModel.forward(pixels);
        var queryOutput = model.QFormer.forward(model.QueryTokens.expand(pixels.shape[0], -1, -1), imageEmbeds);
        var tokens = model.ImageTokens(pixels);
        var embed = model.LanguageModel.Model.EmbedTokens;
        var seq = cat([embed.forward(r["input_ids_before_image"]).unsqueeze(0), tokens[..1],
                       embed.forward(r["input_ids_after_image"]).unsqueeze(0)], 1);
        var logits = model.LanguageModel.forward(seq);

        var diffs = new (string Name, double Diff)[]
        {
            ("image_embeds", MaxAbsDiff(imageEmbeds, r["image_embeds"])),
            ("query_output", MaxAbsDiff(queryOutput, r["query_output"])),
            ("image_tokens", MaxAbsDiff(tokens, r["image_tokens"])),
            ("logits", MaxAbsDiff(logits, r["logits"])),
        };
        foreach (var (name, diff) in diffs) TestContext.Out.WriteLine($"max |{name} - torch| = {diff:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(tokens.shape, Is.EqualTo(new long[] { 2, 4, 20 }));
            Assert.That(logits.shape, Is.EqualTo(r["logits"].shape));
            foreach (var (name, diff) in diffs) Assert.That(diff, Is.LessThan(1e-4), name);
            Assert.That(r["logits"].abs().max().item<float>(), Is.GreaterThan(1.0), "reference logits not tiny");
            // the two images give different tokens (the batch is not collapsed onto the query tokens)
            Assert.That(MaxAbsDiff(tokens[0], tokens[1]), Is.GreaterThan(1e-2));
        });
    }

    [Test]
    public void AsVisualEncoderItGivesTheQueryTokensWithoutGradient()
    {
        var r = Reference();
        using var model = MiniGpt4Checkpoint.Open(Folder).CreateModel();
        IVisualEncoder encoder = model;
        var tokens = encoder.Encode(r["pixel_values"]);
        Assert.Multiple(() =>
        {
            Assert.That(encoder.TokensPerImage, Is.EqualTo(4));
            Assert.That(tokens.shape, Is.EqualTo(new long[] { 2, 4, model.Config.TextConfig.HiddenSize }));
            Assert.That(tokens.requires_grad, Is.False);
            Assert.That(MaxAbsDiff(tokens, r["image_tokens"]), Is.LessThan(1e-4));
        });
    }

    [Test]
    public void ConfigIsAssembledFromTheBlip2AndVicunaFolders()
    {
        var c = MiniGpt4Checkpoint.Open(Folder);
        Assert.Multiple(() =>
        {
            Assert.That(c.Config.VisionConfig, Is.EqualTo(new Blip2VisionConfig
            {
                HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 2,
                ImageSize = 14, PatchSize = 7,
            }));
            Assert.That(c.Config.QFormerConfig, Is.EqualTo(new Blip2QFormerConfig
            {
                HiddenSize = 12, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 2,
                EncoderHiddenSize = 16,
            }));
            Assert.That(c.Config.NumQueryTokens, Is.EqualTo(4));
            Assert.That(c.Config.TextConfig.HiddenSize, Is.EqualTo(20));
            Assert.That(c.Config.TextConfig.VocabSize, Is.EqualTo(64));
            Assert.That(c.Config.ImageMean, Is.EqualTo(new[] { 0.48145466f, 0.4578275f, 0.40821073f }));
            // every parameter once; BLIP-2's own LLM and projection and the Q-Former's text FFN are skipped
            Assert.That(c.TensorCount, Is.EqualTo(MiniGpt4Checkpoint.ExpectedParameters(c.Config).Count));
            Assert.That(c.TokenizerPath, Is.Null);
        });
    }

    [Test]
    public void ExpectedParametersAreTheModulesParameters()
    {
        var config = MiniGpt4Checkpoint.Open(Folder).Config;
        using var model = MiniGpt4Checkpoint.Construct(config, CPU);
        var actual = model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var expected = MiniGpt4Checkpoint.ExpectedParameters(config);
        Assert.That(actual.Select(p => p.name), Is.EquivalentTo(expected.Select(p => p.Name)));
        var shapes = expected.ToDictionary(p => p.Name, p => p.Shape);
        foreach (var (name, shape) in actual) Assert.That(shape, Is.EqualTo(shapes[name]), name);
        // cross-attention every second layer: layer 0 has it, layer 1 not
        Assert.That(actual.Any(p => p.name.StartsWith("qformer.encoder.layer.0.crossattention.")), Is.True);
        Assert.That(actual.Any(p => p.name.StartsWith("qformer.encoder.layer.1.crossattention.")), Is.False);
    }

    private static string Error(Action act) => Assert.Throws<ConfigException>(() => act())!.Message;

    [Test]
    public void MissingPiecesAreNamed()
    {
        using var tmp = new TempCopy(Folder);
        File.Delete(Path.Combine(tmp.Path, MiniGpt4Checkpoint.ProjectionFile));
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.Contain(MiniGpt4Checkpoint.ProjectionFile).And.Contain("not found"));
        Directory.Delete(Path.Combine(tmp.Path, "vicuna"), true);
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.Contain(Path.Combine(tmp.Path, "vicuna", "config.json")));
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(Path.Combine(tmp.Path, "nowhere"))), Does.Contain("nowhere"));
    }

    [Test]
    public void ProjectionWithMiniGpt4sOwnNamesIsRefusedNamingFileAndKey()
    {
        using var tmp = new TempCopy(Folder);
        var path = Path.Combine(tmp.Path, MiniGpt4Checkpoint.ProjectionFile);
        SafetensorsFile.Save(path, [new("llama_proj.weight", zeros(20, 12)), new("llama_proj.bias", zeros(20))]);
        var message = Error(() => MiniGpt4Checkpoint.Open(tmp.Path));
        Assert.That(message,
            Does.StartWith(path).And.Contain("'llama_proj.weight'").And.Contain("convert_minigpt4_projection.py"));
    }

    [Test]
    public void MissingProjectionBiasIsReportedWithItsFile()
    {
        using var tmp = new TempCopy(Folder);
        var path = Path.Combine(tmp.Path, MiniGpt4Checkpoint.ProjectionFile);
        SafetensorsFile.Save(path, [new("language_projection.weight", zeros(20, 12))]);
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.StartWith(path).And.Contain("1 parameter(s) missing, first 'language_projection.bias'"));
    }

    [Test]
    public void ConfigThatDisagreesWithTheWeightsNamesFileAndKey()
    {
        using var tmp = new TempCopy(Folder);
        var blip2Config = Path.Combine(tmp.Path, "blip2", "config.json");
        var root = JsonNode.Parse(File.ReadAllText(blip2Config))!;
        root["num_query_tokens"] = 5;
        File.WriteAllText(blip2Config, root.ToJsonString());
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.Contain(Path.Combine(tmp.Path, "blip2", "model-0000"))
                .And.Contain("'query_tokens' has shape [1, 4, 12]").And.Contain("[1, 5, 12]"));

        File.Copy(Path.Combine(Folder, "blip2", "config.json"), blip2Config, true);
        var vicunaConfig = Path.Combine(tmp.Path, "vicuna", "config.json");
        root = JsonNode.Parse(File.ReadAllText(vicunaConfig))!;
        root["vocab_size"] = 65;
        File.WriteAllText(vicunaConfig, root.ToJsonString());
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.StartWith(Path.Combine(tmp.Path, "vicuna", "model.safetensors"))
                .And.Contain("'model.embed_tokens.weight' has shape [64, 20]"));
    }

    [Test]
    public void NonBlip2ConfigIsRefused()
    {
        using var tmp = new TempCopy(Folder);
        var blip2Config = Path.Combine(tmp.Path, "blip2", "config.json");
        File.WriteAllText(blip2Config, """{"model_type": "llava"}""");
        Assert.That(Error(() => MiniGpt4Checkpoint.Open(tmp.Path)),
            Does.StartWith(blip2Config).And.Contain("not a BLIP-2 config"));
    }
}

public class MiniGpt4SaveTests
{
    [Test]
    public void SavedRandomModelOpensWithTheSameConfigAndOutputs()
    {
        var config = MiniGpt4Checkpoint.Open(MiniGpt4CheckpointTests.Folder).Config with
        {
            TextConfig = new LlamaConfig
            {
                HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 1, NumAttentionHeads = 2, VocabSize = 40,
            },
        };
        torch.manual_seed(5);
        using var model = MiniGpt4Checkpoint.Construct(config, CPU);
        var dir = Path.Combine(Path.GetTempPath(), "fednano-minigpt4-" + Guid.NewGuid().ToString("N"));
        try
        {
            MiniGpt4Checkpoint.Save(model, dir);
            var checkpoint = MiniGpt4Checkpoint.Open(dir);
            // (records compare arrays by reference: the normalisation is compared apart)
            Assert.That(checkpoint.Config with { ImageMean = [], ImageStd = [] },
                Is.EqualTo(config with { ImageMean = [], ImageStd = [] }));
            Assert.That(checkpoint.Config.ImageStd, Is.EqualTo(config.ImageStd));
            using var loaded = checkpoint.CreateModel();
            using var _ = no_grad();
            var pixels = randn(2, 3, 14, 14);
            Assert.That(loaded.Encode(pixels).equal(model.Encode(pixels)).all().item<bool>(), Is.True);
            var embeds = randn(1, 5, 16);
            var logits = loaded.LanguageModel.forward(embeds);
            Assert.That(logits.equal(model.LanguageModel.forward(embeds)).all().item<bool>(), Is.True);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
