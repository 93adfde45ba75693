using System.Globalization;
using System.Text;
using FedNano.Experiments;
using MathNet.Numerics.Statistics;

namespace FedNano.Reports;

/// <summary>Mean and sample standard deviation over seeds (std null for a single seed).</summary>
/// <param name="Mean">Mean.</param>
/// <param name="Std">Sample standard deviation, or null for one value.</param>
/// <param name="N">Number of values.</param>
public readonly record struct OverSeeds(double Mean, double? Std, int N)
{
    /// <summary>Mean and std of <paramref name="values"/>.</summary>
    public static OverSeeds Of(IReadOnlyList<double> values) =>
        new(values.Mean(), values.Count < 2 ? null : values.StandardDeviation(), values.Count);
}

/// <summary>A row of a data set's breakdown in a report: one category, over seeds.</summary>
/// <param name="Group">The breakdown it belongs to (e.g. <c>subject</c>, <c>task</c>, <c>all</c>).</param>
/// <param name="Category">The category (e.g. <c>NAT</c>, <c>choose_img</c>, <c>Avg</c>).</param>
/// <param name="Count">Test questions in it, mean over seeds.</param>
/// <param name="ByMethod">Each method's accuracy (%) over seeds.</param>
public sealed record BreakdownRow(string Group, string Category, int Count,
    IReadOnlyDictionary<string, OverSeeds> ByMethod);

/// <summary>
/// The tables and plots of finished runs (a sweep folder's cells, or one run folder): Markdown tables shaped like the
/// paper's (methods x clients with the average, per client count and alpha; methods x alpha; methods x client count)
/// and PNG plots (mean accuracy against round from round 0, final accuracy against alpha, per-client accuracy, what a
/// client uploads per round, parameters and Fisher values apart), each titled with the data set and backbone, and the
/// data set's breakdown (ScienceQA categories, IconQA tasks and skills), and for runs with <c>dp</c> accuracy against
/// epsilon. Accuracies are in percent, mean ± sample std
/// over seeds; clients are numbered from 0.
/// </summary>
public sealed class SweepReport
{
    private readonly IReadOnlyList<RunResults> runs;
    private readonly AggregateRow[] aggregate;

    /// <summary>A report of <paramref name="runs"/>.</summary>
    public SweepReport(IReadOnlyList<RunResults> runs)
    {
        if (runs.Count == 0) throw new ConfigException("no finished runs to report on");
        this.runs = runs;
        aggregate = Aggregation.Rows(runs).ToArray();
        Methods = Aggregation.Order(aggregate.Select(a => a.Method)).ToArray();
        ClientCounts = aggregate.Select(a => a.Clients).Distinct().Order().ToArray();
        Alphas = aggregate.Select(a => a.Alpha).Distinct().Order().ToArray();
    }

    /// <summary>
    /// What every plot title names: the data set and the backbone, e.g. <c>synthetic, tiny backbone</c>.
    /// </summary>
    public string Setting => $"{runs[0].Config.Dataset}, {runs[0].Config.Backbone} backbone";

    /// <summary>Methods, in report order.</summary>
    public IReadOnlyList<string> Methods { get; }
    /// <summary>Client counts present.</summary>
    public IReadOnlyList<int> ClientCounts { get; }
    /// <summary>Alphas present.</summary>
    public IReadOnlyList<double> Alphas { get; }

    /// <summary>The finished runs of a sweep folder (<c>sweep-config.json</c>) or a run folder; unfinished cells are
    /// counted in <paramref name="unfinished"/>.</summary>
    public static SweepReport Load(string dir, out int unfinished)
    {
        unfinished = 0;
        if (File.Exists(Path.Combine(dir, Sweep.ConfigFile)))
        {
            string cells = Path.Combine(dir, Sweep.CellsFolder);
            unfinished = Directory.Exists(cells)
                ? Directory.GetDirectories(cells).Count(d => !RunFolder.IsFinished(d))
                : 0;
            var finished = Sweep.LoadFinished(dir);
            if (finished.Count == 0)
                throw new ConfigException($"{dir}: the sweep has no finished cell yet; run 'fednano sweep' first");
            return new SweepReport(finished);
        }
        if (File.Exists(Path.Combine(dir, RunFolder.ConfigFile))) return new SweepReport([RunResults.Load(dir)]);
        throw new ConfigException($"{dir} is neither a sweep folder ({Sweep.ConfigFile}) " +
                                  $"nor a run folder ({RunFolder.ConfigFile})");
    }

