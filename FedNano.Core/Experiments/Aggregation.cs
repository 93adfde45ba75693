using System.Globalization;
using CsvHelper;
using FedNano.Simulation;
using MathNet.Numerics.Statistics;

namespace FedNano.Experiments;

/// <summary>
/// A row of <c>aggregate.csv</c>: a method's final test accuracy on a client (or the clients' mean) over seeds.
/// </summary>
[CsvRecord]
public sealed partial record AggregateRow
{
    /// <summary>Dirichlet concentration.</summary>
    [CsvColumn("alpha")] public required double Alpha { get; init; }
    /// <summary>Number of clients.</summary>
    [CsvColumn("clients")] public required int Clients { get; init; }
    /// <summary>Method.</summary>
    [CsvColumn("method")] public required string Method { get; init; }
    /// <summary>Client index, or <c>mean</c> for the mean over clients.</summary>
    [CsvColumn("client")] public required string Client { get; init; }
    /// <summary>Seeds behind the numbers.</summary>
    [CsvColumn("seeds")] public required int Seeds { get; init; }
    /// <summary>Mean over seeds of the final test accuracy, in percent.</summary>
    [CsvColumn("accuracy_mean_pct")] public required double AccuracyMean { get; init; }
    /// <summary>Sample standard deviation over seeds in percentage points (empty for a single seed).</summary>
    [CsvColumn("accuracy_std_pct")] public required double? AccuracyStd { get; init; }
    /// <summary>Adapter parameters one client uploads per round.</summary>
    [CsvColumn("uploaded_params_per_round")] public required long UploadedPerRound { get; init; }
}

/// <summary>Means and standard deviations over seeds of the runs of a sweep.</summary>
public static class Aggregation
{
    /// <summary>
    /// Methods in report order: zero-shot, then <see cref="MethodCatalog.All"/>'s order, then any other by name.
    /// </summary>
    public static IEnumerable<string> Order(IEnumerable<string> methods)
    {
        string[] order = [MethodCatalog.ZeroShot, .. MethodCatalog.All];
        return methods.Distinct().OrderBy(m => Array.IndexOf(order, m) is var i && i >= 0 ? i : int.MaxValue)
            .ThenBy(m => m, StringComparer.Ordinal);
    }

    /// <summary>
    /// One row per (alpha, clients, method, client or mean) over the seeds of <paramref name="runs"/>. A method's
    /// result for a seed is taken once even if several runs hold it (zero-shot is in every cell).
    /// </summary>
    public static IEnumerable<AggregateRow> Rows(IEnumerable<RunResults> runs)
    {
        var perSeed = runs
            .SelectMany(r => r.Summary.Select(s => (r.Config.Alpha, r.Config.Clients, r.Config.Seed, Row: s)))
            .GroupBy(x => (x.Alpha, x.Clients, x.Row.Method, x.Seed, x.Row.Client)).Select(g => g.First());
        var methods = Order(perSeed.Select(x => x.Row.Method)).ToList();
        return perSeed.GroupBy(x => (x.Alpha, x.Clients, x.Row.Method, x.Row.Client))
            .OrderBy(g => g.Key.Clients).ThenBy(g => g.Key.Alpha).ThenBy(g => methods.IndexOf(g.Key.Method))
            .ThenBy(g => g.Key.Client == "mean" ? int.MaxValue : int.Parse(g.Key.Client, CultureInfo.InvariantCulture))
            .Select(g =>
            {
                var acc = g.Select(x => x.Row.Accuracy).ToArray();
                return new AggregateRow
                {
                    Alpha = g.Key.Alpha, Clients = g.Key.Clients, Method = g.Key.Method, Client = g.Key.Client,
                    Seeds = acc.Length,
                    AccuracyMean = Math.Round(acc.Mean(), 4),
                    AccuracyStd = acc.Length < 2 ? null : Math.Round(acc.StandardDeviation(), 4),
                    UploadedPerRound = g.Max(x => x.Row.UploadedPerRound),
                };
            }).ToArray();
    }
}
