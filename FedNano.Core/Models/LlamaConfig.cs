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

    /// <summary>Throws <see cref="ConfigException"/> naming the first field that is out of range.</summary>
    public void Validate(string where = "text_config")
    {
        ConfigException.Positive(HiddenSize, $"{where}.hidden_size");
        ConfigException.Positive(IntermediateSize, $"{where}.intermediate_size");
        ConfigException.Positive(NumHiddenLayers, $"{where}.num_hidden_layers");
        ConfigException.Positive(NumAttentionHeads, $"{where}.num_attention_heads");
        ConfigException.Positive(KeyValueHeads, $"{where}.num_key_value_heads");
        ConfigException.Positive(VocabSize, $"{where}.vocab_size");
        if (HiddenSize % NumAttentionHeads != 0) throw new ConfigException($"{where}.hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads})");
        if (NumAttentionHeads % KeyValueHeads != 0) throw new ConfigException($"{where}.num_attention_heads ({NumAttentionHeads}) must be divisible by num_key_value_heads ({KeyValueHeads})");
        if (HiddenAct != "silu") throw new ConfigException($"{where}.hidden_act '{HiddenAct}' is not supported (only 'silu')");
    }
}
