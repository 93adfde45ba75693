using FedNano.Models;

namespace FedNano.Ledgers;

/// <summary>The part of an MLLM a group of parameters belongs to; decides who holds it under the NanoEdge
/// split.</summary>
public enum ModelPart
{
    /// <summary>The vision encoder (CLIP ViT, EVA ViT-g); frozen, client-side in FedNano.</summary>
    VisionEncoder,
    /// <summary>Everything between the vision encoder and the LLM (LLaVA projector; MiniGPT-4 ln_vision, Q-Former,
    /// llama_proj); frozen, client-side.</summary>
    Connector,
    /// <summary>The LLM's input token embedding; a frozen copy lives on every client.</summary>
    TokenEmbedding,
    /// <summary>The LLM's decoder blocks and final norm; server-side.</summary>
    Decoder,
    /// <summary>The LLM's output head; server-side.</summary>
    LmHead,
}

/// <summary>A named group of parameters of an MLLM and how many scalars it holds.</summary>
/// <param name="Name">What the group is, e.g. <c>CLIP ViT-L/14-336</c>.</param>
/// <param name="Part">Which part of the MLLM it belongs to.</param>
/// <param name="Count">Number of scalar parameters.</param>
public sealed record ParameterGroup(string Name, ModelPart Part, long Count);

/// <summary>
/// Parameter counts of a multimodal LLM, computed from its configuration by plain arithmetic (no weights are
/// allocated), in the granularity the federated methods need: vision encoder, connector, token embedding, decoder,
/// LM head, plus the shapes that adapters and LoRA attach to. Presets: <see cref="Llava15_7B"/>,
/// <see cref="MiniGpt4_7B"/>; any LLaVA-layout config (e.g. the tiny backbone) through <see cref="Llava"/>.
/// </summary>
public sealed record ArchitectureParameters
{
    /// <summary>Display name of the architecture.</summary>
    public required string Name { get; init; }
    /// <summary>The parameter groups; their counts add up to <see cref="Total"/>.</summary>
    public required IReadOnlyList<ParameterGroup> Groups { get; init; }
    /// <summary>
    /// Parameters of the connector that full-tuning baselines train and share (FedDPA-F): LLaVA's whole
    /// <c>mlp2x_gelu</c> projector, MiniGPT-4's <c>llama_proj</c> (its Q-Former stays frozen).
    /// </summary>
    public required long TunableConnector { get; init; }
    /// <summary>Width of the LLM's residual stream, which both NanoAdapters act on.</summary>
    public required int LlmHidden { get; init; }
    /// <summary>Number of LLM decoder blocks.</summary>
    public required int LlmLayers { get; init; }
    /// <summary>The linears of one decoder block that LoRA attaches to (q, k, v, o, gate, up, down),
    /// as (in, out).</summary>
    public required IReadOnlyList<(string Name, int In, int Out)> LoraTargets { get; init; }

    /// <summary>All parameters of the MLLM.</summary>
    public long Total => Groups.Sum(g => g.Count);
    /// <summary>Parameters of the vision encoder.</summary>
    public long VisionEncoder => Sum(ModelPart.VisionEncoder);
    /// <summary>Parameters of the connector.</summary>
    public long Connector => Sum(ModelPart.Connector);
    /// <summary>Parameters of the token embedding.</summary>
    public long TokenEmbedding => Sum(ModelPart.TokenEmbedding);
    /// <summary>Parameters of the decoder blocks and final norm.</summary>
    public long Decoder => Sum(ModelPart.Decoder);
    /// <summary>Parameters of the LM head (0 when tied to the token embedding).</summary>
    public long LmHead => Sum(ModelPart.LmHead);
    /// <summary>Parameters of the whole LLM (token embedding, decoder, LM head).</summary>
    public long LanguageModel => TokenEmbedding + Decoder + LmHead;
    /// <summary>Frozen parameters of a NanoEdge: vision encoder, connector and token embedding.</summary>
    public long NanoEdgeFrozen => VisionEncoder + Connector + TokenEmbedding;

