using FedNano.Checkpoints;
using FedNano.Data;
using FedNano.Data.Synthetic;
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
    /// The samples of the config's data set, the pool the simulation partitions over the clients. For ScienceQA and
    /// IconQA: every split the release has (train, val, test) pooled, since each client holds out its own test part;
    /// contexts longer than <c>max_context_tokens</c> are cut at a word boundary. Checks that every sample has the
    /// <c>partition_by</c> field. <paramref name="log"/> gets one line on what was loaded.
    /// </summary>
    public static IReadOnlyList<MultimodalSample> LoadSamples(SimulationConfig config, Backbone backbone, Action<string>? log = null)
    {
        IReadOnlyList<MultimodalSample> samples;
        if (config.IsRealDataset)
        {
            var loaded = RealDatasets.Load(config.Dataset, config.DataRoot!, new DatasetLoadOptions { MissingImages = DatasetLoadOptions.ParsePolicy(config.MissingImages) });
            int cut = 0;
            samples = loaded.Splits.Values.SelectMany(split => split).Select(s =>
            {
                var context = TruncateContext(s.Context, backbone.Tokenizer, config.MaxContextTokens);
                if (ReferenceEquals(context, s.Context)) return s;
                cut++;
                return s with { Context = context };
            }).ToArray();
            log?.Invoke($"{config.Dataset} at {loaded.Root}: {string.Join(", ", loaded.Splits.Select(p => $"{p.Key} {p.Value.Count}"))} pooled; "
                + $"missing images {loaded.MissingImages.Count} (captioned {loaded.Captioned}, skipped {loaded.Skipped}); contexts cut to {config.MaxContextTokens} tokens: {cut}");
        }
        else samples = SyntheticBenchmark.Generate(config.SyntheticSamples, Seeds.Derive(config.Seed, Seeds.Purpose("synthetic data")),
            SyntheticDialect.Client, backbone.Model.Config.VisionConfig.ImageSize);
        if (samples.Count == 0) throw new ConfigException($"dataset '{config.Dataset}' has no samples{(config.DataRoot is { } r ? $" at {r}" : "")}");
        RealDatasets.LabelValues(samples, config.PartitionBy);
        return samples;
    }

    /// <summary>
    /// <paramref name="context"/> itself when it encodes to at most <paramref name="maxTokens"/> tokens, else its longest
    /// prefix of whole words that, followed by <c>" ..."</c>, does.
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
        var where = DeviceChoice.Resolve(config.Device, config.Precision);
        string? dir = config.ModelDir ?? (config.Backbone == "tiny" ? Shipped.TinyBackboneDirectory : null);
        TorchSharp.torch.manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("backbone init")));
        return Backbones.Load(config.Backbone, where, dir, config.VisionTowerDir);
    }

    /// <summary>Backbone, partitioned data and simulation for a config (<paramref name="log"/>: see <see cref="LoadSamples"/>).</summary>
    public static FederatedSimulation Create(SimulationConfig config, Action<string>? log = null)
    {
        config.Validate();
        var backbone = LoadBackbone(config);
        var data = FederatedData.Partition(LoadSamples(config, backbone, log), config);
        return new FederatedSimulation(config, backbone, data);
    }
}