    /// <summary>Final accuracy (%) of a method on a client (<c>mean</c>: the clients' mean) over seeds, or null if not
    /// run.</summary>
    public OverSeeds? Final(int clients, double alpha, string method, string client) =>
        aggregate.FirstOrDefault(a => a.Clients == clients && a.Alpha == alpha && a.Method == method
                                      && a.Client == client) is { } a
            ? new OverSeeds(a.AccuracyMean, a.AccuracyStd, a.Seeds) : null;

    /// <summary>Mean client accuracy (%) after each round (round 0: zero-shot) of a method, over seeds.</summary>
    public IReadOnlyList<(int Round, OverSeeds Accuracy)> Curve(int clients, double alpha, string method) =>
        Runs(clients, alpha, method)
            .SelectMany(r => r.Rounds.Where(x => x.Method == method).GroupBy(x => x.Round)
                .Select(g => (Round: g.Key, Mean: g.Average(x => x.Accuracy))))
            .GroupBy(x => x.Round).OrderBy(g => g.Key)
            .Select(g => (g.Key, OverSeeds.Of(g.Select(x => x.Mean).ToArray()))).ToArray();

    /// <summary>
    /// For runs with <c>dp</c>: after each round of a method, the largest epsilon any client has spent (rounds.csv's
    /// <c>epsilon</c>) and the mean client accuracy (%), each over seeds; empty without <c>dp</c>.
    /// </summary>
    public IReadOnlyList<(int Round, OverSeeds Epsilon, OverSeeds Accuracy)> PrivacyCurve(int clients, double alpha,
        string method) =>
        Runs(clients, alpha, method)
            .SelectMany(r => r.Rounds.Where(x => x.Method == method && x.Epsilon is not null).GroupBy(x => x.Round)
                .Select(g => (Round: g.Key, Epsilon: g.Max(x => x.Epsilon!.Value),
                    Accuracy: g.Select(x => x.Accuracy).Where(a => !double.IsNaN(a)).DefaultIfEmpty(double.NaN)
                        .Average())))
            .GroupBy(x => x.Round).OrderBy(g => g.Key)
            .Select(g => (g.Key, OverSeeds.Of(g.Select(x => x.Epsilon).ToArray()),
                OverSeeds.Of(g.Select(x => x.Accuracy).ToArray()))).ToArray();

    /// <summary>
    /// Values one client uploads in a round (mean over the client-rounds in which it uploaded anything, over the runs
    /// of <paramref name="method"/>): model parameters and Fisher values apart, with their bytes; null if it never
    /// uploads.
    /// </summary>
    public (double Parameters, double Fisher, double Bytes)? UploadPerRound(string method)
    {
        var rows = runs.Where(r => r.Summary.Any(s => s.Method == method))
            .GroupBy(r => (r.Config.Alpha, r.Config.Clients, r.Config.Seed)).SelectMany(g => g.First().Rounds)
            .Where(x => x.Method == method && x.UploadedParams + x.UploadedFisher > 0).ToArray();
        if (rows.Length == 0) return null;
        return (rows.Average(x => (double)x.UploadedParams), rows.Average(x => (double)x.UploadedFisher),
            rows.Average(x => (double)x.UploadedBytes));
    }

