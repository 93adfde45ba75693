using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FedNano.Models;

/// <summary>
/// Configuration of a CLIP ViT vision tower, with the field names of Hugging Face's
/// <c>CLIPVisionConfig</c>. Defaults are CLIP ViT-L/14-336, the tower of LLaVA-1.5.
/// </summary>
public sealed record ClipVisionConfig
{
    /// <summary>Width of the residual stream.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1024;
    /// <summary>Inner width of the MLP.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 4096;
    /// <summary>Number of encoder blocks.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 24;
    /// <summary>Number of attention heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 16;
    /// <summary>Side of the (square) input image in pixels.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 336;
    /// <summary>Side of a square patch in pixels.</summary>
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 14;
    /// <summary>Input channels.</summary>
    [JsonPropertyName("num_channels")] public int NumChannels { get; init; } = 3;
    /// <summary>MLP activation: <c>quick_gelu</c> (CLIP) or <c>gelu</c>.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "quick_gelu";
    /// <summary>Epsilon of the layer norms.</summary>
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Patches per image (without the class token).</summary>
    [JsonIgnore] public int NumPatches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>
    /// Reads a transformers <c>CLIPVisionConfig</c> object, filling transformers' defaults (ViT-B/32);
    /// <paramref name="where"/> is its path in the file, for messages.
    /// </summary>
    internal static ClipVisionConfig FromJson(JsonObject node, string path, string where) =>
        ConfigJson.Deserialize<ClipVisionConfig>(ConfigJson.WithDefaults(node,
            ("hidden_size", 768), ("intermediate_size", 3072), ("num_hidden_layers", 12), ("num_attention_heads", 12),
            ("image_size", 224), ("patch_size", 32), ("num_channels", 3), ("hidden_act", "quick_gelu"),
            ("layer_norm_eps", 1e-5)), path, where);

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate(string where = "vision_config")
    {
        ConfigException.Positive(HiddenSize, $"{where}.hidden_size");
        ConfigException.Positive(IntermediateSize, $"{where}.intermediate_size");
        ConfigException.Positive(NumHiddenLayers, $"{where}.num_hidden_layers");
        ConfigException.Positive(NumAttentionHeads, $"{where}.num_attention_heads");
        ConfigException.Positive(PatchSize, $"{where}.patch_size");
        if (ImageSize % PatchSize != 0)
            throw new ConfigException($"{where}.image_size ({ImageSize}) must be a multiple of " +
                                      $"patch_size ({PatchSize})");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ConfigException($"{where}.hidden_size ({HiddenSize}) must be divisible by " +
                                      $"num_attention_heads ({NumAttentionHeads})");
        if (HiddenAct is not ("quick_gelu" or "gelu"))
            throw new ConfigException($"{where}.hidden_act '{HiddenAct}' is not supported (quick_gelu or gelu)");
    }
}
