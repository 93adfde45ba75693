using FedNano.Data;
using FedNano.Data.Prompts;
using FedNano.Tokenizers;
using FedNano.Checkpoints;
using FedNano.Models;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Checkpoints;

public class BackboneTests
{
    [Test]
    public void FullLlava15_7BArchitectureOnTheMetaDeviceMatchesTheLoadersList()
    {
        var config = Backbones.Llava15_7B;
        Assert.That(config.ImageTokens, Is.EqualTo(576));
        using var model = LlavaCheckpoint.Construct(config, META, ScalarType.Float16); // no storage is allocated
        var actual = model.named_parameters()
            .Select(p => (p.name, p.parameter.shape, p.parameter.device_type)).ToList();
        var expected = LlavaCheckpoint.ExpectedParameters(config);
        Assert.That(actual.All(p => p.device_type == TorchSharp.DeviceType.META), Is.True);
        Assert.That(actual.Select(p => p.name), Is.EquivalentTo(expected.Select(p => p.Name)));
        var shapes = actual.ToDictionary(p => p.name, p => p.shape);
        foreach (var (name, shape) in expected) Assert.That(shapes[name], Is.EqualTo(shape), name);
        long total = expected.Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));
        // closed form: CLIP ViT-L/14-336 (303.5 M) + projector (21.0 M) + Vicuna-7B with 32064 tokens (6738.9 M)
        long clip = 1024 + 1024 * 3 * 14 * 14 + 577 * 1024 + 2 * 1024
            + 24 * (4 * (1024 * 1024 + 1024) + 4 * 1024 + 2 * 4096 * 1024 + 4096 + 1024) + 2 * 1024;
        long projector = 1024 * 4096 + 4096 + 4096 * 4096 + 4096;
        long llm = 2L * 32064 * 4096 + 32 * (4L * 4096 * 4096 + 3L * 4096 * 11008 + 2 * 4096) + 4096;
        Assert.That(total, Is.EqualTo(clip + projector + llm));
        Assert.That(total, Is.EqualTo(7_063_427_072));
    }

    [Test]
    public void RandomPresetsAreBuiltOnTheChosenDeviceAndPrecision()
    {
        var cpu = DeviceChoice.Resolve("cpu");
        Assert.That(cpu.FrozenDType, Is.EqualTo(ScalarType.Float32));
        var tokenizer = TinyTokenizer.Build(FedNano.Data.Synthetic.SyntheticBenchmark.Vocabulary(), 400);
        var config = TinyBackbone.Config(tokenizer.VocabSize);
        Assert.That(config.TextConfig.VocabSize, Is.EqualTo(tokenizer.VocabSize));
        using var tiny = Backbones.Random("tiny", config, tokenizer, cpu).Model;
        Assert.That(tiny.parameters().All(p => p.device_type == TorchSharp.DeviceType.CPU
            && p.dtype == ScalarType.Float32));
        using var bf16 = Backbones.Random("tiny", config, tokenizer,
            cpu with { FrozenDType = ScalarType.BFloat16 }).Model;
        Assert.That(bf16.parameters().All(p => p.dtype == ScalarType.BFloat16));
        Assert.That(LlavaCheckpoint.ExpectedParameters(Backbones.Mid).Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b)),
            Is.InRange(200_000_000L, 300_000_000L));
        Assert.That(Backbones.Mid.ImageTokens, Is.EqualTo(576));
    }

    [Test]
    public void DeviceAutoNeverAssumesAGpu()
    {
        var auto = DeviceChoice.Resolve("auto");
        Assert.That(auto.Device.type,
            Is.EqualTo(cuda.is_available() ? TorchSharp.DeviceType.CUDA : TorchSharp.DeviceType.CPU));
        Assert.That(auto.FrozenDType, Is.EqualTo(cuda.is_available() ? ScalarType.BFloat16 : ScalarType.Float32));
        if (!cuda.is_available())
            Assert.That(() => DeviceChoice.Resolve("cuda"),
                Throws.TypeOf<ConfigException>().With.Message.Contains("not available"));
        Assert.That(() => DeviceChoice.Resolve("tpu"), Throws.TypeOf<ConfigException>());
    }

    [Test]
    public void PresetsCheckTheirFolders()
    {
        var cpu = DeviceChoice.Resolve("cpu");
        Assert.That(() => Backbones.Load("llava-1.5-7b", cpu),
            Throws.TypeOf<ConfigException>().With.Message.Contains("--model-dir"));
        Assert.That(() => Backbones.Load("tiny", cpu),
            Throws.TypeOf<ConfigException>().With.Message.Contains("model_dir"));
        Assert.That(() => Backbones.Load("mid", cpu, LlavaCheckpointTests.Converted),
            Throws.TypeOf<ConfigException>().With.Message.Contains("not used with backbone mid"));
        Assert.That(() => Backbones.Load("tiny", cpu, "x", LlavaCheckpointTests.Tower),
            Throws.TypeOf<ConfigException>().With.Message.Contains("--vision-tower-dir"));
        Assert.That(() => Backbones.Load("huge", cpu),
            Throws.TypeOf<ConfigException>().With.Message.Contains("tiny, mid, llava-1.5-7b"));
    }

    [Test]
    public void ACheckpointLoadsWithItsTokenizerTemplateAndImageStatistics()
    {
        var where = DeviceChoice.Resolve("cpu", "bfloat16");
        var backbone = Backbones.Load("llava-1.5-7b", where, LlavaCheckpointTests.Converted);
        using var model = backbone.Llava();
        Assert.That(model.Config.TextConfig.HiddenSize, Is.EqualTo(32));
        Assert.That(model.parameters().All(p => p.dtype == ScalarType.BFloat16), Is.True);
        Assert.That(backbone.Tokenizer, Is.TypeOf<LlamaSentencePieceTokenizer>());
        Assert.That(backbone.Template(new Prompt([new PromptSegment.Text("q")], "A")).ToText(),
            Is.EqualTo(VicunaV1.Text("q", withImage: false)));
        // pixels: the checkpoint's CLIP mean/std, at its 28 px
        var pixels = Enumerable.Repeat(0.5f, 3 * 28 * 28).ToArray();
        using var t = backbone.Pixels(new SampleImage { Pixels = pixels, Height = 28, Width = 28 });
        var c = model.Config;
        Assert.That(t.shape, Is.EqualTo(new long[] { 3, 28, 28 }));
        for (int ch = 0; ch < 3; ch++)
            Assert.That(t[ch, 0, 0].item<float>(), Is.EqualTo((0.5f - c.ImageMean[ch]) / c.ImageStd[ch]).Within(1e-6));
        Assert.That(c.ImageMean[0], Is.EqualTo(0.48145466f).Within(1e-7)); // CLIP's, from preprocessor_config.json
    }
}
