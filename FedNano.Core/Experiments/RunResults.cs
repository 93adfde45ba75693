using System.Globalization;
using CsvHelper;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>The results a finished run folder holds, read back from its files (columns by header name, so files with
/// more columns read too).</summary>
/// <param name="Directory">The run folder.</param>
/// <param name="Config">Its config.</param>
/// <param name="Summary">Its <c>summary.csv</c>.</param>
/// <param name="Rounds">Its <c>rounds.csv</c>.</param>
public sealed record RunResults(string Directory, SimulationConfig Config, IReadOnlyList<SummaryRow> Summary,
    IReadOnlyList<RoundRow> Rounds)
{
    /// <summary>
    /// Reads a finished run folder; throws <see cref="ConfigException"/> if it is not one, and
    /// <see cref="CheckpointException"/> if its CSV files lack rows its config implies (see <see cref="Incomplete"/>).
    /// </summary>
    public static RunResults Load(string dir)
    {
        if (RunFolder.ReadInfo(dir)?.Status != "finished")
            throw new ConfigException($"{dir} does not hold a finished run (run.json status 'finished')");
        var results = Read(dir);
        if (results.Incomplete() is { } why)
            throw new CheckpointException($"{dir}: {why}; the files are cut short: " +
                                          $"rewrite them with fednano run --resume {dir}");
        return results;
    }

    /// <summary>Whether the folder's result files can be read and hold every row its config implies.</summary>
    internal static bool IsComplete(string dir)
    {
        try { return Read(dir).Incomplete() is null; }
        catch (Exception e) when (e is FedNanoException or IOException) { return false; }
    }

    /// <summary>
    /// Null when <c>summary.csv</c> holds a row per method (zero-shot first) and client plus the mean, and
    /// <c>rounds.csv</c> a row per method, round (0 for zero-shot) and client, as the config implies; else what is
    /// missing.
    /// </summary>
    internal string? Incomplete()
    {
        string[] methods = [MethodCatalog.ZeroShot, .. MethodCatalog.Expand(Config.Methods)];
        var clients = Enumerable.Range(0, Config.Clients).ToArray();
        var summary = methods
            .SelectMany(m => clients.Select(k => (m, k.ToString(CultureInfo.InvariantCulture))).Append((m, "mean")))
            .ToArray();
        if (!Summary.Select(r => (r.Method, r.Client)).SequenceEqual(summary))
            return $"{RunFolder.SummaryFile} holds {Summary.Count} rows where its config implies {summary.Length} " +
                   $"({methods.Length} methods x ({Config.Clients} clients + mean))";
        var rounds = methods.SelectMany(m => (m == MethodCatalog.ZeroShot ? [0] : Enumerable.Range(1, Config.Rounds))
                .SelectMany(r => clients.Select(k => (m, r, k))))
            .Order().ToArray();
        if (!Rounds.Select(r => (r.Method, r.Round, r.Client)).Order().SequenceEqual(rounds))
            return $"{RunFolder.RoundsFile} holds {Rounds.Count} rows where its config implies {rounds.Length} " +
                   $"(a row per method, round and client)";
        return null;
    }

    private static RunResults Read(string dir)
    {
        foreach (var f in new[] { RunFolder.SummaryFile, RunFolder.RoundsFile })
            if (!File.Exists(Path.Combine(dir, f))) throw new CheckpointException($"{dir}: {f} is missing; " +
                $"rewrite it with fednano run --resume {dir}");
        return new RunResults(dir, RunFolder.LoadConfig(dir),
            Read(Path.Combine(dir, RunFolder.SummaryFile), c => new SummaryRow
            {
                Method = c.GetString("method"), Client = c.GetString("client"), Accuracy = AccuracyPct(c),
                TestSamples = c.Parse<int>("test_samples"),
                UploadedPerRound = c.Parse<long>("uploaded_params_per_round"),
                FisherPerRound = Optional(c, "uploaded_fisher_per_round") ?? 0,
                ClientResident = Optional(c, "client_resident_params"),
                ModelParams = Optional(c, "model_params") ?? 0,
            }),
            Read(Path.Combine(dir, RunFolder.RoundsFile), c =>
            {
                long up = c.Parse<long>("uploaded_params");
                return new RoundRow
                {
                    Method = c.GetString("method"), Round = c.Parse<int>("round"), Client = c.Parse<int>("client"),
                    Accuracy = AccuracyPct(c), Loss = c.Parse<double>("loss"),
                    TrainLoss = c.GetStringOrNull("train_loss") is { Length: > 0 } t
                        ? double.Parse(t, CultureInfo.InvariantCulture) : null,
                    UploadedParams = up, UploadedFisher = Optional(c, "uploaded_fisher") ?? 0,
                    // runs written before the traffic ledger have no uploaded_bytes: float32 adapters, 4 bytes a
                    // parameter
                    UploadedBytes = Optional(c, "uploaded_bytes") ?? up * LegacyBytesPerParameter,
                    DownloadedParams = Optional(c, "downloaded_params") ?? 0,
                    DownloadedBytes = Optional(c, "downloaded_bytes") ?? 0,
                    SplitBytesTrain = Optional(c, "split_bytes_train") ?? 0,
                    SplitBytesEval = Optional(c, "split_bytes_eval") ?? 0,
                    ClientResidentParams = Optional(c, "client_resident_params"),
                    NonFinite = (int)(Optional(c, "nonfinite") ?? 0),
                    Epsilon = c.TryGetFieldIndex("epsilon", out int e) && c.GetStringOrNull(e) is { Length: > 0 } eps
                        ? double.Parse(eps, CultureInfo.InvariantCulture) : null,
                };
            }));
    }

    /// <summary>Bytes of one uploaded parameter in runs made before <c>rounds.csv</c> had <c>uploaded_bytes</c>
    /// (float32 adapters).</summary>
    public const int LegacyBytesPerParameter = 4;

    /// <summary>
    /// Accuracy in percent: <c>accuracy_pct</c>, or the fraction <c>accuracy</c> of files written before.
    /// </summary>
    private static double AccuracyPct(CsvReader c) =>
        c.TryGetFieldIndex("accuracy_pct", out int i) ? c.Parse<double>(i) : 100 * c.Parse<double>("accuracy");

    /// <summary>A whole-number column that older files may lack or leave empty.</summary>
    private static long? Optional(CsvReader c, string column) =>
        c.TryGetFieldIndex(column, out int i) && c.GetStringOrNull(i) is { Length: > 0 } t
            ? long.Parse(t, CultureInfo.InvariantCulture) : null;

    private static List<T> Read<T>(string path, Func<CsvReader, T> row)
    {
        var rows = new List<T>();
        try
        {
            using var csv = CsvReader.FromFile(path,
                new CsvReaderOptions { FormatProvider = CultureInfo.InvariantCulture });
            while (csv.Read()) rows.Add(row(csv));
        }
        catch (Exception e) when (e is not ConfigException and not IOException)
        {
            throw new CheckpointException($"{path}: cannot be read as this version's results " +
                                          $"({e.Message.ReplaceLineEndings(" ")}); if it was cut short, " +
                                          $"rewrite it with fednano run --resume {Path.GetDirectoryName(path)}");
        }
        return rows;
    }
}
