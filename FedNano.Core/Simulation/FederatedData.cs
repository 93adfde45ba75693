using FedNano.Data;
using FedNano.Partitioning;

namespace FedNano.Simulation;

/// <summary>One client's data: its training part and its test part.</summary>
/// <param name="Index">Client index, 0-based.</param>
/// <param name="Train">Local training samples.</param>
/// <param name="Test">Local test samples.</param>
public sealed record ClientData(int Index, IReadOnlyList<MultimodalSample> Train, IReadOnlyList<MultimodalSample> Test);

/// <summary>A data set shared out over clients by a Dirichlet label partition, each client's part split into train and test.</summary>
public sealed record FederatedData(IReadOnlyList<ClientData> Clients, string PartitionBy)
{
    /// <summary>Every client's training samples pooled (for the centralized upper bound).</summary>
    public IReadOnlyList<MultimodalSample> PooledTrain => Clients.SelectMany(c => c.Train).ToArray();

    /// <summary>
    /// Partitions <paramref name="samples"/> over the config's clients by <c>partition_by</c> with
    /// Dirichlet(alpha), then holds out <c>test_fraction</c> of each client's samples (at least one) as its test part.
    /// </summary>
    public static FederatedData Partition(IReadOnlyList<MultimodalSample> samples, SimulationConfig config)
    {
        var labels = samples.Select(s => s.MetaValue(config.PartitionBy)).ToArray();
        var parts = DirichletPartitioner.Partition(labels, config.Clients, config.Alpha, config.MinPartitionSize, config.Seed);
        var rng = new Random(Seeds.Derive(config.Seed, Seeds.Purpose("train-test split")));
        var clients = parts.Select((idx, k) =>
        {
            var shuffled = idx.OrderBy(_ => rng.Next()).Select(i => samples[i]).ToArray();
            int test = Math.Clamp((int)Math.Round(shuffled.Length * config.TestFraction), 1, shuffled.Length - 1);
            return new ClientData(k, shuffled[test..], shuffled[..test]);
        }).ToArray();
        return new FederatedData(clients, config.PartitionBy);
    }
}
