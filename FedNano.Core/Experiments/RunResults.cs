using System.Globalization;
using CsvHelper;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>The results a finished run folder holds, read back from its files (columns by header name, so files with more columns read too).</summary>
/// <param name="Directory">The run folder.</param>
/// <param name="Config">Its config.</param>
/// <param name="Summary">Its <c>summary.csv</c>.</param>
/// <param name="Rounds">Its <c>rounds.csv</c>.</param>
public sealed record RunResults(string Directory, SimulationConfig Config, IReadOnlyList<SummaryRow> Summary, IReadOnlyList<RoundRow> Rounds)
{
    /// <summary>Reads a finished run folder; throws <see cref="ConfigException"/> if it is not one.</summary>
    public static RunResults Load(string dir)
    {
        if (!RunFolder.IsFinished(dir)) throw new ConfigException($"{dir} does not hold a finished run (run.json status 'finished', rounds.csv and summary.csv)");
        return new RunResults(dir, RunFolder.LoadConfig(dir),
            Read(Path.Combine(dir, RunFolder.SummaryFile), c => new SummaryRow
            {
                Method = c.GetString("method"), Client = c.GetString("client"), Accuracy = c.Parse<double>("accuracy"),
                TestSamples = c.Parse<int>("test_samples"), UploadedPerRound = c.Parse<long>("uploaded_params_per_round"),
            }),
            Read(Path.Combine(dir, RunFolder.RoundsFile), c => new RoundRow
            {
                Method = c.GetString("method"), Round = c.Parse<int>("round"), Client = c.Parse<int>("client"),
                Accuracy = c.Parse<double>("accuracy"), Loss = c.Parse<double>("loss"),
                TrainLoss = c.GetStringOrNull("train_loss") is { Length: > 0 } t ? double.Parse(t, CultureInfo.InvariantCulture) : null,
                UploadedParams = c.Parse<long>("uploaded_params"),
            }));
    }

    private static List<T> Read<T>(string path, Func<CsvReader, T> row)
    {
        var rows = new List<T>();
        try
        {
            using var csv = CsvReader.FromFile(path, new CsvReaderOptions { FormatProvider = CultureInfo.InvariantCulture });
            while (csv.Read()) rows.Add(row(csv));
        }
        catch (Exception e) when (e is not ConfigException and not IOException)
        {
            throw new ConfigException($"{path}: cannot be read as this version's results ({e.Message})");
        }
        return rows;
    }
}