    /// <summary>
    /// The data set's breakdown (ScienceQA's categories, IconQA's tasks: <c>breakdown.csv</c> of each run, without its
    /// many per-skill rows) for <paramref name="clients"/> and <paramref name="alpha"/>, one row per (group, category)
    /// in the file's order; empty for data sets without one.
    /// </summary>
    public IReadOnlyList<BreakdownRow> Breakdown(int clients, double alpha)
    {
        var cells = runs.Where(r => r.Config.Clients == clients && r.Config.Alpha == alpha)
            .SelectMany(r => ReadBreakdown(r.Directory).Where(b => b.Group != "skill")
                .Select(b => (r.Config.Seed, b.Method, b.Group, b.Category, b.Count, b.Accuracy)))
            // zero-shot is in every cell of a seed: taken once
            .GroupBy(x => (x.Seed, x.Method, x.Group, x.Category)).Select(g => g.First())
            .ToArray();
        return cells.Select(x => (x.Group, x.Category)).Distinct().Select(key =>
        {
            var of = cells.Where(x => (x.Group, x.Category) == key).ToArray();
            var byMethod = of.Where(x => !double.IsNaN(x.Accuracy)).GroupBy(x => x.Method)
                .ToDictionary(g => g.Key, g => OverSeeds.Of(g.Select(x => x.Accuracy).ToArray()));
            int count = (int)Math.Round(of.GroupBy(x => x.Seed).Average(g => g.First().Count));
            return new BreakdownRow(key.Group, key.Category, count, byMethod);
        }).ToArray();
    }

