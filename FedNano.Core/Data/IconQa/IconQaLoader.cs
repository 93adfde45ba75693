using System.Text.Json;
using System.Text.Json.Serialization;

namespace FedNano.Data.IconQa;

/// <summary>One question's <c>data.json</c> in IconQA's official release.</summary>
internal sealed record IconQaQuestion
{
    [JsonPropertyName("question")] public string? Question { get; init; }
    [JsonPropertyName("choices")] public List<string>? Choices { get; init; }
    [JsonPropertyName("answer")] public JsonElement Answer { get; init; }
    [JsonPropertyName("ques_type")] public string? QuesType { get; init; }
    [JsonPropertyName("grade")] public string? Grade { get; init; }
    [JsonPropertyName("label")] public string? Label { get; init; }
    [JsonPropertyName("hint")] public string? Hint { get; init; }
    [JsonPropertyName("unit")] public string? Unit { get; init; }
}

/// <summary>A question located in the release: its task, split, folder and parsed data.json.</summary>
internal sealed record IconQaEntry(
    string Pid, string Task, string Split, string Folder, string DataPath, IconQaQuestion Data)
{
    public string ImagePath => Path.Combine(Folder, "image.png");
    public IEnumerable<string> ReferencedImages => Task == IconQaLoader.ChooseImg
        ? Data.Choices!.Select(c => RealDatasets.Confined(Folder, Path.Combine(Folder, c), $"{DataPath}: " +
            $"choice image '{c}'")).Prepend(ImagePath)
        : [ImagePath];
}

/// <summary>
/// Reads IconQA's official layout: <c>iconqa_data/pid_splits.json</c> keyed <c>{task}_{split}</c> and
/// <c>iconqa_data/iconqa/{split}/{task}/{pid}/</c> with <c>data.json</c>, <c>image.png</c> and, for
/// <c>choose_img</c>, the choice images named in <c>choices</c>. <c>--data-root</c> may be the folder holding
/// <c>iconqa_data</c> or <c>iconqa_data</c> itself.
/// </summary>
/// <remarks>
/// Tasks: <c>choose_txt</c> (multiple choice over texts), <c>choose_img</c> (multiple choice over images:
/// <see cref="MultimodalSample.ChoiceImages"/> holds them, <see cref="MultimodalSample.Choices"/> their file names),
/// <c>fill_in_blank</c> (free answer in <see cref="MultimodalSample.AnswerText"/>, scored by exact match).
/// Metadata: <c>split</c>, <c>task</c>, <c>skill</c> (= data.json <c>label</c>), <c>grade</c>, <c>ques_type</c>,
/// <c>has_image</c>, <c>has_context</c>, <c>unit</c> (when given), <c>source</c> (the data.json path).
/// A <c>hint</c> goes into <see cref="MultimodalSample.Context"/>.
/// </remarks>
public static class IconQaLoader
{
    internal const string ChooseImg = "choose_img", ChooseTxt = "choose_txt", FillInBlank = "fill_in_blank";

    /// <summary>IconQA's three tasks.</summary>
    public static IReadOnlyList<string> Tasks { get; } = [ChooseImg, ChooseTxt, FillInBlank];

    /// <summary>Loads the requested splits of the release at <paramref name="root"/>.</summary>
    public static LoadedDataset Load(string root, DatasetLoadOptions? options = null)
    {
        options ??= new DatasetLoadOptions();
        if (options.MissingImages == MissingImagePolicy.Caption)
            throw new ConfigException(
                "--missing-images caption is for ScienceQA only (IconQA has no captions); use error or skip");
        var (dataRoot, entries) = Read(root, options.Splits);

        var missing = new List<(string Path, string Id, string Why)>();
        var bad = new HashSet<IconQaEntry>();
        int referenced = 0;
        foreach (var e in entries.Values.SelectMany(x => x))
            foreach (var img in e.ReferencedImages)
            {
                referenced++;
                if (RealDatasets.ImageProblem(img) is { } why)
                {
                    missing.Add((Path.GetRelativePath(dataRoot, img), e.Pid, why));
                    bad.Add(e);
                }
            }
        if (missing.Count > 0 && options.MissingImages == MissingImagePolicy.Error)
            throw RealDatasets.MissingImagesError(
                "IconQA", dataRoot, missing, referenced, "skip (drop those questions)");

        var splits = entries.ToDictionary(kv => kv.Key,
            kv => (IReadOnlyList<MultimodalSample>)kv.Value.Where(e => !bad.Contains(e)).Select(ToSample).ToList());
        return new LoadedDataset("iconqa", dataRoot, splits, missing.Select(m => m.Path).ToList(), bad.Count, 0);
    }

    static MultimodalSample ToSample(IconQaEntry e)
    {
        var d = e.Data;
        var meta = new Dictionary<string, string>
        {
            ["split"] = e.Split,
            ["task"] = e.Task,
            ["skill"] = d.Label ?? "",
            ["grade"] = d.Grade ?? "",
            ["ques_type"] = d.QuesType ?? "",
            ["has_image"] = "true",
            ["has_context"] = string.IsNullOrEmpty(d.Hint) ? "false" : "true",
            ["source"] = e.DataPath,
        };
        if (!string.IsNullOrEmpty(d.Unit)) meta["unit"] = d.Unit;
        bool free = e.Task == FillInBlank;
        return new MultimodalSample
        {
            Id = e.Pid,
            Question = d.Question!,
            Choices = free ? [] : d.Choices!,
            ChoiceImages = e.Task == ChooseImg
                ? d.Choices!.Select(c => SampleImage.FromFile(Path.Combine(e.Folder, c))).ToList()
                : null,
            AnswerIndex = free ? -1 : d.Answer.GetInt32(),
            AnswerText = free ? AnswerString(d.Answer) : null,
            Context = d.Hint,
            Image = SampleImage.FromFile(e.ImagePath),
            Meta = meta,
        };
    }

