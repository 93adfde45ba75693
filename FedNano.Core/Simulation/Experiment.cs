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

    /// <summary>The samples of the config's data set.</summary>
    public static IReadOnlyList<MultimodalSample> LoadSamples(SimulationConfig config, Backbone backbone) => config.Dataset switch
    {
        "synthetic" => SyntheticBenchmark.Generate(config.SyntheticSamples, Seeds.Derive(config.Seed, Seeds.Purpose("synthetic data")),
            SyntheticDialect.Client, backbone.Model.Config.VisionConfig.ImageSize),
        _ => throw new ConfigException($"dataset '{config.Dataset}' is not known (known: synthetic)"),
    };

    /// <summary>Loads the config's backbone.</summary>
    public static Backbone LoadBackbone(SimulationConfig config)
    {
        if (config.Backbone != "tiny") throw new ConfigException($"backbone '{config.Backbone}' is not known (known: tiny)");
        string dir = config.ModelDir ?? Path.Combine(FindRepositoryRoot() ?? ".", TinyBackbone.DefaultDirectory);
        return TinyBackbone.Load(dir);
    }

    /// <summary>Backbone, partitioned data and simulation for a config.</summary>
    public static FederatedSimulation Create(SimulationConfig config)
    {
        config.Validate();
        var backbone = LoadBackbone(config);
        var data = FederatedData.Partition(LoadSamples(config, backbone), config);
        return new FederatedSimulation(config, backbone, data);
    }
}
