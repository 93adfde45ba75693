using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FedNano.Evaluation;

/// <summary>Per-category accuracy as the ScienceQA and IconQA papers report it, and the prediction files.</summary>
public static class Breakdowns
{
    static readonly string[] Grades1To6 = Enumerable.Range(1, 6).Select(i => $"grade{i}").ToArray();
    static readonly string[] Grades7To12 = Enumerable.Range(7, 6).Select(i => $"grade{i}").ToArray();

    /// <summary>
    /// ScienceQA's official breakdown (<c>get_scores</c> of its evaluation script): NAT, SOC, LAN by subject;
    /// TXT = non-empty hint; IMG = has an image field; NO = neither; G1-6 and G7-12 by grade; Avg over all.
    /// TXT and IMG overlap; the rows are in the paper's order. Reads the samples' <c>subject</c>, <c>grade</c>,
    /// <c>has_context</c> and <c>has_image</c> metadata.
    /// </summary>
    public static IReadOnlyList<CategoryAccuracy> ScienceQa(IReadOnlyCollection<PredictionRecord> records)
    {
        CategoryAccuracy Row(string group, string name, Func<PredictionRecord, bool> member)
        {
            var sel = records.Where(member).ToList();
            return new(group, name, sel.Count, sel.Count(r => r.Correct));
        }
        static string M(PredictionRecord r, string key) => r.Sample.MetaValue(key);
        static bool Txt(PredictionRecord r) => M(r, "has_context") == "true";
        static bool Img(PredictionRecord r) => M(r, "has_image") == "true";
        return
        [
            Row("subject", "NAT", r => M(r, "subject") == "natural science"),
            Row("subject", "SOC", r => M(r, "subject") == "social science"),
            Row("subject", "LAN", r => M(r, "subject") == "language science"),
            Row("context", "TXT", Txt),
            Row("context", "IMG", Img),
            Row("context", "NO", r => !Txt(r) && !Img(r)),
            Row("grade", "G1-6", r => Grades1To6.Contains(M(r, "grade"))),
            Row("grade", "G7-12", r => Grades7To12.Contains(M(r, "grade"))),
            Row("all", "Avg", _ => true),
        ];
    }

    /// <summary>
    /// IconQA's breakdown: accuracy per task (<c>choose_img</c>, <c>choose_txt</c>, <c>fill_in_blank</c>), per skill
    /// (label), and over all.
    /// </summary>
    public static IReadOnlyList<CategoryAccuracy> IconQa(IReadOnlyCollection<PredictionRecord> records)
    {
        var rows = new List<CategoryAccuracy>();
        rows.AddRange(ByField(records, "task", Data.IconQa.IconQaLoader.Tasks));
        rows.AddRange(ByField(records, "skill"));
        rows.Add(new("all", "Avg", records.Count, records.Count(r => r.Correct)));
        return rows;
    }

    /// <summary>
    /// Accuracy by modality, for clients that lack images or context (<c>missing_modality</c>): group
    /// <c>modality</c>, the test predictions of all clients of each kind pooled (<c>full</c>, <c>no images</c>, ...),
    /// then group <c>client</c>, each client's own, named with its kind (<c>0 (no images)</c>). Reads the samples'
    /// <c>modality</c> metadata; <paramref name="clients"/> holds each client's predictions in client order.
    /// </summary>
    public static IReadOnlyList<CategoryAccuracy> ByModality(
        IReadOnlyList<IReadOnlyCollection<PredictionRecord>> clients)
    {
        const string key = Simulation.MissingModalityConfig.MetaKey;
        var rows = ByField(clients.SelectMany(c => c).ToArray(), key, ["full"]).ToList();
        rows.AddRange(clients.Select((c, k) => (c, k)).Where(x => x.c.Count > 0).Select(x =>
            new CategoryAccuracy("client", $"{x.k} ({x.c.First().Sample.MetaValue(key)})", x.c.Count,
                x.c.Count(r => r.Correct))));
        return rows;
    }

    /// <summary>
    /// Accuracy per value of metadata field <paramref name="key"/> (values in <paramref name="order"/> first, then the
    /// rest sorted).
    /// </summary>
    public static IEnumerable<CategoryAccuracy> ByField(
        IReadOnlyCollection<PredictionRecord> records, string key, IReadOnlyList<string>? order = null)
    {
        var groups = records.GroupBy(r => r.Sample.MetaValue(key)).ToDictionary(g => g.Key, g => g.ToList());
        var names = (order ?? []).Concat(
            groups.Keys.Where(k => order is null || !order.Contains(k)).Order(StringComparer.Ordinal));
        foreach (var name in names)
        {
            var g = groups.GetValueOrDefault(name) ?? [];
            yield return new(key, name, g.Count, g.Count(r => r.Correct));
        }
    }

    /// <summary>
    /// Writes the breakdown as CSV (<c>group,category,count,correct,accuracy</c>; accuracy in percent, two decimals,
    /// empty when undefined), atomically.
    /// </summary>
    public static void WriteCsv(string path, IEnumerable<CategoryAccuracy> rows)
    {
        var sb = new StringBuilder("group,category,count,correct,accuracy_pct\n");
        foreach (var r in rows) sb.Append(Line(r));
        WriteAtomically(path, sb.ToString());
    }

    /// <summary>
    /// Writes several methods' breakdowns as one CSV with a leading <c>method</c> column (otherwise as
    /// <see cref="WriteCsv(string, IEnumerable{CategoryAccuracy})"/>), atomically.
    /// </summary>
    public static void WriteCsv(
        string path, IEnumerable<(string Method, IReadOnlyList<CategoryAccuracy> Rows)> byMethod)
    {
        var sb = new StringBuilder("method,group,category,count,correct,accuracy_pct\n");
        foreach (var (method, rows) in byMethod)
            foreach (var r in rows) sb.Append(Csv(method)).Append(',').Append(Line(r));
        WriteAtomically(path, sb.ToString());
    }

    static string Line(CategoryAccuracy r) =>
        $"{Csv(r.Group)},{Csv(r.Category)},{r.Count.ToString(CultureInfo.InvariantCulture)},"
        + $"{r.Correct.ToString(CultureInfo.InvariantCulture)},"
        + $"{(double.IsNaN(r.Accuracy) ? "" : r.Accuracy.ToString("F2", CultureInfo.InvariantCulture))}\n";

    static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// Writes predictions in ScienceQA's result format <c>{"results": {pid: index}}</c> (the predicted option index,
    /// -1 when unparsable; free answers are written as their text), atomically.
    /// </summary>
    public static void WriteResultsJson(string path, IEnumerable<PredictionRecord> records)
    {
        var results = new JsonObject();
        foreach (var r in records)
            results[r.Sample.Id] = r.Sample.IsMultipleChoice
                ? JsonValue.Create(r.PredictedIndex)
                : JsonValue.Create(r.PredictedText ?? "");
        var doc = new JsonObject { ["results"] = results };
        WriteAtomically(path, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static void WriteAtomically(string path, string content)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".fednano-tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, full, overwrite: true);
    }
}
