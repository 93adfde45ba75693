using System.Globalization;
using System.Text;
using FedNano.Data.IconQa;
using FedNano.Data.ScienceQa;

namespace FedNano.Data;

/// <summary>What <c>fednano data inspect</c> reports about a real data set on disk.</summary>
/// <param name="Dataset">Data set name.</param>
/// <param name="Root">The folder read.</param>
/// <param name="Total">Problems (ScienceQA: in problems.json) or questions (IconQA: in the standard splits).</param>
/// <param name="Splits">Problems or questions per split key.</param>
/// <param name="GroupField">What <paramref name="Groups"/> counts by (<c>subject</c> or <c>task</c>).</param>
/// <param name="Groups">Problems per subject (ScienceQA) or questions per task (IconQA).</param>
/// <param name="WithImage">Problems with an image field (ScienceQA) or with a question image (IconQA).</param>
/// <param name="ImagesReferenced">Image files the data refers to (IconQA: question plus choice images).</param>
/// <param name="ImagesFound">Of those, present and readable.</param>
/// <param name="MissingImages">Missing or unreadable image paths, relative to <paramref name="Root"/>.</param>
/// <param name="ChoiceCounts">Number of questions per number of choices (0 = free answer).</param>
public sealed record DatasetReport(
    string Dataset,
    string Root,
    int Total,
    IReadOnlyList<KeyValuePair<string, int>> Splits,
    string GroupField,
    IReadOnlyList<KeyValuePair<string, int>> Groups,
    int WithImage,
    int ImagesReferenced,
    int ImagesFound,
    IReadOnlyList<string> MissingImages,
    IReadOnlyList<KeyValuePair<int, int>> ChoiceCounts)
{
    /// <summary>The report as lines of plain text.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine(ci, $"dataset: {Dataset}");
        sb.AppendLine(ci, $"root: {Root}");
        sb.AppendLine(ci, $"{(Dataset == "scienceqa" ? "problems" : "questions")}: {Total}");
        sb.AppendLine("splits: " + string.Join(", ", Splits.Select(kv => $"{kv.Key} {kv.Value}")));
        sb.AppendLine($"per {GroupField}: " + string.Join(", ", Groups.Select(kv => $"{kv.Key} {kv.Value}")));
        sb.AppendLine(ci, $"with an image: {WithImage}");
        sb.AppendLine(ci, $"image files referenced: {ImagesReferenced}, found: {ImagesFound}, " +
            $"missing or unreadable: {MissingImages.Count}");
        if (MissingImages.Count > 0)
            sb.AppendLine("first missing: " + string.Join(", ", MissingImages.Take(3))
                + (MissingImages.Count > 3 ? ", ..." : ""));
        sb.AppendLine("choices per question: " + string.Join(", ", ChoiceCounts.Select(kv => $"{kv.Key}: {kv.Value}")));
        return sb.ToString();
    }
}

/// <summary>Reads a real data set's files and counts what is there, without failing on missing images.</summary>
public static class DatasetInspector
{
    /// <summary>
    /// The report for <paramref name="dataset"/> (<c>scienceqa</c> or <c>iconqa</c>) at <paramref name="root"/>.
    /// </summary>
    public static DatasetReport Inspect(string dataset, string root) => dataset.ToLowerInvariant() switch
    {
        "scienceqa" => ScienceQa(root),
        "iconqa" => IconQa(root),
        _ => throw new ConfigException($"--dataset '{dataset}' is not one of scienceqa, iconqa"),
    };

    static DatasetReport ScienceQa(string root)
    {
        var src = ScienceQaLoader.Read(root);
        var splitOf = new Dictionary<string, string>();
        foreach (var (key, ids) in src.PidSplits) foreach (var id in ids) splitOf.TryAdd(id, key);
        var missing = new List<string>();
        int referenced = 0;
        foreach (var (pid, p) in src.Problems.Where(kv => kv.Value.HasImage))
        {
            referenced++;
            string path = src.ImagePath(pid, p, splitOf.GetValueOrDefault(pid, "train"));
            if (RealDatasets.ImageProblem(path) is not null) missing.Add(Path.GetRelativePath(src.Root, path));
        }
        var problems = src.Problems.Values.ToList();
        return new DatasetReport("scienceqa", src.Root, problems.Count,
            src.PidSplits.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.Count)).ToList(),
            "subject", Count(problems.Select(p => p.Subject ?? "")),
            problems.Count(p => p.HasImage), referenced, referenced - missing.Count, missing,
            Histogram(problems.Select(p => p.Choices!.Count)));
    }

    static DatasetReport IconQa(string root)
    {
        var (dataRoot, splits) = IconQaLoader.Read(root, null);
        var all = splits.Values.SelectMany(x => x).ToList();
        var missing = new List<string>();
        int referenced = 0;
        foreach (var img in all.SelectMany(e => e.ReferencedImages))
        {
            referenced++;
            if (RealDatasets.ImageProblem(img) is not null) missing.Add(Path.GetRelativePath(dataRoot, img));
        }
        var taskCounts = IconQaLoader.Tasks.Select(t => KeyValuePair.Create(t, all.Count(e => e.Task == t))).ToList();
        return new DatasetReport("iconqa", dataRoot, all.Count,
            splits.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.Count)).ToList(),
            "task", taskCounts,
            all.Count, referenced, referenced - missing.Count, missing,
            Histogram(all.Select(e => e.Task == IconQaLoader.FillInBlank ? 0 : e.Data.Choices!.Count)));
    }

    static List<KeyValuePair<string, int>> Count(IEnumerable<string> values) =>
        values.GroupBy(v => v).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, g.Count())).ToList();

    static List<KeyValuePair<int, int>> Histogram(IEnumerable<int> values) =>
        values.GroupBy(v => v).OrderBy(g => g.Key).Select(g => KeyValuePair.Create(g.Key, g.Count())).ToList();
}
