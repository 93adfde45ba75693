using FedNano.Data;
using FedNano.Data.Images;
using FedNano.Data.Prompts;
using FedNano.Data.Synthetic;
using FedNano.Models;
using FedNano.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Checkpoints;

/// <summary>Where the frozen backbone runs and in which precision (adapters always stay float32).</summary>
/// <param name="Device">The device every module is built on.</param>
/// <param name="FrozenDType">Element type of the frozen backbone's parameters.</param>
public sealed record DeviceChoice(Device Device, ScalarType FrozenDType)
{
    /// <summary>
    /// Resolves <c>--device auto|cpu|cuda|cuda:N</c> and <c>--precision auto|float32|bfloat16|float16</c> on
    /// this machine: <c>auto</c> is CUDA when <c>torch.cuda.is_available()</c>, else the CPU; precision <c>auto</c>
    /// is float32 on the CPU and bfloat16 on CUDA. Asking for CUDA where there is none is a
    /// <see cref="ConfigException"/>. Called once, where the backbone is loaded
    /// (<see cref="Simulation.Experiment.LoadBackbone"/>).
    /// </summary>
    public static DeviceChoice Resolve(string device = "auto", string precision = "auto")
    {
        var (name, type) = Parse(device, precision);
        var d = name switch
        {
            "auto" => cuda.is_available() ? CUDA : CPU,
            "cpu" => CPU,
            _ => cuda.is_available() ? new Device(name) : throw new ConfigException(
                $"device {device} (--device): CUDA is not available on this machine (use auto or cpu)"),
        };
        if (type == ScalarType.Float16 && d.type != DeviceType.CUDA) throw Float16OnCpu();
        return new DeviceChoice(d, type ?? (d.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32));
    }

    /// <summary>
    /// Checks how <paramref name="device"/> and <paramref name="precision"/> are spelled (as
    /// <see cref="Resolve"/> takes them) without asking the machine, so a config made for CUDA validates, reports
    /// and is inspected anywhere.
    /// </summary>
    public static void Check(string device, string precision) => Parse(device, precision);

    /// <summary>The device in lower case and the precision (null: auto), or a <see cref="ConfigException"/>.</summary>
    private static (string Device, ScalarType? Precision) Parse(string device, string precision)
    {
        var d = device.Trim().ToLowerInvariant();
        bool known = d is "auto" or "cpu" or "cuda"
            || (d.StartsWith("cuda:", StringComparison.Ordinal) && d.Length > 5 && d[5..].All(char.IsAsciiDigit));
        if (!known) throw new ConfigException($"device '{device}' (--device) must be auto, cpu, cuda or cuda:N");
        ScalarType? t = precision.Trim().ToLowerInvariant() switch
        {
            "auto" => null,
            "float32" or "fp32" => ScalarType.Float32,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            "float16" or "fp16" => ScalarType.Float16,
            _ => throw new ConfigException(
                $"precision '{precision}' (--precision) must be auto, float32, bfloat16 or float16"),
        };
        if (d == "cpu" && t == ScalarType.Float16) throw Float16OnCpu();
        return (d, t);
    }

    private static ConfigException Float16OnCpu() =>
        new("precision float16 (--precision) needs CUDA (on the CPU use float32 or bfloat16)");
}

/// <summary>
/// The backbones a simulation can run on: <c>tiny</c> (the shipped, pretrained <see cref="TinyBackbone"/>, the
/// default), <c>mid</c> (random, real LLaVA-1.5 image geometry with a smaller LLM, for speed measurements) and
/// <c>llava-1.5-7b</c> (a real LLaVA-1.5 checkpoint from a folder, either layout, with LLaMA's SentencePiece
/// tokenizer and the <c>vicuna_v1</c> conversation).
/// </summary>
public static class Backbones
{
    /// <summary>Preset names.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["tiny", "mid", "llava-1.5-7b", "minigpt4-7b", "minigpt4-tiny"];

