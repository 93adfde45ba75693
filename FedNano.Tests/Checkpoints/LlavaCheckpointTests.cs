using FedNano.Checkpoints;
using FedNano.Models;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Checkpoints;

/// <summary>
/// Loads the tiny LLaVA checkpoints made by tools/make_llava_reference.py (both layouts, sharded with an index)
/// and compares the logits with the ones PyTorch computed for the same image and vicuna_v1 prompt.
/// </summary>
public class LlavaCheckpointTests
{
    internal static readonly string Root =
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "llava-reference");
    internal static readonly string Original = Path.Combine(Root, "original", "llava-tiny");
    internal static readonly string Tower = Path.Combine(Root, "original", "clip-vit-tiny");
    internal static readonly string Converted = Path.Combine(Root, "converted", "llava-tiny-hf");

    private static Dictionary<string, Tensor> Reference()
    {
        var f = SafetensorsFile.Open(Path.Combine(Root, "reference.safetensors"));
        return f.Entries.Keys.ToDictionary(k => k, f.Read);
    }

    /// <summary>Logits [positions, vocab] of the loaded model for the reference image and prompt.</summary>
    private static (Tensor logits, Tensor features) Run(LlavaModel model, Dictionary<string, Tensor> r)
    {
        using var _ = no_grad();
        var embed = model.LanguageModel.Model.EmbedTokens;
        var features = model.ImageTokens(r["pixel_values"]);
        var seq = cat([embed.forward(r["input_ids_before_image"]).unsqueeze(0), features,
            embed.forward(r["input_ids_after_image"]).unsqueeze(0)], 1);
        var logits = model.LanguageModel.forward(seq);
        return (logits[0].index_select(0, r["logit_positions"]), features);
    }

    private static double MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [TestCase(LlavaLayout.Converted)]
    [TestCase(LlavaLayout.Original)]
    public void LogitsMatchPyTorchReference(LlavaLayout layout)
    {
        var r = Reference();
        var checkpoint = LlavaCheckpoint.Open(layout == LlavaLayout.Converted ? Converted : Original);
        Assert.That(checkpoint.Layout, Is.EqualTo(layout));
        Assert.That(checkpoint.TokenizerPath, Is.Not.Null);
        using var model = checkpoint.CreateModel();
        var (logits, features) = Run(model, r);
        var expected = r["logits"][0];
        int vocab = (int)model.Config.TextConfig.VocabSize;
        // the original layout keeps the tokenizer's vocabulary; the converted one is padded as llava-hf pads it
        Assert.That(vocab, Is.EqualTo(layout == LlavaLayout.Converted ? expected.shape[1] : expected.shape[1] - 8));
        double featureDiff = MaxAbsDiff(features, r["image_features"]);
        double logitDiff = MaxAbsDiff(logits, expected[.., ..vocab]);
        TestContext.Out.WriteLine($"{layout}: max |features - torch| = {featureDiff:E2}, " +
            $"max |logits - torch| = {logitDiff:E2} over {logits.numel()} logits");
        Assert.That(featureDiff, Is.LessThan(1e-4));
        Assert.That(logitDiff, Is.LessThan(1e-4));
        Assert.That(expected.abs().max().item<float>(), Is.GreaterThan(1.0),
            "reference logits are not trivially small");
    }

    [Test]
    public void BothLayoutsReadTheSameConfigAndWeights()
    {
        var o = LlavaCheckpoint.Open(Original);
        var c = LlavaCheckpoint.Open(Converted);
        Assert.That(o.VisionTowerDir, Is.EqualTo(Path.GetFullPath(Tower)));
        Assert.That(o.Config.VisionConfig, Is.EqualTo(c.Config.VisionConfig));
        Assert.That(o.Config.TextConfig with { VocabSize = 0, PadTokenId = null },
            Is.EqualTo(c.Config.TextConfig with { VocabSize = 0, PadTokenId = null }));
        Assert.That(o.Config.VisionFeatureLayer, Is.EqualTo(-2));
        Assert.That(o.Config.VisionFeatureSelectStrategy, Is.EqualTo("default"));
        Assert.That(o.Config.ImageMean, Is.EqualTo(c.Config.ImageMean));
        Assert.That(o.TensorCount, Is.EqualTo(c.TensorCount));
    }

    [Test]
    public void ExplicitVisionTowerDirectoryIsUsed()
    {
        using var tmp = new TempCopy(Root);
        var moved = Path.Combine(tmp.Path, "elsewhere-clip");
        Directory.Move(Path.Combine(tmp.Path, "original", "clip-vit-tiny"), moved);
        var modelDir = Path.Combine(tmp.Path, "original", "llava-tiny");
        var e = Assert.Throws<ConfigException>(() => LlavaCheckpoint.Open(modelDir))!;
        Assert.That(e.Message, Does.Contain("mm_vision_tower").And.Contain("--vision-tower-dir"));
        Assert.That(LlavaCheckpoint.Open(modelDir, moved).VisionTowerDir, Is.EqualTo(moved));
    }

    [Test]
    public void LoadsIntoTheRequestedDtypeOnTheModelsDevice()
    {
        var checkpoint = LlavaCheckpoint.Open(Converted);
        using var model = checkpoint.CreateModel(CPU, ScalarType.BFloat16);
        Assert.That(model.parameters().Select(p => p.dtype).Distinct(), Is.EqualTo(new[] { ScalarType.BFloat16 }));
        Assert.That(get_default_dtype(), Is.EqualTo(ScalarType.Float32), "defaults restored after construction");
        // the fixture's values are exact in bfloat16, so nothing is lost
        var weights = SafetensorsCheckpoint.Open(Converted);
        var key = "language_model.model.layers.1.mlp.down_proj.weight";
        var file = weights.Owner[key];
        var param = model.named_parameters().Single(p => p.name == key).parameter;
        Assert.That(param.equal(file.Read(key)).all().item<bool>(), Is.True);
    }
}

/// <summary>A throw-away copy of a fixture folder.</summary>
internal sealed class TempCopy : IDisposable
{
    public TempCopy(string source)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fednano-ckpt-" + Guid.NewGuid().ToString("N"));
        foreach (var dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(source, Path));
        Directory.CreateDirectory(Path);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(source, Path));
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