    /// <summary>Parameters of one part.</summary>
    public long Sum(ModelPart part) => Groups.Where(g => g.Part == part).Sum(g => g.Count);

    /// <summary>NanoAdapter-I plus NanoAdapter-T: each a d→r down and r→d up projection without bias.</summary>
    public long NanoAdapters(int rank)
    {
        ConfigException.Positive(rank, "rank");
        return 2L * (2L * LlmHidden * rank);
    }

    /// <summary>One set of LoRA factors of rank <paramref name="rank"/> on every <see cref="LoraTargets"/> linear of
    /// every decoder block: (in + out)·r each.</summary>
    public long Lora(int rank)
    {
        ConfigException.Positive(rank, "rank");
        return LlmLayers * LoraTargets.Sum(t => (long)(t.In + t.Out) * rank);
    }

    /// <summary>LLaVA-1.5-7B: CLIP ViT-L/14-336, <c>mlp2x_gelu</c> projector, Vicuna-7B (vocabulary 32,000).</summary>
    public static ArchitectureParameters Llava15_7B { get; } = Llava(new LlavaConfig(), "llava-1.5-7b");

    /// <summary>
    /// MiniGPT-4 (7B): EVA ViT-g/14 at 224 px as in LAVIS' <c>create_eva_vit_g</c> (39 blocks, no final norm),
    /// <c>ln_vision</c>, the BLIP-2 Q-Former as MiniGPT-4 prunes it (no word/position embeddings, no text FFNs,
    /// no LM head), 32 query tokens, <c>llama_proj</c> 768→4096 and Vicuna-7B (vocabulary 32,000), counted from
    /// <see cref="MiniGpt4Model"/> (built on the meta device on first use).
    /// </summary>
    public static ArchitectureParameters MiniGpt4_7B => MiniGpt4Default.Value;

    private static readonly Lazy<ArchitectureParameters> MiniGpt4Default =
        new(() => MiniGpt4(new MiniGpt4Config(), "minigpt4-7b"));

    /// <summary>The names <see cref="Preset"/> knows without a config file.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["llava-1.5-7b", "minigpt4-7b"];

    /// <summary>A preset by name (<c>llava-1.5-7b</c>, <c>minigpt4-7b</c>); throws <see cref="ConfigException"/> for
    /// others.</summary>
    public static ArchitectureParameters Preset(string name) => name switch
    {
        "llava-1.5-7b" => Llava15_7B,
        "minigpt4-7b" => MiniGpt4_7B,
        _ => throw new ConfigException($"unknown model '{name}' (known: {string.Join(", ", PresetNames)})"),
    };

    /// <summary>A LLaVA-layout MLLM (HF <c>LlavaForConditionalGeneration</c>) from its config.</summary>
    public static ArchitectureParameters Llava(LlavaConfig config, string name)
    {
        config.Validate();
        var v = config.VisionConfig;
        int d = config.TextConfig.HiddenSize;
        long projector = Linear(v.HiddenSize, d) + Linear(d, d);
        return WithLlm(name, config.TextConfig, projector,
            new ParameterGroup(
                $"CLIP ViT ({v.NumHiddenLayers} x {v.HiddenSize}, patch {v.PatchSize}, {v.ImageSize} px)",
                ModelPart.VisionEncoder, ClipVision(v)),
            new ParameterGroup($"mlp2x_gelu projector {v.HiddenSize}->{d}->{d}", ModelPart.Connector, projector));
    }

    /// <summary>MiniGPT-4 with the given Vicuna/LLaMA language model (see <see cref="MiniGpt4_7B"/>).</summary>
    public static ArchitectureParameters MiniGpt4(LlamaConfig llm) =>
        MiniGpt4(new MiniGpt4Config { TextConfig = llm }, "minigpt4-7b");

