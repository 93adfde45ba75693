using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FedNano.Models;

/// <summary>
/// Configuration of a LLaMA-architecture decoder, with the field names of Hugging Face's
/// <c>LlamaConfig</c> (<c>config.json</c>), so the same record reads a real LLaMA/Vicuna config.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Width of the residual stream.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 4096;
    /// <summary>Inner width of the SwiGLU MLP.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 11008;
    /// <summary>Number of decoder blocks.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 32;
    /// <summary>Number of query heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 32;
    /// <summary>Number of key/value heads (grouped-query attention); defaults to the query heads.</summary>
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    /// <summary>Vocabulary size of the token embedding and LM head.</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 32000;
    /// <summary>Base of the rotary position frequencies.</summary>
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Epsilon of RMSNorm.</summary>
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Longest sequence the rotary cache is built for.</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 4096;
    /// <summary>Whether the LM head shares the token embedding's weight.</summary>
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    /// <summary>MLP activation; only <c>silu</c> (SwiGLU) is supported.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
    /// <summary>Id of the beginning-of-sequence token.</summary>
    [JsonPropertyName("bos_token_id")] public int BosTokenId { get; init; } = 1;
    /// <summary>Id of the end-of-sequence token.</summary>
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 2;
    /// <summary>Id of the padding token, if any.</summary>
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }

    /// <summary>Key/value heads actually used.</summary>
    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    /// <summary>Width of one attention head.</summary>
    [JsonIgnore] public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>
    /// Reads a transformers <c>LlamaConfig</c> object (<paramref name="where"/>: its path in the file, empty at the
    /// top level), filling transformers' defaults (LLaMA-7B). Fields that change the math and are not implemented
    /// here are refused by name: rotary scaling (<c>rope_scaling</c>, or a <c>rope_parameters</c> other than the
    /// default rope), <c>attention_bias</c> or <c>mlp_bias</c> true, a <c>head_dim</c> other than hidden / heads.
    /// transformers 5's <c>rope_parameters.rope_theta</c> is read as <c>rope_theta</c>.
    /// </summary>
    internal static LlamaConfig FromJson(JsonObject node, string path, string where)
    {
        string F(string key) => ConfigJson.Field(where, key);
        ConfigException Refused(string key, string what) =>
            new($"{path}: {F(key)} {what} is not implemented here (LLaMA-1/2 math only)");
        ConfigException NotObject(string key, JsonNode value) =>
            new($"{path}: {F(key)} must be an object or null (got {value.ToJsonString()})");
        var n = ConfigJson.WithDefaults(node,
            ("hidden_size", 4096), ("intermediate_size", 11008), ("num_hidden_layers", 32),
            ("num_attention_heads", 32), ("vocab_size", 32000), ("rms_norm_eps", 1e-6),
            ("max_position_embeddings", 2048), ("hidden_act", "silu"), ("tie_word_embeddings", false));
        foreach (var key in new[] { "attention_bias", "mlp_bias" })
            if (ConfigJson.Bool(n, key, path, where) == true) throw Refused(key, "= true (biases on its linears)");

        if (n["rope_scaling"] is { } scaling)
        {
            if (scaling is not JsonObject o) throw NotObject("rope_scaling", scaling);
            if (!DefaultRope(o, path, F("rope_scaling")))
                throw Refused("rope_scaling", $"{o.ToJsonString()} (rotary scaling)");
        }
        if (n["rope_parameters"] is { } parameters)
        {
            if (parameters is not JsonObject rope) throw NotObject("rope_parameters", parameters);
            if (!DefaultRope(rope, path, F("rope_parameters")))
                throw Refused("rope_parameters", $"{rope.ToJsonString()} (only the default rope is)");
            if (rope["rope_theta"] is { } theta)
            {
                if (n["rope_theta"] is { } top && top.ToJsonString() != theta.ToJsonString())
                    throw new ConfigException(
                        $"{path}: {F("rope_theta")} ({top}) and {F("rope_parameters.rope_theta")} ({theta}) disagree");
                n["rope_theta"] = theta.DeepClone();
            }
        }
        foreach (var key in new[] { "rope_scaling", "rope_parameters", "attention_bias", "mlp_bias" }) n.Remove(key);

        // transformers 5 may write eos_token_id as a list
        if (n["eos_token_id"] is JsonArray { Count: > 0 } eos) n["eos_token_id"] = eos[0]!.DeepClone();
        var headDim = n["head_dim"];
        n.Remove("head_dim");
        var config = ConfigJson.Deserialize<LlamaConfig>(n, path, where.Length == 0 ? "config" : where);
        if (headDim is not null && config.NumAttentionHeads > 0)
        {
            int expected = config.HiddenSize / config.NumAttentionHeads;
            if (ConfigJson.Deserialize<int?>(headDim, path, F("head_dim")) is { } h && h != expected)
                throw Refused("head_dim", $"= {h} (other than hidden_size / num_attention_heads = {expected})");
        }
        return config;
    }

    /// <summary>A rotary-parameters object that asks for nothing but the default rope (and its theta).</summary>
    private static bool DefaultRope(JsonObject rope, string path, string where)
    {
        var type = ConfigJson.String(rope, "rope_type", path, where)
                   ?? ConfigJson.String(rope, "type", path, where) ?? "default";
        return type == "default" && rope.All(p => p.Key is "rope_type" or "type" or "rope_theta");
    }

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate(string where = "text_config")
    {
        ConfigException.Positive(HiddenSize, $"{where}.hidden_size");
        ConfigException.Positive(IntermediateSize, $"{where}.intermediate_size");
        ConfigException.Positive(NumHiddenLayers, $"{where}.num_hidden_layers");
        ConfigException.Positive(NumAttentionHeads, $"{where}.num_attention_heads");
        ConfigException.Positive(KeyValueHeads, $"{where}.num_key_value_heads");
        ConfigException.Positive(VocabSize, $"{where}.vocab_size");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ConfigException($"{where}.hidden_size ({HiddenSize}) must be divisible by " +
                                      $"num_attention_heads ({NumAttentionHeads})");
        if (NumAttentionHeads % KeyValueHeads != 0)
            throw new ConfigException($"{where}.num_attention_heads ({NumAttentionHeads}) must be divisible by " +
                                      $"num_key_value_heads ({KeyValueHeads})");
        if (HiddenAct != "silu")
            throw new ConfigException($"{where}.hidden_act '{HiddenAct}' is not supported (only 'silu')");
    }
}
