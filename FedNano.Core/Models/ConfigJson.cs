using System.Text.Json;
using System.Text.Json.Nodes;

namespace FedNano.Models;

/// <summary>Reading Hugging Face <c>config.json</c> files: parse, fill transformers' defaults, deserialize.</summary>
internal static class ConfigJson
{
    public static JsonObject Read(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new ConfigException($"{path}: not a JSON object");
        }
        catch (JsonException e) { throw new ConfigException($"{path}: malformed JSON: {e.Message}"); }
    }

    public static T Deserialize<T>(JsonNode node, string path, string where)
    {
        try
        {
            return node.Deserialize<T>(LlavaConfig.JsonOptions)
                   ?? throw new ConfigException($"{path}: {where} is null");
        }
        catch (JsonException e) { throw new ConfigException($"{path}: {where}: bad value at {e.Path}: {e.Message}"); }
        catch (InvalidOperationException e) { throw new ConfigException($"{path}: {where}: bad value: {e.Message}"); }
    }

    /// <summary>transformers writes only the fields that differ from its defaults: fill those defaults in.</summary>
    public static JsonObject WithDefaults(JsonObject node, params (string Key, JsonNode Value)[] defaults)
    {
        var copy = (JsonObject)node.DeepClone();
        foreach (var (k, v) in defaults) if (!copy.ContainsKey(k)) copy[k] = v;
        return copy;
    }

    /// <summary><c>where.key</c>, or <c>key</c> at the top level.</summary>
    public static string Field(string where, string key) => where.Length == 0 ? key : $"{where}.{key}";

    /// <summary>The string value of <paramref name="key"/>, null when absent or null.</summary>
    public static string? String(JsonObject node, string key, string path, string where) => node[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var other => throw new ConfigException($"{path}: {Field(where, key)} must be a string (got {other})"),
    };

    /// <summary>The boolean value of <paramref name="key"/>, null when absent or null.</summary>
    public static bool? Bool(JsonObject node, string key, string path, string where) => node[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw new ConfigException($"{path}: {Field(where, key)} must be true or false (got {other})"),
    };
}
