using FedNano.Simulation;

namespace FedNano.Partitioning;

/// <summary>
/// How a data set's samples are shared out over the clients, registered by name with
/// <see cref="PartitionerRegistry.Register"/> and chosen by a config's <c>partition_scheme</c>.
/// </summary>
public interface IPartitioner
{
    /// <summary>The name a config gives as <c>partition_scheme</c>.</summary>
    string Name { get; }

    /// <summary>
    /// The sample indices each of <c>config.Clients</c> clients holds, given every sample's <c>partition_by</c>
    /// label. No index may be given twice, and each client needs at least two samples (a train and a test part);
    /// the built-in schemes give every index to exactly one client. Deterministic for <c>config.Seed</c>; a
    /// partition that cannot be made is a <see cref="ConfigException"/> saying which field to change.
    /// </summary>
    int[][] Partition(IReadOnlyList<string> labels, SimulationConfig config);
}

/// <summary>
/// The partition schemes a config can name: <c>label</c> (<see cref="DirichletPartitioner"/>, the default: per
/// label, the clients' shares from Dirichlet(alpha)), <c>client</c> (<see cref="ClientDirichletPartitioner"/>, for
/// large federations: per client, its label mix from Dirichlet(alpha) and its size from <c>client_size_sigma</c>)
/// and those registered by the user's code. Each built-in entry below is the only place its name is spelled.
/// </summary>
public static class PartitionerRegistry
{
    private static readonly Registry<IPartitioner> Entries = new("partitioner", "partition_scheme", p => p.Name,
        new Scheme("label", (labels, c) =>
            DirichletPartitioner.Partition(labels, c.Clients, c.Alpha, c.MinPartitionSize, c.Seed)),
        new Scheme("client", (labels, c) => ClientDirichletPartitioner.Partition(
            labels, c.Clients, c.Alpha, c.MinPartitionSize, c.ClientSizeSigma, c.Seed)));

    /// <summary>Every registered name, the built-in ones first.</summary>
    public static IReadOnlyList<string> Names => Entries.Names;

    /// <summary>
    /// Adds <paramref name="partitioner"/> under its name (replacing an earlier registration of that name; the
    /// built-in names are refused), so that configs with <c>partition_scheme: "name"</c> use it in this process.
    /// </summary>
    public static void Register(IPartitioner partitioner) => Entries.Register(partitioner);

    /// <summary>The partitioner named <paramref name="name"/>, or null.</summary>
    public static IPartitioner? Find(string name) => Entries.Find(name);

    /// <summary>The partitioner named <paramref name="name"/>, or a <see cref="ConfigException"/>.</summary>
    public static IPartitioner Get(string name) =>
        Entries.Get(name, "implement IPartitioner and call PartitionerRegistry.Register");

    private sealed class Scheme(string name, Func<IReadOnlyList<string>, SimulationConfig, int[][]> partition)
        : IPartitioner
    {
        public string Name => name;
        public int[][] Partition(IReadOnlyList<string> labels, SimulationConfig config) => partition(labels, config);
    }
}
