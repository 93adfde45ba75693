using System.Text.Json;
using System.Text.Json.Serialization;

namespace FedNano.Models;

/// <summary>
/// Configuration of a LLaVA-style MLLM in the layout of Hugging Face's
/// <c>LlavaForConditionalGeneration</c> <c>config.json</c>: a CLIP vision tower, an
/// <c>mlp2x_gelu</c> projector and a LLaMA language model.
/// </summary>
public sealed record LlavaConfig
{
    /// <summary>The language model.</summary>
    [JsonPropertyName("text_config")] public LlamaConfig TextConfig { get; init; } = new();
    /// <summary>The vision tower.</summary>
    [JsonPropertyName("vision_config")] public ClipVisionConfig VisionConfig { get; init; } = new();
    /// <summary>Activation between the projector's two linears (LLaVA-1.5: <c>gelu</c>).</summary>
    [JsonPropertyName("projector_hidden_act")] public string ProjectorHiddenAct { get; init; } = "gelu";
    /// <summary>Which vision layer's output feeds the projector (LLaVA-1.5: -2, the second to last).</summary>
    [JsonPropertyName("vision_feature_layer")] public int VisionFeatureLayer { get; init; } = -2;
    /// <summary><c>default</c> drops the class token (LLaVA-1.5), <c>full</c> keeps it.</summary>
    [JsonPropertyName("vision_feature_select_strategy")] public string VisionFeatureSelectStrategy { get; init; } = "default";
    /// <summary>Per-channel mean used to normalise images (CLIP's by default).</summary>
    [JsonPropertyName("image_mean")] public float[] ImageMean { get; init; } = [0.48145466f, 0.4578275f, 0.40821073f];
    /// <summary>Per-channel standard deviation used to normalise images (CLIP's by default).</summary>
    [JsonPropertyName("image_std")] public float[] ImageStd { get; init; } = [0.26862954f, 0.26130258f, 0.27577711f];
    /// <summary>Architectures, as Hugging Face writes them.</summary>
    [JsonPropertyName("architectures")] public string[] Architectures { get; init; } = ["LlavaForConditionalGeneration"];
    /// <summary>Model type, as Hugging Face writes it.</summary>
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llava";

    /// <summary>Visual tokens one image contributes to the LLM's sequence.</summary>
    [JsonIgnore] public int ImageTokens => VisionConfig.NumPatches + (VisionFeatureSelectStrategy == "full" ? 1 : 0);

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        TextConfig.Validate();
        VisionConfig.Validate();
        if (ProjectorHiddenAct != "gelu") throw new ConfigException($"projector_hidden_act '{ProjectorHiddenAct}' is not supported (only 'gelu')");
        if (VisionFeatureSelectStrategy is not ("default" or "full")) throw new ConfigException($"vision_feature_select_strategy '{VisionFeatureSelectStrategy}' must be 'default' or 'full'");
        int layers = VisionConfig.NumHiddenLayers;
        if (VisionFeatureLayer == 0 || VisionFeatureLayer < -layers || VisionFeatureLayer > layers)
            throw new ConfigException($"vision_feature_layer {VisionFeatureLayer} is outside the tower's {layers} layers");
        if (ImageMean.Length != VisionConfig.NumChannels || ImageStd.Length != VisionConfig.NumChannels)
            throw new ConfigException($"image_mean and image_std must have {VisionConfig.NumChannels} values");
    }

    /// <summary>JSON options used to read and write configs (indented, case-sensitive HF names).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new() { WriteIndented = true };

    /// <summary>Reads and validates a <c>config.json</c>.</summary>
    public static LlavaConfig Load(string path)
    {
        LlavaConfig cfg;
        try { cfg = JsonSerializer.Deserialize<LlavaConfig>(File.ReadAllText(path), JsonOptions) ?? throw new ConfigException($"{path}: empty config"); }
        catch (JsonException e) { throw new ConfigException($"{path}: malformed JSON at {e.Path}: {e.Message}"); }
        try { cfg.Validate(); } catch (ConfigException e) { throw new ConfigException($"{path}: {e.Message}"); }
        return cfg;
    }

    /// <summary>Writes the config as indented JSON.</summary>
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));
}