    /// <summary>
    /// A MiniGPT-4-shaped random backbone small enough for a 2-core CPU, on the synthetic benchmark's 32 px images:
    /// an EVA-style ViT (64 wide, 2 blocks, 8 px patches), a Q-Former (64 wide, 2 layers, cross-attention every
    /// second, 8 queries), the projection and a LLaMA 96 wide with 3 blocks (the tiny backbone's), with the synthetic
    /// benchmark's tokenizer: the CPU twin of <c>minigpt4-7b</c> for configs and tests.
    /// </summary>
    public static MiniGpt4Config MiniGpt4Tiny(int vocabSize) => new()
    {
        VisionConfig = new Blip2VisionConfig
        {
            HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4,
            ImageSize = 32, PatchSize = 8,
        },
        QFormerConfig = new Blip2QFormerConfig
        {
            HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, EncoderHiddenSize = 64,
        },
        TextConfig = TinyBackbone.Config(vocabSize).TextConfig,
        NumQueryTokens = 8,
    };

    /// <summary>
    /// A mid-size random backbone for speed measurements: LLaVA-1.5's image geometry (336 px, patch 14, 576 visual
    /// tokens) with a 12-block ViT-B-wide tower and an 8-block, 1024-wide LLM with LLaMA's vocabulary (about 0.25 B
    /// parameters).
    /// </summary>
    public static LlavaConfig Mid { get; } = new()
    {
        VisionConfig = new ClipVisionConfig
        {
            HiddenSize = 768, IntermediateSize = 3072, NumHiddenLayers = 12, NumAttentionHeads = 12
        },
        TextConfig = new LlamaConfig
        {
            HiddenSize = 1024, IntermediateSize = 2816, NumHiddenLayers = 8, NumAttentionHeads = 16,
            NumKeyValueHeads = 8, VocabSize = 32000
        },
    };

    /// <summary>
    /// The architecture of llava-hf/llava-1.5-7b-hf: CLIP ViT-L/14-336 (features of layer -2, class token dropped:
    /// 576 tokens of 1024), mlp2x_gelu, Vicuna-7B (32 blocks of 4096, vocabulary 32064 after the added image and pad
    /// tokens).
    /// </summary>
    public static LlavaConfig Llava15_7B { get; } = new()
    {
        VisionConfig = new ClipVisionConfig(),
        TextConfig = new LlamaConfig { VocabSize = 32064, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096 },
    };

