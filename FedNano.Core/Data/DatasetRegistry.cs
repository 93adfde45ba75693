using FedNano.Data.Synthetic;
using FedNano.Evaluation;
using FedNano.Simulation;

namespace FedNano.Data;

/// <summary>What a data set is given to load its samples.</summary>
/// <param name="Config">
/// The run's config (e.g. <c>data_root</c>, <c>missing_images</c>, <c>synthetic_samples</c>, <c>seed</c>).
/// </param>
/// <param name="ImageSize">Side in pixels of the backbone's input images (what generated images are drawn at).</param>
/// <param name="Log">Gets a line on what was loaded, or null.</param>
public sealed record DatasetContext(SimulationConfig Config, int ImageSize, Action<string>? Log = null);

/// <summary>
/// A data set the simulation shares out over its clients, registered by name with
/// <see cref="DatasetRegistry.Register"/> and chosen by a config's <c>dataset</c>. Samples carry their metadata
/// (<see cref="MultimodalSample.Meta"/>): the partition label (<c>partition_by</c>) and whatever per-category
/// metrics use.
/// </summary>
public interface IFederatedDataset
{
    /// <summary>The name a config gives as <c>dataset</c>.</summary>
    string Name { get; }

    /// <summary>The metadata field partitioned over when the command line's <c>--dataset</c> switches to it.</summary>
    string DefaultPartitionBy => "category";

    /// <summary>Whether it is read from <c>data_root</c> (a config without one is then refused).</summary>
    bool NeedsDataRoot => false;

    /// <summary>
    /// The samples per official split, in the release's order (e.g. <c>train</c>, <c>val</c>, <c>test</c>); a data
    /// set without official splits gives one, named <c>all</c>. The simulation pools them and each client holds out
    /// its own test part. Bad or missing files are a <see cref="ConfigException"/> naming them.
    /// </summary>
    IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Load(DatasetContext context);

    /// <summary>Accuracy per category of final predictions (e.g. ScienceQA's NAT, SOC); empty for none.</summary>
    IReadOnlyList<CategoryAccuracy> Breakdown(IReadOnlyCollection<PredictionRecord> records) => [];
}

/// <summary>
/// The data sets a config can name: <c>synthetic</c> (<see cref="SyntheticBenchmark"/>, generated from the seed),
/// <c>scienceqa</c> and <c>iconqa</c> (official releases read from <c>data_root</c>), and those registered by the
/// user's code. Each built-in entry below is the only place its name is spelled.
/// </summary>
public static class DatasetRegistry
{
    private static readonly Registry<IFederatedDataset> Entries = new("data set", "dataset", d => d.Name,
        new Synthetic(),
        new Release("scienceqa", "category", ScienceQa.ScienceQaLoader.Load, Breakdowns.ScienceQa),
        new Release("iconqa", "skill", IconQa.IconQaLoader.Load, Breakdowns.IconQa));

    /// <summary>Every registered name, the built-in ones first.</summary>
    public static IReadOnlyList<string> Names => Entries.Names;

    /// <summary>
    /// Adds <paramref name="dataset"/> under its name (replacing an earlier registration of that name; the built-in
    /// names are refused), so that configs with <c>dataset: "name"</c> run, resume and report with it in this process.
    /// </summary>
    public static void Register(IFederatedDataset dataset) => Entries.Register(dataset);

    /// <summary>The data set named <paramref name="name"/>, or null.</summary>
    public static IFederatedDataset? Find(string name) => Entries.Find(name);

    /// <summary>The data set named <paramref name="name"/>, or a <see cref="ConfigException"/> listing them.</summary>
    public static IFederatedDataset Get(string name) =>
        Entries.Get(name, "implement IFederatedDataset and call DatasetRegistry.Register");

    private sealed class Synthetic : IFederatedDataset
    {
        public string Name => "synthetic";

        public IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Load(DatasetContext context)
        {
            int seed = Seeds.Derive(context.Config.Seed, Seeds.Purpose("synthetic data"));
            var samples = SyntheticBenchmark.Generate(context.Config.SyntheticSamples, seed, SyntheticDialect.Client,
                context.ImageSize);
            return new Dictionary<string, IReadOnlyList<MultimodalSample>> { ["all"] = samples };
        }
    }

    /// <summary>An official release on disk, read by its loader, with its per-category breakdown.</summary>
    private sealed class Release(
        string name,
        string defaultPartitionBy,
        Func<string, DatasetLoadOptions?, LoadedDataset> load,
        Func<IReadOnlyCollection<PredictionRecord>, IReadOnlyList<CategoryAccuracy>> breakdown) : IFederatedDataset
    {
        public string Name => name;
        public string DefaultPartitionBy => defaultPartitionBy;
        public bool NeedsDataRoot => true;

        public IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Load(DatasetContext context)
        {
            var c = context.Config;
            var root = c.DataRoot ?? throw new ConfigException($"dataset '{name}' needs data_root (--data-root)");
            var options = new DatasetLoadOptions { MissingImages = DatasetLoadOptions.ParsePolicy(c.MissingImages) };
            var loaded = load(root, options);
            var splits = string.Join(", ", loaded.Splits.Select(p => $"{p.Key} {p.Value.Count}"));
            context.Log?.Invoke($"{name} at {loaded.Root}: {splits} pooled; missing images "
                + $"{loaded.MissingImages.Count} (captioned {loaded.Captioned}, skipped {loaded.Skipped})");
            return loaded.Splits;
        }

        public IReadOnlyList<CategoryAccuracy> Breakdown(IReadOnlyCollection<PredictionRecord> records) =>
            breakdown(records);
    }
}
