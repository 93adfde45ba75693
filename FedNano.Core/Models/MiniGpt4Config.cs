using System.Text.Json.Serialization;

namespace FedNano.Models;

/// <summary>
/// Configuration of BLIP-2's vision tower with the field names of Hugging Face's <c>Blip2VisionConfig</c>.
/// Defaults are EVA ViT-g/14 at 224 px, the tower of BLIP-2 and MiniGPT-4.
/// </summary>
public sealed record Blip2VisionConfig
{
    /// <summary>Width of the residual stream.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1408;
    /// <summary>Inner width of the MLP.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 6144;
    /// <summary>Number of encoder blocks.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 39;
    /// <summary>Number of attention heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 16;
    /// <summary>Side of the (square) input image in pixels.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 224;
    /// <summary>Side of a square patch in pixels.</summary>
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 14;
    /// <summary>MLP activation; only <c>gelu</c> (exact) is supported.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    /// <summary>Epsilon of the layer norms.</summary>
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-6;
    /// <summary>Whether the fused qkv projection has separate <c>q_bias</c> and <c>v_bias</c> (no key bias).</summary>
    [JsonPropertyName("qkv_bias")] public bool QkvBias { get; init; } = true;

    /// <summary>Input channels (Hugging Face's BLIP-2 fixes 3).</summary>
    [JsonIgnore] public int NumChannels => 3;
    /// <summary>Patches per image (without the class token).</summary>
    [JsonIgnore] public int NumPatches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate(string where = "vision_config")
    {
        ConfigException.Positive(HiddenSize, $"{where}.hidden_size");
        ConfigException.Positive(IntermediateSize, $"{where}.intermediate_size");
        ConfigException.Positive(NumHiddenLayers, $"{where}.num_hidden_layers");
        ConfigException.Positive(NumAttentionHeads, $"{where}.num_attention_heads");
        ConfigException.Positive(PatchSize, $"{where}.patch_size");
        ConfigException.Positive(LayerNormEps, $"{where}.layer_norm_eps");
        if (ImageSize <= 0 || ImageSize % PatchSize != 0)
            throw new ConfigException($"{where}.image_size ({ImageSize}) must be a positive multiple of " +
                                      $"patch_size ({PatchSize})");
        Blip2QFormerConfig.CheckHeadsAndAct(where, HiddenSize, NumAttentionHeads, HiddenAct);
    }
}

/// <summary>
/// Configuration of BLIP-2's Q-Former with the field names of Hugging Face's <c>Blip2QFormerConfig</c>
/// (a BERT-base encoder whose layers cross-attend to the image every <see cref="CrossAttentionFrequency"/> layers).
/// </summary>
public sealed record Blip2QFormerConfig
{
    /// <summary>Width of the residual stream.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 768;
    /// <summary>Inner width of the query feed-forward.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 3072;
    /// <summary>Number of layers.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    /// <summary>Number of attention heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 12;
    /// <summary>Layers <c>0, f, 2f, ...</c> cross-attend to the image.</summary>
    [JsonPropertyName("cross_attention_frequency")] public int CrossAttentionFrequency { get; init; } = 2;
    /// <summary>Width of the image features the cross-attention reads (the vision tower's hidden size).</summary>
    [JsonPropertyName("encoder_hidden_size")] public int EncoderHiddenSize { get; init; } = 1408;
    /// <summary>Feed-forward activation; only <c>gelu</c> (exact) is supported.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    /// <summary>Epsilon of the layer norms.</summary>
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    /// <summary>Only <c>absolute</c> (the query tokens carry no positions) is supported.</summary>
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate(string where = "qformer_config")
    {
        ConfigException.Positive(HiddenSize, $"{where}.hidden_size");
        ConfigException.Positive(IntermediateSize, $"{where}.intermediate_size");
        ConfigException.Positive(NumHiddenLayers, $"{where}.num_hidden_layers");
        ConfigException.Positive(NumAttentionHeads, $"{where}.num_attention_heads");
        ConfigException.Positive(CrossAttentionFrequency, $"{where}.cross_attention_frequency");
        ConfigException.Positive(EncoderHiddenSize, $"{where}.encoder_hidden_size");
        ConfigException.Positive(LayerNormEps, $"{where}.layer_norm_eps");
        CheckHeadsAndAct(where, HiddenSize, NumAttentionHeads, HiddenAct);
        if (PositionEmbeddingType != "absolute")
            throw new ConfigException($"{where}.position_embedding_type '{PositionEmbeddingType}' is not supported " +
                                      "(only 'absolute')");
    }

    internal static void CheckHeadsAndAct(string where, int hidden, int heads, string act)
    {
        if (hidden % heads != 0)
            throw new ConfigException($"{where}.hidden_size ({hidden}) must be divisible by " +
                                      $"num_attention_heads ({heads})");
        if (act != "gelu") throw new ConfigException($"{where}.hidden_act '{act}' is not supported (only 'gelu')");
    }
}

/// <summary>
/// Configuration of MiniGPT-4: BLIP-2's vision tower and Q-Former (as in a Hugging Face <c>Blip2Config</c>), its
/// learned query tokens, a linear <c>language_projection</c> from the Q-Former to the LLM, and a LLaMA/Vicuna
/// language model. Defaults are MiniGPT-4 (7B): EVA ViT-g/14, 32 queries, Vicuna-7B.
/// </summary>
public sealed record MiniGpt4Config
{
    /// <summary>The vision tower.</summary>
    [JsonPropertyName("vision_config")] public Blip2VisionConfig VisionConfig { get; init; } = new();
    /// <summary>The Q-Former.</summary>
    [JsonPropertyName("qformer_config")] public Blip2QFormerConfig QFormerConfig { get; init; } = new();
    /// <summary>The language model.</summary>
    [JsonPropertyName("text_config")] public LlamaConfig TextConfig { get; init; } = new();
    /// <summary>Learned query tokens: the visual tokens one image becomes.</summary>
    [JsonPropertyName("num_query_tokens")] public int NumQueryTokens { get; init; } = 32;
    /// <summary>Per-channel mean used to normalise images (BLIP-2's, which is CLIP's).</summary>
    [JsonPropertyName("image_mean")] public float[] ImageMean { get; init; } = [0.48145466f, 0.4578275f, 0.40821073f];
    /// <summary>Per-channel standard deviation used to normalise images.</summary>
    [JsonPropertyName("image_std")] public float[] ImageStd { get; init; } = [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        VisionConfig.Validate();
        QFormerConfig.Validate();
        TextConfig.Validate();
        ConfigException.Positive(NumQueryTokens, "num_query_tokens");
        if (QFormerConfig.EncoderHiddenSize != VisionConfig.HiddenSize)
            throw new ConfigException($"qformer_config.encoder_hidden_size ({QFormerConfig.EncoderHiddenSize}) " +
                                      $"must equal vision_config.hidden_size ({VisionConfig.HiddenSize})");
        if (ImageMean.Length != 3 || ImageStd.Length != 3)
            throw new ConfigException("image_mean and image_std must have 3 values");
    }
}