    /// <summary>
    /// The backbone <paramref name="name"/> with its frozen parameters on <see cref="DeviceChoice.Device"/> in
    /// <see cref="DeviceChoice.FrozenDType"/>: <c>tiny</c> loads the tiny backbone folder <paramref name="modelDir"/>;
    /// <c>mid</c> is random (seed it with <c>torch.manual_seed</c> first) with the synthetic benchmark's tokenizer;
    /// <c>llava-1.5-7b</c> loads the checkpoint in <paramref name="modelDir"/> (and, for LLaVA's own layout, the CLIP
    /// tower in <paramref name="visionTowerDir"/>) with the <c>tokenizer.model</c> beside it.
    /// </summary>
    public static Backbone Load(string name, DeviceChoice where, string? modelDir = null, string? visionTowerDir = null)
    {
        if (visionTowerDir is not null && name != "llava-1.5-7b")
            throw new ConfigException(
                $"vision_tower_dir (--vision-tower-dir) is only used with backbone llava-1.5-7b, not '{name}'");
        switch (name)
        {
            case "tiny":
                return TinyBackbone.Load(
                    modelDir ?? throw new ConfigException(
                        "backbone tiny needs the tiny backbone's folder (model_dir, --model-dir)"),
                    where.Device, where.FrozenDType);
            case "mid":
                if (modelDir is not null)
                    throw new ConfigException("model_dir (--model-dir) is not used with backbone mid " +
                                              "(random weights); use llava-1.5-7b for a checkpoint");
                return Random("mid", Mid, TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400), where);
            case "llava-1.5-7b":
                if (modelDir is null)
                    throw new ConfigException("backbone llava-1.5-7b needs model_dir (--model-dir DIR): " +
                                              "a LLaVA-1.5 checkpoint in safetensors, either layout");
                var checkpoint = LlavaCheckpoint.Open(modelDir, visionTowerDir);
                var tokenizerPath = checkpoint.TokenizerPath ?? throw new ConfigException(
                    $"{checkpoint.ModelDir}: no tokenizer.model (LLaMA's SentencePiece model) beside the weights: " +
                    "copy it from the model's repository");
                var tokenizer = LlamaSentencePieceTokenizer.Load(tokenizerPath);
                if (tokenizer.VocabSize > checkpoint.Config.TextConfig.VocabSize)
                    throw new ConfigException($"{tokenizerPath}: {tokenizer.VocabSize} tokens but the model's " +
                                              $"vocab_size is {checkpoint.Config.TextConfig.VocabSize}: " +
                                              "tokenizer and checkpoint do not belong together");
                var model = checkpoint.CreateModel(where.Device, where.FrozenDType);
                model.eval();
                return new Backbone(name, model, tokenizer, Pixels(checkpoint.Config)) { Template = VicunaV1.Wrap };
            case "minigpt4-7b":
            {
                if (modelDir is null)
                    throw new ConfigException("backbone minigpt4-7b needs model_dir (--model-dir DIR): " +
                                              "a MiniGPT-4 folder with blip2/, vicuna/ and projection.safetensors " +
                                              "(see the README)");
                var mg = MiniGpt4Checkpoint.Open(modelDir);
                var spm = mg.TokenizerPath ?? throw new ConfigException(
                    $"{mg.VicunaDir}: no tokenizer.model (Vicuna's SentencePiece model) beside the weights: " +
                    "copy it from the Vicuna release");
                var llama = LlamaSentencePieceTokenizer.Load(spm);
                if (llama.VocabSize > mg.Config.TextConfig.VocabSize)
                    throw new ConfigException($"{spm}: {llama.VocabSize} tokens but the model's vocab_size " +
                                              $"is {mg.Config.TextConfig.VocabSize}: " +
                                              "tokenizer and checkpoint do not belong together");
                var m = mg.CreateModel(where.Device, where.FrozenDType);
                m.eval();
                return new Backbone(name, m, llama, Blip2Pixels(mg.Config)) { Template = MiniGpt4Prompt.Wrap };
            }
            case "minigpt4-tiny":
            {
                if (modelDir is not null)
                    throw new ConfigException("model_dir (--model-dir) is not used with backbone minigpt4-tiny " +
                                              "(random weights); use minigpt4-7b for a checkpoint folder");
                var words = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400);
                var config = MiniGpt4Tiny(words.VocabSize);
                var m = MiniGpt4Checkpoint.Construct(config, where.Device, where.FrozenDType);
                m.eval();
                return new Backbone(name, m, words, Blip2Pixels(config)) { Template = MiniGpt4Prompt.Wrap };
            }
            default:
                throw new ConfigException($"backbone '{name}' is not one of {string.Join(", ", Names)}");
        }
    }

    /// <summary>
    /// A randomly initialised backbone of <paramref name="config"/> (no conversation template), e.g. for tests and
    /// speed measurements.
    /// </summary>
    public static Backbone Random(string name, LlavaConfig config, ITextTokenizer tokenizer, DeviceChoice where)
    {
        if (tokenizer.VocabSize > config.TextConfig.VocabSize)
            throw new ConfigException($"backbone {name}: the tokenizer has {tokenizer.VocabSize} tokens, " +
                                      $"more than vocab_size {config.TextConfig.VocabSize}");
        var model = LlavaCheckpoint.Construct(config, where.Device, where.FrozenDType);
        model.eval();
        return new Backbone(name, model, tokenizer, Pixels(config));
    }

    private static Func<SampleImage, Tensor> Blip2Pixels(MiniGpt4Config config)
    {
        var processor = Blip2ImageProcessor.For(config);
        return image => processor.Process(image);
    }

    /// <summary>LLaVA-1.5's image preprocessing with the checkpoint's size, mean and std.</summary>
    private static Func<SampleImage, Tensor> Pixels(LlavaConfig config)
    {
        var processor = ImageProcessor.For(config);
        return image => processor.Process(image);
    }
}