    /// <summary>
    /// A MiniGPT-4 of <paramref name="config"/>, counted parameter by parameter from a <see cref="MiniGpt4Model"/>
    /// built on the meta device (shapes only, no memory). Hugging Face's <c>vision_model.post_layernorm</c> is LAVIS'
    /// <c>ln_vision</c> and counts with the connector.
    /// </summary>
    public static ArchitectureParameters MiniGpt4(MiniGpt4Config config, string name)
    {
        config.Validate();
        Dictionary<string, long> counts;
        var meta = new TorchSharp.torch.Device(TorchSharp.DeviceType.META);
        using (var model = Checkpoints.MiniGpt4Checkpoint.Construct(config, meta))
            counts = model.named_parameters().GroupBy(p => MiniGpt4Group(p.name))
                .ToDictionary(g => g.Key, g => g.Sum(p => p.parameter.numel()));
        long Count(string group) => counts.GetValueOrDefault(group);
        var (v, q, t) = (config.VisionConfig, config.QFormerConfig, config.TextConfig);
        var arch = WithLlm(name, t, Count("projection"),
            new ParameterGroup($"EVA ViT ({v.NumHiddenLayers} x {v.HiddenSize}, patch {v.PatchSize}, {v.ImageSize} px)",
                ModelPart.VisionEncoder, Count("vision")),
            new ParameterGroup(
                $"ln_vision + Q-Former ({q.NumHiddenLayers} x {q.HiddenSize}) + {config.NumQueryTokens} query tokens",
                ModelPart.Connector, Count("qformer")),
            new ParameterGroup($"llama_proj {q.HiddenSize}->{t.HiddenSize}", ModelPart.Connector, Count("projection")));
        // the language model's groups as counted (a tied LM head holds nothing of its own)
        var llm = new Dictionary<ModelPart, long>
        {
            [ModelPart.TokenEmbedding] = Count("embedding"), [ModelPart.Decoder] = Count("decoder"),
            [ModelPart.LmHead] = t.TieWordEmbeddings ? 0 : Count("head"),
        };
        return arch with
        {
            Groups = [.. arch.Groups.Select(g => llm.TryGetValue(g.Part, out var n) ? g with { Count = n } : g)],
        };
    }

    private static string MiniGpt4Group(string name) => name switch
    {
        _ when name.StartsWith("vision_model.post_layernorm.", StringComparison.Ordinal) => "qformer", // ln_vision
        _ when name.StartsWith("vision_model.", StringComparison.Ordinal) => "vision",
        _ when name.StartsWith("qformer.", StringComparison.Ordinal) || name == "query_tokens" => "qformer",
        _ when name.StartsWith("language_projection.", StringComparison.Ordinal) => "projection",
        _ when name.StartsWith("language_model.model.embed_tokens.", StringComparison.Ordinal) => "embedding",
        _ when name.StartsWith("language_model.model.", StringComparison.Ordinal) => "decoder",
        _ when name.StartsWith("language_model.lm_head.", StringComparison.Ordinal) => "head",
        _ => throw new InvalidOperationException($"MiniGPT-4 parameter '{name}' belongs to no part"),
    };

    private static ArchitectureParameters WithLlm(string name, LlamaConfig t, long tunableConnector,
        params ParameterGroup[] visual)
    {
        int d = t.HiddenSize, kv = t.KeyValueHeads * t.HeadDim, ff = t.IntermediateSize;
        (string, int, int)[] targets =
            [("q_proj", d, d), ("k_proj", d, kv), ("v_proj", d, kv), ("o_proj", d, d), ("gate_proj", d, ff),
                ("up_proj", d, ff), ("down_proj", ff, d)];
        long block = targets.Sum(x => (long)x.Item2 * x.Item3) + 2L * d; // linears without bias + two RMSNorm weights
        long embed = (long)t.VocabSize * d;
        return new ArchitectureParameters
        {
            Name = name,
            Groups =
            [
                .. visual,
                new ParameterGroup($"token embedding {t.VocabSize} x {d}", ModelPart.TokenEmbedding, embed),
                new ParameterGroup($"LLaMA decoder ({t.NumHiddenLayers} x {d}, MLP {ff}) + norm", ModelPart.Decoder,
                    t.NumHiddenLayers * block + d),
                new ParameterGroup(
                    t.TieWordEmbeddings ? "LM head (tied to the embedding)" : $"LM head {d} x {t.VocabSize}",
                    ModelPart.LmHead, t.TieWordEmbeddings ? 0 : embed),
            ],
            TunableConnector = tunableConnector,
            LlmHidden = d,
            LlmLayers = t.NumHiddenLayers,
            LoraTargets = targets,
        };
    }

