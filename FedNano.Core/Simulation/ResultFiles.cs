using System.Globalization;
using CsvHelper;

namespace FedNano.Simulation;

/// <summary>A row of <c>summary.csv</c>: final test accuracy of a method on a client, or their mean (client <c>mean</c>).</summary>
[CsvRecord]
public sealed partial record SummaryRow
{
    /// <summary>Method name (<c>zero-shot</c> for identity adapters).</summary>
    [CsvColumn("method")] public required string Method { get; init; }
    /// <summary>Client index, or <c>mean</c>.</summary>
    [CsvColumn("client")] public required string Client { get; init; }
    /// <summary>Final test accuracy.</summary>
    [CsvColumn("accuracy")] public required double Accuracy { get; init; }
    /// <summary>Test samples behind it.</summary>
    [CsvColumn("test_samples")] public required int TestSamples { get; init; }
    /// <summary>Adapter parameters one client uploads per round.</summary>
    [CsvColumn("uploaded_params_per_round")] public required long UploadedPerRound { get; init; }
}

/// <summary>A row of <c>rounds.csv</c> (see <see cref="RoundResult"/>).</summary>
[CsvRecord]
public sealed partial record RoundRow
{
    /// <summary>Method name.</summary>
    [CsvColumn("method")] public required string Method { get; init; }
    /// <summary>Round, 1-based (0 for zero-shot).</summary>
    [CsvColumn("round")] public required int Round { get; init; }
    /// <summary>Client index.</summary>
    [CsvColumn("client")] public required int Client { get; init; }
    /// <summary>Test accuracy after the round.</summary>
    [CsvColumn("accuracy")] public required double Accuracy { get; init; }
    /// <summary>Mean test loss after the round.</summary>
    [CsvColumn("loss")] public required double Loss { get; init; }
    /// <summary>Mean local training loss (empty if the client did not train).</summary>
    [CsvColumn("train_loss")] public required double? TrainLoss { get; init; }
    /// <summary>Parameters uploaded by the client this round.</summary>
    [CsvColumn("uploaded_params")] public required long UploadedParams { get; init; }
}

/// <summary>Writes a simulation's results as CSV files, each written to a temporary file and renamed into place.</summary>
public static class ResultFiles
{
    /// <summary>The summary rows of some method results: per client and the mean.</summary>
    public static IEnumerable<SummaryRow> Summary(IEnumerable<MethodResult> results, long uploadedPerRound) =>
        results.SelectMany(r =>
        {
            var acc = r.ClientAccuracy;
            long up = r.Rounds.Any(x => x.UploadedParameters > 0) ? uploadedPerRound : 0;
            return acc.Select((a, k) => new SummaryRow { Method = r.Method, Client = k.ToString(CultureInfo.InvariantCulture), Accuracy = Math.Round(a, 6), TestSamples = r.Final[k].Count, UploadedPerRound = up })
                .Append(new SummaryRow { Method = r.Method, Client = "mean", Accuracy = Math.Round(acc.Average(), 6), TestSamples = r.Final.Sum(f => f.Count), UploadedPerRound = up });
        });

    /// <summary>The rounds rows of some method results.</summary>
    public static IEnumerable<RoundRow> Rounds(IEnumerable<MethodResult> results) =>
        results.SelectMany(r => r.Rounds).Select(x => new RoundRow
        {
            Method = x.Method, Round = x.Round, Client = x.Client, Accuracy = Math.Round(x.Accuracy, 6), Loss = Math.Round(x.Loss, 6),
            TrainLoss = double.IsNaN(x.TrainLoss) ? null : Math.Round(x.TrainLoss, 6), UploadedParams = x.UploadedParameters,
        });

    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/> atomically.</summary>
    public static void Write<T>(string path, IEnumerable<T> rows)
    {
        string tmp = path + ".tmp";
        using (var csv = CsvWriter.ToFile(tmp))
            csv.WriteRecords(rows);
        File.Move(tmp, path, overwrite: true);
    }
}
