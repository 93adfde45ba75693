using System.Text.Json.Serialization;

namespace FedNano.Data.ScienceQa;

/// <summary>One entry of ScienceQA's official <c>problems.json</c>.</summary>
internal sealed record ScienceQaProblem
{
    [JsonPropertyName("question")] public string? Question { get; init; }
    [JsonPropertyName("choices")] public List<string>? Choices { get; init; }
    [JsonPropertyName("answer")] public int? Answer { get; init; }
    [JsonPropertyName("hint")] public string? Hint { get; init; }
    [JsonPropertyName("image")] public string? Image { get; init; }
    [JsonPropertyName("task")] public string? Task { get; init; }
    [JsonPropertyName("grade")] public string? Grade { get; init; }
    [JsonPropertyName("subject")] public string? Subject { get; init; }
    [JsonPropertyName("topic")] public string? Topic { get; init; }
    [JsonPropertyName("category")] public string? Category { get; init; }
    [JsonPropertyName("skill")] public string? Skill { get; init; }
    [JsonPropertyName("lecture")] public string? Lecture { get; init; }
    [JsonPropertyName("solution")] public string? Solution { get; init; }
    [JsonPropertyName("split")] public string? Split { get; init; }

    public bool HasImage => !string.IsNullOrEmpty(Image);
    public bool HasHint => !string.IsNullOrEmpty(Hint);
}

/// <summary>ScienceQA's files as read and checked, before any image policy is applied.</summary>
internal sealed record ScienceQaSource(
    string Root,
    string ProblemsPath,
    Dictionary<string, ScienceQaProblem> Problems,
    Dictionary<string, List<string>> PidSplits,
    Dictionary<string, string>? Captions,
    string? CaptionsPath)
{
    /// <summary>Where the official layout keeps a problem's image: <c>images/{split}/{pid}/{image}</c>.</summary>
    public string ImagePath(string pid, ScienceQaProblem p, string splitKey) =>
        RealDatasets.Confined(Root, Path.Combine(Root, "images", p.Split ?? splitKey, pid, p.Image!),
            $"{ProblemsPath}: problem {pid}'s image '{p.Image}'");
}

/// <summary>
/// Reads ScienceQA's official release: <c>problems.json</c>, <c>pid_splits.json</c>, optionally
/// <c>captions.json</c> (in the root or its parent, as the official repo keeps it in <c>data/</c>), and images at
/// <c>images/{split}/{pid}/image.png</c>.
/// </summary>
/// <remarks>
/// Sample metadata: <c>split</c> (the split key loaded), <c>subject</c>, <c>category</c>, <c>topic</c>,
/// <c>skill</c>, <c>grade</c>, <c>task</c>, <c>has_image</c> (the problem has an image field, whether or not the
/// file is present: ScienceQA's IMG group), <c>has_context</c> (non-empty hint: ScienceQA's TXT group),
/// <c>source</c> (the problems.json path). Images are checked here (inside the data root, present, fully decodable).
/// </remarks>
public static class ScienceQaLoader
{
    /// <summary>Standard split keys, loaded by default when present.</summary>
    public static IReadOnlyList<string> StandardSplits { get; } = ["train", "val", "test"];

    /// <summary>Loads the requested splits of the release at <paramref name="root"/>.</summary>
    public static LoadedDataset Load(string root, DatasetLoadOptions? options = null)
    {
        options ??= new DatasetLoadOptions();
        var src = Read(root);
        var splits = SelectSplits(src, options.Splits);

        var missing = new List<(string Path, string Id, string Why)>();
        var missingSet = new HashSet<string>();
        int referenced = 0;
        foreach (var split in splits)
            foreach (var pid in src.PidSplits[split])
            {
                var p = src.Problems[pid];
                if (!p.HasImage) continue;
                referenced++;
                string path = src.ImagePath(pid, p, split);
                if (RealDatasets.ImageProblem(path) is { } why && missingSet.Add(pid))
                    missing.Add((Path.GetRelativePath(src.Root, path), pid, why));
            }

        if (missing.Count > 0 && options.MissingImages == MissingImagePolicy.Error)
            throw RealDatasets.MissingImagesError("ScienceQA", src.Root, missing, referenced,
                "caption (use captions.json) or skip (drop those problems)");
        if (missing.Count > 0 && options.MissingImages == MissingImagePolicy.Caption && src.Captions is null)
            throw new ConfigException($"ScienceQA at {src.Root}: --missing-images caption needs captions.json " +
                                      $"(looked in {src.Root} and its parent); {missing.Count} images are missing");

        var result = new Dictionary<string, IReadOnlyList<MultimodalSample>>();
        int skipped = 0, captioned = 0;
        foreach (var split in splits)
        {
            var list = new List<MultimodalSample>();
            foreach (var pid in src.PidSplits[split])
            {
                var p = src.Problems[pid];
                bool imageMissing = p.HasImage && missingSet.Contains(pid);
                string? context = p.Hint;
                if (imageMissing && options.MissingImages == MissingImagePolicy.Skip) { skipped++; continue; }
                if (imageMissing)
                {
                    if (!src.Captions!.TryGetValue(pid, out var caption))
                        throw new ConfigException($"{src.CaptionsPath}: no caption for problem {pid}, " +
                                                  $"whose image {src.ImagePath(pid, p, split)} is missing; " +
                                                  "use --missing-images skip");
                    context = $"{p.Hint} {caption}".Trim();
                    captioned++;
                }
                list.Add(ToSample(src, pid, p, split, context, p.HasImage && !imageMissing));
            }
            result[split] = list;
        }
        return new LoadedDataset(
            "scienceqa", src.Root, result, missing.Select(m => m.Path).ToList(), skipped, captioned);
    }

