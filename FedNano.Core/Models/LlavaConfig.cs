using System.Text.Json;
using System.Text.Json.Nodes;
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
    [JsonPropertyName("vision_feature_select_strategy")]
    public string VisionFeatureSelectStrategy { get; init; } = "default";
    /// <summary>Per-channel mean used to normalise images (CLIP's by default).</summary>
    [JsonPropertyName("image_mean")] public float[] ImageMean { get; init; } = [0.48145466f, 0.4578275f, 0.40821073f];
    /// <summary>Per-channel standard deviation used to normalise images (CLIP's by default).</summary>
    [JsonPropertyName("image_std")] public float[] ImageStd { get; init; } = [0.26862954f, 0.26130258f, 0.27577711f];
    /// <summary>Architectures, as Hugging Face writes them.</summary>
    [JsonPropertyName("architectures")]
    public string[] Architectures { get; init; } = ["LlavaForConditionalGeneration"];
    /// <summary>Model type, as Hugging Face writes it.</summary>
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llava";

    /// <summary>Visual tokens one image contributes to the LLM's sequence.</summary>
    [JsonIgnore] public int ImageTokens => VisionConfig.NumPatches + (VisionFeatureSelectStrategy == "full" ? 1 : 0);

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        TextConfig.Validate();
        VisionConfig.Validate();
        if (ProjectorHiddenAct != "gelu")
            throw new ConfigException($"projector_hidden_act '{ProjectorHiddenAct}' is not supported (only 'gelu')");
        if (VisionFeatureSelectStrategy is not ("default" or "full"))
            throw new ConfigException($"vision_feature_select_strategy '{VisionFeatureSelectStrategy}' " +
                                      "must be 'default' or 'full'");
        int layers = VisionConfig.NumHiddenLayers;
        if (VisionFeatureLayer == 0 || VisionFeatureLayer < -layers || VisionFeatureLayer > layers)
            throw new ConfigException(
                $"vision_feature_layer {VisionFeatureLayer} is outside the tower's {layers} layers");
        if (ImageMean.Length != VisionConfig.NumChannels || ImageStd.Length != VisionConfig.NumChannels)
            throw new ConfigException($"image_mean and image_std must have {VisionConfig.NumChannels} values");
    }

    /// <summary>JSON options used to read and write configs (indented, case-sensitive HF names).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new() { WriteIndented = true };

    /// <summary>
    /// Reads and validates a transformers LLaVA <c>config.json</c> (<c>model_type</c> <c>llava</c>; the layouts of
    /// transformers 4 and 5 and of <see cref="Save"/>). A config that is not a LLaVA-1.5 one, or asks for math not
    /// implemented here (see <see cref="LlamaConfig"/>; <c>multimodal_projector_bias</c> false, a list of vision
    /// feature layers, a text model other than LLaMA, a vision tower other than CLIP), is refused by name.
    /// </summary>
    public static LlavaConfig Load(string path) => FromJson(ConfigJson.Read(path), path);

    /// <summary>See <see cref="Load"/>; <paramref name="path"/> names the file in messages.</summary>
    internal static LlavaConfig FromJson(JsonObject root, string path)
    {
        var modelType = ConfigJson.String(root, "model_type", path, "");
        var wrong = modelType != "llava" ? (modelType is null ? "no model_type" : $"model_type '{modelType}'")
            : root["mm_vision_tower"] is not null ? "mm_vision_tower (LLaVA's own layout: open it as a checkpoint)"
            : root["text_config"] is null ? "no text_config"
            : root["vision_config"] is null ? "no vision_config" : null;
        if (wrong is not null)
            throw new ConfigException($"{path}: {wrong}: not a transformers LLaVA-1.5 config.json (model_type " +
                                      "'llava' with text_config and vision_config), nor LLaVA's own (mm_vision_tower)");
        if (root["vision_feature_layer"] is JsonArray)
            throw new ConfigException(
                $"{path}: vision_feature_layer is a list (multi-layer features); only one layer is supported");
        if (ConfigJson.Bool(root, "multimodal_projector_bias", path, "") == false)
            throw new ConfigException(
                $"{path}: multimodal_projector_bias = false is not implemented here (LLaVA-1.5's has biases)");
        var textNode = SubConfig(root, "text_config", "llama", path);
        var visionNode = SubConfig(root, "vision_config", "clip_vision_model", path);
        var n = (JsonObject)root.DeepClone();
        n.Remove("text_config");
        n.Remove("vision_config");
        var config = ConfigJson.Deserialize<LlavaConfig>(n, path, "config");
        var text = LlamaConfig.FromJson(textNode, path, "text_config");
        // transformers' LlavaConfig ties the LM head when either level says so
        if (ConfigJson.Bool(root, "tie_word_embeddings", path, "") == true)
            text = text with { TieWordEmbeddings = true };
        var vision = ClipVisionConfig.FromJson(visionNode, path, "vision_config");
        config = config with { TextConfig = text, VisionConfig = vision };
        try { config.Validate(); } catch (ConfigException e) { throw new ConfigException($"{path}: {e.Message}"); }
        return config;
    }

    private static JsonObject SubConfig(JsonObject root, string key, string modelType, string path)
    {
        if (root[key] is not JsonObject node) throw new ConfigException($"{path}: {key} must be an object");
        var type = ConfigJson.String(node, "model_type", path, key);
        if (type is not null && type != modelType)
            throw new ConfigException(
                $"{path}: {key}.model_type '{type}' is not supported (only '{modelType}', as in LLaVA-1.5)");
        return node;
    }

    /// <summary>Writes the config as indented JSON.</summary>
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));
}
