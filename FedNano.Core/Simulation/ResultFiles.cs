using System.Globalization;
using CsvHelper;

namespace FedNano.Simulation;

/// <summary>A row of <c>summary.csv</c>: final test accuracy of a method on a client, or their mean (client
/// <c>mean</c>), with its costs.</summary>
[CsvRecord]
public sealed partial record SummaryRow
{
    /// <summary>Method name (<c>zero-shot</c> for identity adapters).</summary>
    [CsvColumn("method")] public required string Method { get; init; }
    /// <summary>Client index, or <c>mean</c>.</summary>
    [CsvColumn("client")] public required string Client { get; init; }
    /// <summary>Final test accuracy in percent.</summary>
    [CsvColumn("accuracy_pct")] public required double Accuracy { get; init; }
    /// <summary>Test samples behind it.</summary>
    [CsvColumn("test_samples")] public required int TestSamples { get; init; }
    /// <summary>Model parameters one client uploads per round.</summary>
    [CsvColumn("uploaded_params_per_round")] public required long UploadedPerRound { get; init; }
    /// <summary>Fisher values one client uploads per round besides them.</summary>
    [CsvColumn("uploaded_fisher_per_round")] public required long FisherPerRound { get; init; }
    /// <summary>Parameters resident on a client (empty without clients).</summary>
    [CsvColumn("client_resident_params")] public required long? ClientResident { get; init; }
    /// <summary>Parameters of the whole MLLM.</summary>
    [CsvColumn("model_params")] public required long ModelParams { get; init; }
}

/// <summary>A row of <c>rounds.csv</c> (see <see cref="RoundResult"/> and <see cref="ClientTraffic"/>).</summary>
[CsvRecord]
public sealed partial record RoundRow
{
    /// <summary>Method name.</summary>
    [CsvColumn("method")] public required string Method { get; init; }
    /// <summary>Round, 1-based (0 for zero-shot).</summary>
    [CsvColumn("round")] public required int Round { get; init; }
    /// <summary>Client index.</summary>
    [CsvColumn("client")] public required int Client { get; init; }
    /// <summary>Test accuracy after the round, in percent.</summary>
    [CsvColumn("accuracy_pct")] public required double Accuracy { get; init; }
    /// <summary>Mean test loss after the round.</summary>
    [CsvColumn("loss")] public required double Loss { get; init; }
    /// <summary>Mean local training loss (empty if the client did not train).</summary>
    [CsvColumn("train_loss")] public required double? TrainLoss { get; init; }
    /// <summary>Model parameters downloaded by the client this round.</summary>
    [CsvColumn("downloaded_params")] public required long DownloadedParams { get; init; }
    /// <summary>Bytes downloaded by the client this round.</summary>
    [CsvColumn("downloaded_bytes")] public required long DownloadedBytes { get; init; }
    /// <summary>Model parameters uploaded by the client this round.</summary>
    [CsvColumn("uploaded_params")] public required long UploadedParams { get; init; }
    /// <summary>Fisher values uploaded by the client this round.</summary>
    [CsvColumn("uploaded_fisher")] public required long UploadedFisher { get; init; }
    /// <summary>Bytes uploaded by the client this round (parameters and Fisher values).</summary>
    [CsvColumn("uploaded_bytes")] public required long UploadedBytes { get; init; }
    /// <summary>Activation and gradient bytes across the split during the client's local training this round.</summary>
    [CsvColumn("split_bytes_train")] public required long SplitBytesTrain { get; init; }
    /// <summary>Bytes across the split to evaluate the client's test part after the round.</summary>
    [CsvColumn("split_bytes_eval")] public required long SplitBytesEval { get; init; }
    /// <summary>Parameters resident on the client (empty without clients).</summary>
    [CsvColumn("client_resident_params")] public required long? ClientResidentParams { get; init; }
    /// <summary>1 when the client's loss or update was NaN or infinite and it was left out of the aggregate, else
    /// 0.</summary>
    [CsvColumn("nonfinite")] public int NonFinite { get; init; }
    /// <summary>Epsilon the client has spent so far (at the config's <c>dp.delta</c>); empty without <c>dp</c>.
    /// </summary>
    [CsvColumn("epsilon")] public double? Epsilon { get; init; }
}

/// <summary>
/// Writes a simulation's results as CSV files, each written to a temporary file and renamed into place. Accuracies are
/// in percent in every file (<c>accuracy_pct</c>), as on screen; clients are numbered from 0 everywhere.
/// </summary>
public static class ResultFiles
{
    /// <summary>The summary rows of some method results: per client and the mean; <paramref name="modelParams"/> is
    /// the whole MLLM's size.</summary>
    public static IEnumerable<SummaryRow> Summary(IEnumerable<MethodResult> results, long modelParams) =>
        results.SelectMany(r =>
        {
            var acc = r.ClientAccuracy;
            SummaryRow Row(string client, double a, int n) => new()
            {
                Method = r.Method, Client = client, Accuracy = Pct(a), TestSamples = n,
                UploadedPerRound = r.UploadedPerRound,
                FisherPerRound = r.FisherPerRound, ClientResident = r.ClientResident, ModelParams = modelParams,
            };
            return acc.Select((a, k) => Row(k.ToString(CultureInfo.InvariantCulture), a, r.Final[k].Count))
                .Append(Row("mean", acc.Average(), r.Final.Sum(f => f.Count)));
        });

    /// <summary>The rounds rows of some method results.</summary>
    public static IEnumerable<RoundRow> Rounds(IEnumerable<MethodResult> results) =>
        results.SelectMany(r => r.Rounds).Select(x => new RoundRow
        {
            Method = x.Method, Round = x.Round, Client = x.Client, Accuracy = Pct(x.Accuracy),
            Loss = Math.Round(x.Loss, 6),
            // empty: did not train; a non-finite loss is written as it was (NaN, Infinity), flagged in nonfinite
            TrainLoss = x.NonFinite ? x.TrainLoss : double.IsNaN(x.TrainLoss) ? null : Math.Round(x.TrainLoss, 6),
            NonFinite = x.NonFinite ? 1 : 0,
            DownloadedParams = x.Traffic.DownloadedParams, DownloadedBytes = x.Traffic.DownloadedBytes,
            UploadedParams = x.Traffic.UploadedParams, UploadedFisher = x.Traffic.UploadedFisher,
            UploadedBytes = x.Traffic.UploadedBytes,
            SplitBytesTrain = x.Traffic.SplitBytesTrain, SplitBytesEval = x.Traffic.SplitBytesEval,
            ClientResidentParams = x.Traffic.ClientResidentParams,
            Epsilon = double.IsNaN(x.Epsilon) ? null : Math.Round(x.Epsilon, 6),
        });

    /// <summary>A fraction (as accuracies are kept in memory) in percent, to four decimals.</summary>
    internal static double Pct(double fraction) => Math.Round(100 * fraction, 4);

    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/> atomically.</summary>
    public static void Write<T>(string path, IEnumerable<T> rows)
    {
        string tmp = path + ".tmp";
        using (var csv = CsvWriter.ToFile(tmp))
            csv.WriteRecords(rows);
        File.Move(tmp, path, overwrite: true);
    }
}