    static string AnswerString(JsonElement a) => a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText();

    /// <summary>The <c>iconqa_data</c> folder under or at <paramref name="root"/>.</summary>
    internal static string DataRoot(string root)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new ConfigException($"--data-root {root}: folder not found");
        foreach (var candidate in new[] { Path.Combine(root, "iconqa_data"), root })
            if (File.Exists(Path.Combine(candidate, "pid_splits.json"))
                && Directory.Exists(Path.Combine(candidate, "iconqa")))
                return candidate;
        throw new ConfigException($"{root}: no IconQA release found: --data-root must hold " +
                                  "iconqa_data/pid_splits.json and iconqa_data/iconqa/ (or be iconqa_data itself)");
    }

    /// <summary>Reads pid_splits.json and every listed data.json of the requested splits (no image checks).</summary>
    internal static (string DataRoot, Dictionary<string, List<IconQaEntry>> Splits) Read(
        string root, IReadOnlyList<string>? requested)
    {
        string dataRoot = DataRoot(root);
        string splitsPath = Path.Combine(dataRoot, "pid_splits.json");
        var keys = RealDatasets.ReadJson<Dictionary<string, List<string>>>(splitsPath, "pid_splits.json");
        // keys are {task}_{split}; others (if any) are ignored
        var byKey = keys
            .Select(kv => (Task: Tasks.FirstOrDefault(t => kv.Key.StartsWith(t + "_", StringComparison.Ordinal)),
                kv.Key, kv.Value))
            .Where(x => x.Task is not null)
            .Select(x => (Task: x.Task!, Split: x.Key[(x.Task!.Length + 1)..], Ids: x.Value))
            .ToList();
        var present = byKey.Select(x => x.Split).Distinct().ToList();
        List<string> splits;
        if (requested is null)
        {
            splits = ScienceQa.ScienceQaLoader.StandardSplits.Where(present.Contains).ToList();
            if (splits.Count == 0)
                throw new ConfigException($"{splitsPath}: no {{task}}_{{split}} key for train, val or test " +
                                          $"(keys: {string.Join(", ", keys.Keys)})");
        }
        else
        {
            foreach (var s in requested)
                if (!present.Contains(s))
                    throw new ConfigException($"{splitsPath}: no split '{s}' (splits: {string.Join(", ", present)})");
            splits = requested.ToList();
        }

        RealDatasets.CheckDisjoint(splitsPath,
            splits.Select(split => (split, byKey.Where(x => x.Split == split).SelectMany(x => x.Ids))));
        var result = new Dictionary<string, List<IconQaEntry>>();
        foreach (var split in splits)
        {
            var list = new List<IconQaEntry>();
            foreach (var (task, _, ids) in byKey.Where(x => x.Split == split))
                foreach (var pid in ids)
                {
                    string folder = RealDatasets.Confined(Path.Combine(dataRoot, "iconqa"),
                        Path.Combine(dataRoot, "iconqa", split, task, pid),
                        $"{splitsPath}: split '{task}_{split}', question id '{pid}'");
                    string dataPath = Path.Combine(folder, "data.json");
                    if (!File.Exists(dataPath))
                        throw new ConfigException($"{splitsPath}: split '{task}_{split}' names question id '{pid}', " +
                                                  $"but {dataPath} does not exist");
                    var q = RealDatasets.ReadJson<IconQaQuestion>(dataPath, "data.json");
                    Check(dataPath, pid, task, q);
                    list.Add(new IconQaEntry(pid, task, split, folder, dataPath, q));
                }
            result[split] = list;
        }
        return (dataRoot, result);
    }

    static void Check(string file, string pid, string task, IconQaQuestion q)
    {
        string where = $"{file}: question {pid}";
        if (string.IsNullOrEmpty(q.Question)) throw new ConfigException($"{where}: missing 'question'");
        if (q.QuesType is not null && q.QuesType != task)
            throw new ConfigException($"{where}: ques_type '{q.QuesType}' does not match its task folder '{task}'");
        if (task == FillInBlank)
        {
            if (q.Answer.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
                throw new ConfigException(
                    $"{where}: fill_in_blank 'answer' must be a string (got {q.Answer.ValueKind})");
            return;
        }
        if (q.Choices is null || q.Choices.Count < 2)
            throw new ConfigException($"{where}: 'choices' must list at least 2 options (got {q.Choices?.Count ?? 0})");
        if (q.Choices.Count > 26)
            throw new ConfigException($"{where}: {q.Choices.Count} choices is more than the 26 option letters");
        if (q.Answer.ValueKind != JsonValueKind.Number || !q.Answer.TryGetInt32(out int a))
            throw new ConfigException(
                $"{where}: 'answer' must be the index of the correct choice (got {q.Answer.ValueKind})");
        if (a < 0 || a >= q.Choices.Count)
            throw new ConfigException($"{where}: answer index {a} is out of range for its {q.Choices.Count} choices " +
                                      $"(0..{q.Choices.Count - 1})");
        if (task == ChooseImg)
            foreach (var c in q.Choices)
                if (string.IsNullOrEmpty(c) || c != Path.GetFileName(c))
                    throw new ConfigException(
                        $"{where}: choice '{c}' must be an image file name in the question's folder");
    }
}
