using FedNano.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Checkpoints;

/// <summary>Where the frozen backbone runs and in which precision (adapters always stay float32).</summary>
/// <param name="Device">The device every module is built on.</param>
/// <param name="FrozenDType">Element type of the frozen backbone's parameters.</param>
public sealed record DeviceChoice(Device Device, ScalarType FrozenDType)
{
    /// <summary>
    /// Resolves <c>--device auto|cpu|cuda|cuda:N</c> and <c>--precision auto|float32|bfloat16|float16</c>:
    /// <c>auto</c> is CUDA when <c>torch.cuda.is_available()</c>, else the CPU; precision <c>auto</c> is float32 on
    /// the CPU and bfloat16 on CUDA. Asking for CUDA where there is none is a <see cref="ConfigException"/>.
    /// </summary>
    public static DeviceChoice Resolve(string device = "auto", string precision = "auto")
    {
        var d = device.Trim().ToLowerInvariant() switch
        {
            "auto" => cuda.is_available() ? CUDA : CPU,
            "cpu" => CPU,
            var s when s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal) =>
                cuda.is_available() ? new Device(s) : throw new ConfigException($"--device {device}: CUDA is not available on this machine (use auto or cpu)"),
            _ => throw new ConfigException($"--device '{device}' must be auto, cpu, cuda or cuda:N"),
        };
        var t = precision.Trim().ToLowerInvariant() switch
        {
            "auto" => d.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32,
            "float32" or "fp32" => ScalarType.Float32,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            "float16" or "fp16" => d.type == DeviceType.CUDA ? ScalarType.Float16
                : throw new ConfigException("--precision float16 needs CUDA (on the CPU use float32 or bfloat16)"),
            _ => throw new ConfigException($"--precision '{precision}' must be auto, float32, bfloat16 or float16"),
        };
        return new DeviceChoice(d, t);
    }
}

/// <summary>
/// The backbones a simulation can run on: <c>tiny</c> (small, random, the default), <c>mid</c> (random, real
/// LLaVA-1.5 image geometry with a smaller LLM, for speed measurements) and <c>llava-1.5-7b</c> (a real checkpoint
/// from <c>--model-dir</c>, either layout).
/// </summary>
public static class Backbones
{
    /// <summary>Preset names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "mid", "llava-1.5-7b"];

    /// <summary>The shipped tiny backbone: a few blocks, 64-wide LLM, 32x32 images in 8x8 patches.</summary>
    public static LlavaConfig Tiny { get; } = new()
    {
        VisionConfig = new ClipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 4, ImageSize = 32, PatchSize = 8 },
        TextConfig = new LlamaConfig { HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, VocabSize = 512, MaxPositionEmbeddings = 512 },
    };

    /// <summary>
    /// A mid-size random backbone for speed measurements: LLaVA-1.5's image geometry (336 px, patch 14, 576 visual
    /// tokens) with a 12-block ViT-B-wide tower and an 8-block, 1024-wide LLM with LLaMA's vocabulary (about 0.25 B parameters).
    /// </summary>
    public static LlavaConfig Mid { get; } = new()
    {
        VisionConfig = new ClipVisionConfig { HiddenSize = 768, IntermediateSize = 3072, NumHiddenLayers = 12, NumAttentionHeads = 12 },
        TextConfig = new LlamaConfig { HiddenSize = 1024, IntermediateSize = 2816, NumHiddenLayers = 8, NumAttentionHeads = 16, NumKeyValueHeads = 8, VocabSize = 32000 },
    };

    /// <summary>
    /// The architecture of llava-hf/llava-1.5-7b-hf: CLIP ViT-L/14-336 (features of layer -2, class token dropped:
    /// 576 tokens of 1024), mlp2x_gelu, Vicuna-7B (32 blocks of 4096, vocabulary 32064 after the added image and pad tokens).
    /// </summary>
    public static LlavaConfig Llava15_7B { get; } = new()
    {
        VisionConfig = new ClipVisionConfig(),
        TextConfig = new LlamaConfig { VocabSize = 32064, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096 },
    };

    /// <summary>
    /// The backbone <paramref name="name"/> on <paramref name="where"/>: random for <c>tiny</c> and <c>mid</c>
    /// (seeded by the caller through <c>torch.manual_seed</c>), loaded from <paramref name="modelDir"/> for
    /// <c>llava-1.5-7b</c>. The frozen parameters get <see cref="DeviceChoice.FrozenDType"/>.
    /// </summary>
    public static LlavaModel Create(string name, DeviceChoice where, string? modelDir = null, string? visionTowerDir = null)
    {
        switch (name)
        {
            case "tiny" or "mid":
                if (modelDir is not null) throw new ConfigException($"--model-dir is only used with --backbone llava-1.5-7b, not '{name}'");
                return LlavaCheckpoint.Construct(name == "tiny" ? Tiny : Mid, where.Device, where.FrozenDType);
            case "llava-1.5-7b":
                if (modelDir is null) throw new ConfigException("--backbone llava-1.5-7b needs --model-dir DIR (a LLaVA-1.5 checkpoint in safetensors, either layout)");
                return LlavaCheckpoint.Open(modelDir, visionTowerDir).CreateModel(where.Device, where.FrozenDType);
            default:
                throw new ConfigException($"--backbone '{name}' is not one of {string.Join(", ", Names)}");
        }
    }
}