    static MultimodalSample ToSample(
        ScienceQaSource src, string pid, ScienceQaProblem p, string split, string? context, bool withImage) => new()
    {
        Id = pid,
        Question = p.Question!,
        Choices = p.Choices!,
        AnswerIndex = p.Answer!.Value,
        Context = context,
        Image = withImage ? SampleImage.FromFile(src.ImagePath(pid, p, split)) : null,
        Meta = new Dictionary<string, string>
        {
            ["split"] = split,
            ["subject"] = p.Subject ?? "",
            ["category"] = p.Category ?? "",
            ["topic"] = p.Topic ?? "",
            ["skill"] = p.Skill ?? "",
            ["grade"] = p.Grade ?? "",
            ["task"] = p.Task ?? "",
            ["has_image"] = p.HasImage ? "true" : "false",
            ["has_context"] = p.HasHint ? "true" : "false",
            ["source"] = src.ProblemsPath,
        },
    };

    internal static List<string> SelectSplits(ScienceQaSource src, IReadOnlyList<string>? requested)
    {
        if (requested is null)
        {
            var present = StandardSplits.Where(src.PidSplits.ContainsKey).ToList();
            if (present.Count == 0)
                throw new ConfigException($"{Path.Combine(src.Root, "pid_splits.json")}: " +
                                          "none of the keys train, val, test is present " +
                                          $"(keys: {string.Join(", ", src.PidSplits.Keys)})");
            return present;
        }
        foreach (var s in requested)
            if (!src.PidSplits.ContainsKey(s))
                throw new ConfigException($"{Path.Combine(src.Root, "pid_splits.json")}: no split '{s}' " +
                                          $"(keys: {string.Join(", ", src.PidSplits.Keys)})");
        return requested.ToList();
    }

    /// <summary>Reads and checks problems.json, pid_splits.json and captions.json (no image checks).</summary>
    internal static ScienceQaSource Read(string root)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new ConfigException($"--data-root {root}: folder not found");
        string problemsPath = Path.Combine(root, "problems.json");
        if (!File.Exists(problemsPath))
            throw new ConfigException($"{problemsPath} not found: --data-root must be the folder holding " +
                                      "ScienceQA's problems.json and pid_splits.json (official: data/scienceqa)");
        var problems = RealDatasets.ReadJson<Dictionary<string, ScienceQaProblem>>(problemsPath, "problems.json");
        foreach (var (pid, p) in problems) Check(problemsPath, pid, p);

        string splitsPath = Path.Combine(root, "pid_splits.json");
        var splits = RealDatasets.ReadJson<Dictionary<string, List<string>>>(splitsPath, "pid_splits.json");
        RealDatasets.CheckDisjoint(splitsPath, splits.Select(kv => (kv.Key, (IEnumerable<string>)kv.Value)));
        foreach (var (key, ids) in splits)
            foreach (var pid in ids)
                if (!problems.ContainsKey(pid))
                    throw new ConfigException(
                        $"{splitsPath}: split '{key}' names problem id '{pid}', which is not in {problemsPath}");

        Dictionary<string, string>? captions = null;
        string? captionsPath = new[]
        {
            Path.Combine(root, "captions.json"), Path.Combine(Path.GetDirectoryName(root) ?? root, "captions.json")
        }.FirstOrDefault(File.Exists);
        if (captionsPath is not null)
            captions = RealDatasets.ReadJson<CaptionsFile>(captionsPath, "captions.json").Captions
                ?? throw new ConfigException(
                    $"{captionsPath}: no 'captions' object (expected {{\"captions\": {{pid: text}}}})");
        return new ScienceQaSource(root, problemsPath, problems, splits, captions, captionsPath);
    }

    static void Check(string file, string pid, ScienceQaProblem p)
    {
        string where = $"{file}: problem {pid}";
        if (string.IsNullOrEmpty(p.Question)) throw new ConfigException($"{where}: missing 'question'");
        if (p.Choices is null || p.Choices.Count < 2)
            throw new ConfigException($"{where}: 'choices' must list at least 2 options (got {p.Choices?.Count ?? 0})");
        if (p.Choices.Count > 26)
            throw new ConfigException($"{where}: {p.Choices.Count} choices is more than the 26 option letters");
        if (p.Answer is not int a)
            throw new ConfigException($"{where}: missing 'answer' (the index of the correct choice)");
        if (a < 0 || a >= p.Choices.Count)
            throw new ConfigException($"{where}: answer index {a} is out of range for its {p.Choices.Count} choices " +
                                      $"(0..{p.Choices.Count - 1})");
    }

    sealed record CaptionsFile([property: JsonPropertyName("captions")] Dictionary<string, string>? Captions);
}
