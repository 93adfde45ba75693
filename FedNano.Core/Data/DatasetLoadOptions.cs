namespace FedNano.Data;

/// <summary>What a loader does with a problem whose image file is missing or cannot be read.</summary>
public enum MissingImagePolicy
{
    /// <summary>
    /// Stop with a <see cref="ConfigException"/> that counts the missing images and names the first few paths
    /// (default).
    /// </summary>
    Error,
    /// <summary>
    /// Keep the problem without its image and put the official caption (ScienceQA <c>captions.json</c>) into the
    /// context after the hint, as ScienceQA's caption baselines do. Not available for IconQA (it has no captions).
    /// </summary>
    Caption,
    /// <summary>Drop problems whose image (or any choice image) is missing; the count is reported.</summary>
    Skip,
}

/// <summary>Options shared by the real-data loaders.</summary>
public sealed record DatasetLoadOptions
{
    /// <summary>What to do with missing or unreadable images.</summary>
    public MissingImagePolicy MissingImages { get; init; } = MissingImagePolicy.Error;

    /// <summary>
    /// Splits to load (e.g. <c>train</c>, <c>test</c>, ScienceQA's <c>minitest</c>); null loads those of
    /// <c>train</c>, <c>val</c>, <c>test</c> that the release has.
    /// </summary>
    public IReadOnlyList<string>? Splits { get; init; }

    /// <summary>Parses a <c>--missing-images</c> value (<c>error</c>, <c>caption</c>, <c>skip</c>).</summary>
    public static MissingImagePolicy ParsePolicy(string value) => value.ToLowerInvariant() switch
    {
        "error" => MissingImagePolicy.Error,
        "caption" => MissingImagePolicy.Caption,
        "skip" => MissingImagePolicy.Skip,
        _ => throw new ConfigException(
            $"missing_images (--missing-images) '{value}' is not one of error, caption, skip"),
    };
}

/// <summary>A real data set read from disk: its samples per split and what was missing.</summary>
/// <param name="Name">Data set name (<c>scienceqa</c>, <c>iconqa</c>).</param>
/// <param name="Root">The folder it was read from.</param>
/// <param name="Splits">Samples per split name, in the release's order.</param>
/// <param name="MissingImages">
/// Image files referenced but missing or unreadable (paths relative to <paramref name="Root"/>).
/// </param>
/// <param name="Skipped">Problems dropped under <see cref="MissingImagePolicy.Skip"/>.</param>
/// <param name="Captioned">Problems whose missing image was replaced by its caption.</param>
public sealed record LoadedDataset(
    string Name,
    string Root,
    IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Splits,
    IReadOnlyList<string> MissingImages,
    int Skipped,
    int Captioned)
{
    /// <summary>
    /// The samples of <paramref name="split"/>, or a <see cref="ConfigException"/> naming the splits loaded.
    /// </summary>
    public IReadOnlyList<MultimodalSample> Split(string split) =>
        Splits.TryGetValue(split, out var s) ? s
            : throw new ConfigException($"{Name} at {Root}: split '{split}' was not loaded " +
                                        $"(loaded: {string.Join(", ", Splits.Keys)})");
}

/// <summary>Helpers of the real-data loaders (the data sets are entries of <see cref="DatasetRegistry"/>).</summary>
public static class RealDatasets
{
    /// <summary>
    /// Checks that every sample has a non-empty <paramref name="key"/> field (the label a partition or a
    /// breakdown uses) and returns the distinct values in first-seen order.
    /// </summary>
    public static IReadOnlyList<string> LabelValues(IEnumerable<MultimodalSample> samples, string key)
    {
        var seen = new List<string>();
        var set = new HashSet<string>();
        foreach (var s in samples)
        {
            if (!s.Meta.TryGetValue(key, out var v))
                throw new ConfigException($"partition label '{key}' is not a field of sample {s.Id}{Source(s)} " +
                                          $"(known fields: {string.Join(", ", s.Meta.Keys)})");
            if (string.IsNullOrWhiteSpace(v))
                throw new ConfigException(
                    $"sample {s.Id}{Source(s)} has an empty '{key}' field; pick another partition label");
            if (set.Add(v)) seen.Add(v);
        }
        return seen;
    }

