using FedNano.Data;
using FedNano.Data.Synthetic;
using FedNano.Partitioning;

namespace FedNano.Simulation;

/// <summary>One client's data: its training part and its test part.</summary>
/// <param name="Index">Client index, 0-based.</param>
/// <param name="Train">Local training samples.</param>
/// <param name="Test">Local test samples.</param>
public sealed record ClientData(int Index, IReadOnlyList<MultimodalSample> Train, IReadOnlyList<MultimodalSample> Test);

/// <summary>
/// A data set shared out over clients by the config's partition scheme, each client's part split into train and test.
/// </summary>
public sealed record FederatedData(IReadOnlyList<ClientData> Clients, string PartitionBy)
{
    /// <summary>Every client's training samples pooled (for the centralized upper bound).</summary>
    public IReadOnlyList<MultimodalSample> PooledTrain => Clients.SelectMany(c => c.Train).ToArray();

    /// <summary>
    /// Partitions <paramref name="samples"/> over the config's clients by <c>partition_by</c> with the config's
    /// <c>partition_scheme</c> (<see cref="PartitionerRegistry"/>), then holds out <c>test_fraction</c> of each
    /// client's samples (at least one, and at least one left to train on) as its test part; with
    /// <c>synthetic_dialects</c> above 1, client k's samples in client dialect k mod it
    /// (<see cref="SyntheticBenchmark.InClientDialect"/>); then removes the parts <c>missing_modality</c> names from
    /// its clients' samples.
    /// </summary>
    public static FederatedData Partition(IReadOnlyList<MultimodalSample> samples, SimulationConfig config)
    {
        var labels = samples.Select(s => s.MetaValue(config.PartitionBy)).ToArray();
        var parts = PartitionerRegistry.Get(config.PartitionScheme).Partition(labels, config);
        Check(parts, samples.Count, config);
        var rng = new Random(Seeds.Derive(config.Seed, Seeds.Purpose("train-test split")));
        var clients = parts.Select((idx, k) =>
        {
            var shuffled = idx.OrderBy(_ => rng.Next()).Select(i => samples[i]).ToArray();
            int test = Math.Clamp((int)Math.Round(shuffled.Length * config.TestFraction), 1, shuffled.Length - 1);
            if (config.SyntheticDialects > 1) // client k writes in dialect k mod synthetic_dialects
                shuffled = shuffled.Select(s => SyntheticBenchmark.InClientDialect(s, k % config.SyntheticDialects))
                    .ToArray();
            return new ClientData(k, shuffled[test..], shuffled[..test]);
        }).ToArray();
        var data = new FederatedData(clients, config.PartitionBy);
        return config.MissingModality?.Apply(data, config.Seed) ?? data;
    }

    /// <summary>A partitioner's answer is one part per client, each of at least two samples, no sample twice.</summary>
    private static void Check(int[][] parts, int samples, SimulationConfig config)
    {
        string who = $"partition_scheme '{config.PartitionScheme}'";
        if (parts.Length != config.Clients)
            throw new ConfigException($"{who} made {parts.Length} parts for {config.Clients} clients");
        var seen = new bool[samples];
        for (int k = 0; k < parts.Length; k++)
        {
            if (parts[k].Length < 2)
                throw new ConfigException(
                    $"{who} gave client {k} {parts[k].Length} samples; each needs 2 (a train and a test part)");
            foreach (int i in parts[k])
            {
                if (i < 0 || i >= samples) throw new ConfigException($"{who} gave client {k} sample {i} of {samples}");
                if (seen[i]) throw new ConfigException($"{who} gave sample {i} to two clients");
                seen[i] = true;
            }
        }
    }
}