    internal static long Linear(long inFeatures, long outFeatures, bool bias = true) =>
        inFeatures * outFeatures + (bias ? outFeatures : 0);

    internal static long LayerNorm(long width) => 2 * width;

    /// <summary>HF <c>CLIPVisionModel</c>: class embedding, bias-free patch conv, position embedding (patches + 1),
    /// pre_layrnorm, blocks of biased q/k/v/out, fc1/fc2 and two layer norms, post_layernorm.</summary>
    internal static long ClipVision(ClipVisionConfig v)
    {
        long w = v.HiddenSize;
        long embeddings = w + (long)v.NumChannels * v.PatchSize * v.PatchSize * w + (v.NumPatches + 1L) * w;
        long block = 4 * Linear(w, w) + Linear(w, v.IntermediateSize) + Linear(v.IntermediateSize, w)
            + 2 * LayerNorm(w);
        return embeddings + LayerNorm(w) + v.NumHiddenLayers * block + LayerNorm(w);
    }

    /// <summary>LAVIS <c>eva_vit.VisionTransformer</c> as <c>create_eva_vit_g</c> builds it: biased patch conv, cls
    /// token, absolute position embedding, blocks of norm1, bias-free fused qkv with separate q_bias/v_bias, biased
    /// proj, norm2, fc1/fc2; no layer scale (init_values=None), no relative position bias, no final
    /// norm/head.</summary>
    internal static long EvaVit(int width, int layers, int mlp, int imageSize, int patch, int channels = 3)
    {
        long w = width, patches = (long)(imageSize / patch) * (imageSize / patch);
        long embeddings = Linear(channels * patch * patch, w) + w + (patches + 1) * w;
        long attention = Linear(w, 3 * w, bias: false) + 2 * w + Linear(w, w);
        long block = LayerNorm(w) + attention + LayerNorm(w) + Linear(w, mlp) + Linear(mlp, w);
        return embeddings + layers * block;
    }

    /// <summary>LAVIS' BLIP-2 Q-Former (BERT layout) as MiniGPT-4 keeps it: embeddings LayerNorm only, per layer a
    /// self-attention (q/k/v/dense + LayerNorm), a cross-attention to the vision features every
    /// <paramref name="crossAttentionEvery"/>-th layer (k/v read the vision width) and the query FFN
    /// (intermediate_query, output_query + LayerNorm); the text FFN, word/position embeddings and LM head are
    /// removed.</summary>
    internal static long QFormer(int width, int layers, int mlp, int visionWidth, int crossAttentionEvery)
    {
        long w = width;
        long selfAttention = 3 * Linear(w, w) + Linear(w, w) + LayerNorm(w);
        long crossAttention = Linear(w, w) + 2 * Linear(visionWidth, w) + Linear(w, w) + LayerNorm(w);
        long queryFfn = Linear(w, mlp) + Linear(mlp, w) + LayerNorm(w);
        long crossLayers = (layers + crossAttentionEvery - 1) / crossAttentionEvery; // layers 0, k, 2k, ...
        return LayerNorm(w) + layers * (selfAttention + queryFfn) + crossLayers * crossAttention;
    }
}