    static string Source(MultimodalSample s) => s.Meta.TryGetValue("source", out var f) ? $" ({f})" : "";

    /// <summary>
    /// Null when <paramref name="path"/> is a readable image (fully decoded now, so a file cut short is caught at
    /// load time, not in the middle of a run), else why not (missing, too large, or the decoder's complaint).
    /// </summary>
    internal static string? ImageProblem(string path)
    {
        if (!File.Exists(path)) return "missing";
        try
        {
            using var image = Images.ImageProcessor.Decode(SampleImage.FromFile(path), null);
            return null;
        }
        catch (ConfigException e) { return e.Message.Replace(path + ": ", ""); }
    }

    /// <summary>
    /// <paramref name="path"/> made absolute, refused unless it lies inside <paramref name="root"/> (an absolute path
    /// or <c>..</c> in a data file must not read files elsewhere).
    /// </summary>
    internal static string Confined(string root, string path, string who)
    {
        string full = Path.GetFullPath(path),
            top = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(top, StringComparison.Ordinal))
            throw new ConfigException($"{who}: the path {full} lies outside the data root {top}; " +
                                      $"data files may only name files inside it");
        return full;
    }

    /// <summary>Refuses an id listed in two splits (it would land in a client's train and test parts at
    /// once).</summary>
    internal static void CheckDisjoint(string file, IEnumerable<(string Split, IEnumerable<string> Ids)> splits)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (split, ids) in splits)
            foreach (var id in ids)
                if (!seen.TryAdd(id, split))
                    throw new ConfigException(seen[id] == split
                        ? $"{file}: id '{id}' is listed twice in split '{split}'"
                        : $"{file}: id '{id}' is in split '{seen[id]}' and in split '{split}'; " +
                          $"each question may be in one split only");
    }

    /// <summary>The ConfigException for images missing under <see cref="MissingImagePolicy.Error"/>.</summary>
    internal static ConfigException MissingImagesError(string dataset, string root,
        IReadOnlyList<(string Path, string Id, string Why)> missing, int referenced, string fallbacks)
    {
        var first = string.Join("; ", missing.Take(3).Select(m => $"{m.Path} (id {m.Id}, {m.Why})"));
        return new ConfigException(
            $"{dataset} at {root}: {missing.Count} of {referenced} referenced image files are missing or unreadable, " +
            $"e.g. {first}{(missing.Count > 3 ? "; ..." : "")}. " +
            $"Put the official images there, or pass --missing-images {fallbacks}");
    }

    /// <summary>
    /// Reads a JSON file into <typeparamref name="T"/>, turning every failure into a ConfigException naming the file.
    /// </summary>
    internal static T ReadJson<T>(string path, string what)
    {
        if (!File.Exists(path)) throw new ConfigException($"{path}: {what} not found");
        try
        {
            using var stream = File.OpenRead(path);
            return System.Text.Json.JsonSerializer.Deserialize<T>(stream, JsonOptions)
                ?? throw new ConfigException($"{path}: {what} is empty (null)");
        }
        catch (System.Text.Json.JsonException e)
        {
            string at = e.LineNumber is long line ? $" at line {line + 1}, byte {e.BytePositionInLine + 1}" : "";
            string field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" (field {e.Path})";
            throw new ConfigException($"{path}: malformed {what}{at}{field}: {FirstSentence(e.Message)}");
        }
    }

    static string FirstSentence(string m)
    {
        int i = m.IndexOf(". Path:", StringComparison.Ordinal);
        return i > 0 ? m[..i] : m;
    }

    static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { AllowTrailingCommas = false };
}