    private static IEnumerable<(string Method, string Group, string Category, int Count, double Accuracy)>
        ReadBreakdown(string dir)
    {
        string path = Path.Combine(dir, RunFolder.BreakdownFile);
        if (!File.Exists(path)) yield break;
        var options = new CsvHelper.CsvReaderOptions { FormatProvider = CultureInfo.InvariantCulture };
        using var csv = CsvHelper.CsvReader.FromFile(path, options);
        while (csv.Read())
        {
            // percent in both the current column and the older one
            string accuracy = csv.GetString(csv.TryGetFieldIndex("accuracy_pct", out int i) ? i
                : csv.GetFieldIndex("accuracy"));
            yield return (csv.GetString("method"), csv.GetString("group"), csv.GetString("category"),
                csv.Parse<int>("count"),
                accuracy.Length == 0 ? double.NaN : double.Parse(accuracy, CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Bytes all clients of a run uploaded in all its rounds (parameters and Fisher values, <c>uploaded_bytes</c> of
    /// <c>rounds.csv</c>), over the runs of a method with <paramref name="clients"/> clients.
    /// </summary>
    public OverSeeds? UploadedBytes(int clients, string method)
    {
        var totals = ClientRuns(clients, method)
            .Select(r => (double)r.Rounds.Where(x => x.Method == method).Sum(x => x.UploadedBytes)).ToArray();
        return totals.Length == 0 ? null : OverSeeds.Of(totals);
    }

    private IEnumerable<RunResults> ClientRuns(int clients, string method) =>
        runs.Where(r => r.Config.Clients == clients && r.Summary.Any(s => s.Method == method))
            .GroupBy(r => (r.Config.Alpha, r.Config.Seed)).Select(g => g.First());

    private IEnumerable<RunResults> Runs(int clients, double alpha, string method) =>
        ClientRuns(clients, method).Where(r => r.Config.Alpha == alpha);

    /// <summary>Writes <c>report.md</c> and <c>plots/*.png</c> into <paramref name="outDir"/>; returns the files
    /// written.</summary>
    public IReadOnlyList<string> Write(string outDir, string source, int unfinished = 0)
    {
        Directory.CreateDirectory(outDir);
        var plots = new ReportPlots(this, Path.Combine(outDir, "plots"));
        var files = new List<string>();
        var md = new StringBuilder();
        var first = runs[0].Config;
        md.AppendLine($"# FedNano.Sim report: {source}").AppendLine();
        md.AppendLine($"Dataset `{first.Dataset}`, backbone `{first.Backbone}`, "
            + $"{Words.Count(first.Rounds, "round")} of {Words.Count(first.LocalEpochs, "local epoch")}, "
            + $"NanoAdapter rank {first.Adapter.Rank}, client fraction {F(first.ClientFraction)}. "
            + $"{Words.Count(runs.Count, "finished run")}"
            + (unfinished > 0 ? $"; {Words.Count(unfinished, "unfinished cell")} left out." : ".")).AppendLine();
        md.AppendLine("Accuracy: final test accuracy (%) of each client's model on its own test part, mean ± sample "
            + "standard deviation over seeds (n = seeds). "
            + "Clients are numbered from 0, as in the CSV files.").AppendLine();

        foreach (int k in ClientCounts)
            foreach (double a in Alphas)
            {
                if (!Methods.Any(m => Final(k, a, m, "mean") is not null)) continue;
                md.AppendLine($"## {k} clients, α = {F(a)}: accuracy per client").AppendLine();
                md.AppendLine("| Method | " + string.Join(" | ", Enumerable.Range(0, k).Select(c => $"Client {c}"))
                    + " | **Avg** | n |");
                md.AppendLine("|---" + string.Concat(Enumerable.Repeat("|---:", k + 2)) + "|");
                foreach (var m in Methods.Where(m => Final(k, a, m, "mean") is not null))
                    md.AppendLine($"| {m} | " + string.Join(" | ", Enumerable.Range(0, k)
                            .Select(c => Cell(Final(k, a, m, c.ToString(CultureInfo.InvariantCulture)))))
                        + $" | **{Cell(Final(k, a, m, "mean"))}** | {Final(k, a, m, "mean")!.Value.N} |");
                md.AppendLine();
                files.Add(plots.AccuracyVsRound(k, a, out string curve));
                files.Add(plots.ClientBars(k, a, out string bars));
                md.AppendLine($"![mean accuracy against round]({curve}) ![accuracy per client]({bars})").AppendLine();
                AppendBreakdown(md, k, a);
            }

        foreach (int k in ClientCounts)
        {
            md.AppendLine($"## {k} clients: mean accuracy against α").AppendLine();
            md.AppendLine("| Method | " + string.Join(" | ", Alphas.Select(a => $"α = {F(a)}")) + " |");
            md.AppendLine("|---" + string.Concat(Enumerable.Repeat("|---:", Alphas.Count)) + "|");
            foreach (var m in Methods)
                md.AppendLine($"| {m} | "
                    + string.Join(" | ", Alphas.Select(a => Cell(Final(k, a, m, "mean")))) + " |");
            md.AppendLine();
            if (Alphas.Count > 1)
            {
                files.Add(plots.AccuracyVsAlpha(k, out string path));
                md.AppendLine($"![final accuracy against alpha]({path})").AppendLine();
            }
        }

        if (ClientCounts.Count > 1)
            foreach (double a in Alphas)
            {
                md.AppendLine($"## α = {F(a)}: mean accuracy against the number of clients").AppendLine();
                md.AppendLine("| Method | " + string.Join(" | ", ClientCounts.Select(k => $"{k} clients")) + " |");
                md.AppendLine("|---" + string.Concat(Enumerable.Repeat("|---:", ClientCounts.Count)) + "|");
                foreach (var m in Methods)
                    md.AppendLine($"| {m} | "
                        + string.Join(" | ", ClientCounts.Select(k => Cell(Final(k, a, m, "mean")))) + " |");
                md.AppendLine();
            }

        AppendPrivacy(md, plots, files);

        md.AppendLine("## Communication").AppendLine();
        md.AppendLine("Uploaded by one client in a round it takes part in: model parameters and Fisher values apart, "
            + "and their bytes; and bytes all clients send over a whole run (rounds.csv's uploaded_bytes; runs without "
            + $"that column count {RunResults.LegacyBytesPerParameter} bytes per parameter). Methods that upload "
            + "nothing (zero-shot, centralized, local) are left out of the plot.").AppendLine();
        md.AppendLine("| Method | Clients | Parameters per client per round | Fisher values per client per round "
            + "| Bytes per client per round | Bytes per run (all clients) |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        var inv = CultureInfo.InvariantCulture;
        foreach (var m in Methods)
            foreach (int k in ClientCounts)
                if (UploadedBytes(k, m) is { } b)
                    md.AppendLine(UploadPerRound(m) is { } u
                        ? $"| {m} | {k} | {u.Parameters.ToString("N0", inv)} | {u.Fisher.ToString("N0", inv)} "
                            + $"| {Bytes(u.Bytes)} | {Bytes(b.Mean)} |"
                        : $"| {m} | {k} | 0 | 0 | 0 B | {Bytes(b.Mean)} |");
        md.AppendLine();
        if (plots.UploadsPerRound(out string upPath) is { } up)
        {
            files.Add(up);
            md.AppendLine($"![uploads per client and round]({upPath})").AppendLine();
        }

        string report = Path.Combine(outDir, "report.md");
        RunFolder.WriteAtomic(report, md.ToString());
        files.Insert(0, report);
        return files;
    }

    /// <summary>Accuracy against epsilon (<see cref="PrivacyCurve"/>), for runs with <c>dp</c>.</summary>
    private void AppendPrivacy(StringBuilder md, ReportPlots plots, List<string> files)
    {
        if (runs.FirstOrDefault(r => r.Config.Dp is not null)?.Config.Dp is not { } dp) return;
        md.AppendLine("## Privacy: accuracy against ε").AppendLine();
        md.AppendLine($"DP-SGD with noise multiplier σ = {F(dp.NoiseMultiplier)}, per-sample clip norm C = "
            + $"{F(dp.MaxGradNorm)}, Fisher upload σ = {F(dp.FisherSigma)}; ε at δ = {F(dp.Delta)}: "
            + "after each round, "
            + "the largest ε any client has spent (rounds.csv's epsilon) and the mean client accuracy (%), "
            + "mean ± std over seeds.").AppendLine();
        md.AppendLine("| Method | Clients | α | Round | ε (largest client) | Accuracy (%) |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var m in Methods)
            foreach (int k in ClientCounts)
                foreach (double a in Alphas)
                    foreach (var (round, eps, acc) in PrivacyCurve(k, a, m))
                        md.AppendLine($"| {m} | {k} | {F(a)} | {round} | {Cell(eps, "F2")} | {Cell(acc)} |");
        md.AppendLine();
        foreach (int k in ClientCounts)
            foreach (double a in Alphas)
                if (plots.AccuracyVsEpsilon(k, a, out string path) is { } file)
                {
                    files.Add(file);
                    md.AppendLine($"![mean accuracy against epsilon]({path})").AppendLine();
                }
    }

    /// <summary>The breakdown table of <see cref="Breakdown"/>, if the data set has one.</summary>
    private void AppendBreakdown(StringBuilder md, int clients, double alpha)
    {
        var rows = Breakdown(clients, alpha);
        if (rows.Count == 0) return;
        var methods = Methods.Where(m => rows.Any(r => r.ByMethod.ContainsKey(m))).ToArray();
        md.AppendLine($"### {clients} clients, α = {F(alpha)}: accuracy per category ({runs[0].Config.Dataset})")
            .AppendLine();
        md.AppendLine("All clients' final test predictions pooled, per category of the data set (breakdown.csv, which "
            + "also has IconQA's per-skill rows); "
            + "n: test questions, mean over seeds.").AppendLine();
        md.AppendLine("| Group | Category | n | " + string.Join(" | ", methods) + " |");
        md.AppendLine("|---|---|---:" + string.Concat(Enumerable.Repeat("|---:", methods.Length)) + "|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Group} | {r.Category} | {r.Count} | "
                + string.Join(" | ", methods.Select(m => Cell(r.ByMethod.TryGetValue(m, out var v) ? v : null)))
                + " |");
        md.AppendLine();
    }

    internal static string F(double x) => x.ToString("G", CultureInfo.InvariantCulture);

    private static string Cell(OverSeeds? s, string format = "F1")
    {
        string N(double x) => x.ToString(format, CultureInfo.InvariantCulture);
        return s is not { } v ? "–" : v.Std is { } sd ? $"{N(v.Mean)} ± {N(sd)}" : N(v.Mean);
    }

    /// <summary>Bytes with a decimal unit (B, kB, MB, GB, TB).</summary>
    public static string Bytes(double b)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        int u = 0;
        while (b >= 999.5 && u < units.Length - 1) { b /= 1000; u++; }
        return $"{b.ToString(u == 0 ? "F0" : "G3", CultureInfo.InvariantCulture)} {units[u]}";
    }
}
