using System.Text.Json;

namespace FedNano.Checkpoints;

/// <summary>
/// The weights of a Hugging Face model directory: <c>model.safetensors</c>, or shards
/// <c>model-0000k-of-0000n.safetensors</c> listed in <c>model.safetensors.index.json</c>. Opening reads every
/// header and checks the index against the shards, so a missing shard, a key in the wrong file or a truncated
/// shard is reported before a single tensor is read. Pickled checkpoints (<c>.bin</c>, <c>.pt</c>) are never read.
/// </summary>
public sealed class SafetensorsCheckpoint
{
    /// <summary>Name of the single-file checkpoint.</summary>
    public const string SingleFile = "model.safetensors";
    /// <summary>Name of the shard index.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private SafetensorsCheckpoint(
        string directory, IReadOnlyList<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner)
    {
        Directory = directory; Files = files; Owner = owner;
    }

    /// <summary>The model directory.</summary>
    public string Directory { get; }
    /// <summary>The files, in shard order.</summary>
    public IReadOnlyList<SafetensorsFile> Files { get; }
    /// <summary>The file holding each key.</summary>
    public IReadOnlyDictionary<string, SafetensorsFile> Owner { get; }

    /// <summary>
    /// Opens the weights in <paramref name="directory"/>; throws <see cref="ConfigException"/> naming file and key.
    /// </summary>
    public static SafetensorsCheckpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new ConfigException($"{directory}: model directory not found");
        var index = Path.Combine(directory, IndexFile);
        var single = Path.Combine(directory, SingleFile);
        if (File.Exists(index)) return OpenSharded(directory, index);
        if (File.Exists(single)) return FromFiles(directory, [SafetensorsFile.Open(single)]);

        var pickled = System.IO.Directory.EnumerateFiles(directory)
            .Where(f => f.EndsWith(".bin") || f.EndsWith(".pt") || f.EndsWith(".pth") || f.EndsWith(".ckpt"))
            .Select(Path.GetFileName).ToList();
        if (pickled.Count > 0)
            throw new ConfigException($"{directory}: only pickled weights ({string.Join(", ", pickled.Take(3))}) " +
                                      $"and no {SingleFile} or {IndexFile}; " +
                                      "FedNano never unpickles checkpoints (that can run code): " +
                                      "convert them to safetensors first, " +
                                      "e.g. with transformers' save_pretrained(safe_serialization=True)");
        var loose = System.IO.Directory.EnumerateFiles(directory, "*.safetensors").Select(Path.GetFileName).ToList();
        if (loose.Count > 0)
            throw new ConfigException($"{directory}: {string.Join(", ", loose.Take(3))} but no {IndexFile} " +
                                      "saying which shard holds which key");
        throw new ConfigException($"{directory}: no {SingleFile} or {IndexFile}");
    }

    private static SafetensorsCheckpoint OpenSharded(string directory, string index)
    {
        Dictionary<string, string> map;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new ConfigException($"{index}: no \"weight_map\" object");
            map = wm.EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
        }
        catch (JsonException e) { throw new ConfigException($"{index}: malformed JSON: {e.Message}"); }
        catch (InvalidOperationException e)
        {
            throw new ConfigException($"{index}: weight_map values must be file names: {e.Message}");
        }

        var files = new List<SafetensorsFile>();
        foreach (var name in map.Values.Distinct().Order(StringComparer.Ordinal))
        {
            if (name.Contains('/') || name.Contains('\\') || name.StartsWith('.'))
                throw new ConfigException(
                    $"{index}: shard name '{name}' must be a plain file name in the model directory");
            var path = Path.Combine(directory, name);
            if (!File.Exists(path))
                throw new ConfigException(
                    $"{index}: shard {name} (holding e.g. '{map.First(p => p.Value == name).Key}') " +
                    $"is missing from {directory}");
            files.Add(SafetensorsFile.Open(path));
        }
        var checkpoint = FromFiles(directory, files);
        foreach (var (key, name) in map)
            if (!checkpoint.Owner.TryGetValue(key, out var f) || Path.GetFileName(f.Path) != name)
                throw new ConfigException($"{index}: key '{key}' is listed in {name} but that file does not hold it" +
                                          (f is null ? "" : $" ({Path.GetFileName(f.Path)} does)"));
        foreach (var (key, f) in checkpoint.Owner)
            if (!map.ContainsKey(key))
                throw new ConfigException($"{f.Path}: key '{key}' is not listed in {IndexFile}");
        return checkpoint;
    }

    private static SafetensorsCheckpoint FromFiles(string directory, IReadOnlyList<SafetensorsFile> files)
    {
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var key in f.Entries.Keys)
                if (!owner.TryAdd(key, f))
                    throw new ConfigException($"{f.Path}: key '{key}' is also in {owner[key].Path}");
        return new SafetensorsCheckpoint(directory, files, owner);
    }
}
