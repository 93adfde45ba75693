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
        var actual = model.named_parameters().Select(p => (p.name, p.parameter.shape, p.parameter.device_type)).ToList();
        var expected = LlavaCheckpoint.ExpectedParameters(config);
        Assert.That(actual.All(p => p.device_type == TorchSharp.DeviceType.META), Is.True);
        Assert.That(actual.Select(p => p.name), Is.EquivalentTo(expected.Select(p => p.Name)));
        var shapes = actual.ToDictionary(p => p.name, p => p.shape);
        foreach (var (name, shape) in expected) Assert.That(shapes[name], Is.EqualTo(shape), name);
        long total = expected.Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));
        // closed form: CLIP ViT-L/14-336 (303.5 M) + projector (21.0 M) + Vicuna-7B with 32064 tokens (6738.9 M)
        long clip = 1024 + 1024 * 3 * 14 * 14 + 577 * 1024 + 2 * 1024 + 24 * (4 * (1024 * 1024 + 1024) + 4 * 1024 + 2 * 4096 * 1024 + 4096 + 1024) + 2 * 1024;
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
        using var tiny = Backbones.Create("tiny", cpu);
        Assert.That(tiny.parameters().All(p => p.device_type == TorchSharp.DeviceType.CPU && p.dtype == ScalarType.Float32));
        using var bf16 = Backbones.Create("tiny", cpu with { FrozenDType = ScalarType.BFloat16 });
        Assert.That(bf16.parameters().All(p => p.dtype == ScalarType.BFloat16));
        Assert.That(LlavaCheckpoint.ExpectedParameters(Backbones.Mid).Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b)), Is.InRange(200_000_000L, 300_000_000L));
        Assert.That(Backbones.Mid.ImageTokens, Is.EqualTo(576));
    }

    [Test]
    public void DeviceAutoNeverAssumesAGpu()
    {
        var auto = DeviceChoice.Resolve("auto");
        Assert.That(auto.Device.type, Is.EqualTo(cuda.is_available() ? TorchSharp.DeviceType.CUDA : TorchSharp.DeviceType.CPU));
        Assert.That(auto.FrozenDType, Is.EqualTo(cuda.is_available() ? ScalarType.BFloat16 : ScalarType.Float32));
        if (!cuda.is_available())
            Assert.That(() => DeviceChoice.Resolve("cuda"), Throws.TypeOf<ConfigException>().With.Message.Contains("not available"));
        Assert.That(() => DeviceChoice.Resolve("tpu"), Throws.TypeOf<ConfigException>());
    }

    [Test]
    public void Llava7BNeedsAModelDirectory()
    {
        Assert.That(() => Backbones.Create("llava-1.5-7b", DeviceChoice.Resolve("cpu")),
            Throws.TypeOf<ConfigException>().With.Message.Contains("--model-dir"));
        Assert.That(() => Backbones.Create("huge", DeviceChoice.Resolve("cpu")), Throws.TypeOf<ConfigException>());
        using var loaded = Backbones.Create("llava-1.5-7b", DeviceChoice.Resolve("cpu"), LlavaCheckpointTests.Converted);
        Assert.That(loaded.Config.TextConfig.HiddenSize, Is.EqualTo(32));
    }
}
