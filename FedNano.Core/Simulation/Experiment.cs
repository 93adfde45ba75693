using FedNano.Checkpoints;
using FedNano.Data;
using FedNano.Models;

namespace FedNano.Simulation;

/// <summary>Everything a run needs, made from a config: the backbone, the clients' data and the simulation.</summary>
public static class Experiment
{
    /// <summary>
    /// The folder holding <c>configs/</c> and <c>data/</c>: the first of the current directory, the program's
    /// directory and their parents that has a <c>data/tiny-backbone</c> folder.
    /// </summary>
    public static string? FindRepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (Directory.Exists(Path.Combine(dir.FullName, TinyBackbone.DefaultDirectory))) return dir.FullName;
        return null;
    }

    /// <summary>
    /// The samples of the config's data set (<see cref="DatasetRegistry"/>), the pool the simulation partitions
    /// over the clients: every split it has (for ScienceQA and IconQA train, val, test) pooled, since each client
    /// holds out its own test part; contexts longer than <c>max_context_tokens</c> are cut at a word boundary.
    /// Checks that every sample has the <c>partition_by</c> field. <paramref name="log"/> gets what was loaded.
    /// </summary>
    public static IReadOnlyList<MultimodalSample> LoadSamples(SimulationConfig config, Backbone backbone,
        Action<string>? log = null)
    {
        var dataset = DatasetRegistry.Get(config.Dataset);
        var splits = dataset.Load(new DatasetContext(config, backbone.Model.ImageSize, log));
        int cut = 0;
        var samples = splits.Values.SelectMany(split => split).Select(s =>
        {
            var context = TruncateContext(s.Context, backbone.Tokenizer, config.MaxContextTokens);
            if (ReferenceEquals(context, s.Context)) return s;
            cut++;
            return s with { Context = context };
        }).ToArray();
        if (cut > 0) log?.Invoke($"{config.Dataset}: {cut} contexts cut to {config.MaxContextTokens} tokens");
        if (samples.Length == 0)
        {
            string at = config.DataRoot is { } r ? $" at {r}" : "";
            throw new ConfigException($"dataset '{config.Dataset}' has no samples{at}");
        }
        RealDatasets.LabelValues(samples, config.PartitionBy);
        return samples;
    }

    /// <summary>
    /// <paramref name="context"/> itself when it encodes to at most <paramref name="maxTokens"/> tokens, else its
    /// longest prefix of whole words that, followed by <c>" ..."</c>, does.
    /// </summary>
    internal static string? TruncateContext(string? context, Tokenizers.ITextTokenizer tokenizer, int maxTokens)
    {
        if (string.IsNullOrEmpty(context) || tokenizer.Encode(context).Count <= maxTokens) return context;
        var words = context.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string Cut(int n) => string.Join(' ', words[..n]) + " ...";
        int lo = 0, hi = words.Length - 1; // the answer n is in [lo, hi]: Cut(lo) fits or lo = 0
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (tokenizer.Encode(Cut(mid)).Count <= maxTokens) lo = mid; else hi = mid - 1;
        }
        return Cut(lo);
    }

    /// <summary>
    /// Loads the config's backbone (<see cref="Backbones.Load"/>) on its device and precision; the tiny backbone's
    /// folder defaults to the shipped one, a random backbone's initialisation is seeded from the config's seed.
    /// </summary>
    public static Backbone LoadBackbone(SimulationConfig config)
    {
        TorchThreads.Apply(config.Threads);
        HostMemory.ReturnLargeBlocksToTheSystem();
        var where = DeviceChoice.Resolve(config.Device, config.Precision);
        string? dir = config.ModelDir ?? (config.Backbone == "tiny" ? Shipped.TinyBackboneDirectory : null);
        TorchSharp.torch.manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("backbone init")));
        return Backbones.Load(config.Backbone, where, dir, config.VisionTowerDir);
    }

    /// <summary>Backbone, partitioned data and simulation for a config (<paramref name="log"/>: see
    /// <see cref="LoadSamples"/>).</summary>
    public static FederatedSimulation Create(SimulationConfig config, Action<string>? log = null)
    {
        config.Validate();
        var backbone = LoadBackbone(config);
        var data = FederatedData.Partition(LoadSamples(config, backbone, log), config);
        return new FederatedSimulation(config, backbone, data);
    }
}
