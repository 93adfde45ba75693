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

    /// <summary>The samples of the config's data set.</summary>
    public static IReadOnlyList<MultimodalSample> LoadSamples(SimulationConfig config, Backbone backbone) => config.Dataset switch
    {
        "synthetic" => SyntheticBenchmark.Generate(config.SyntheticSamples, Seeds.Derive(config.Seed, Seeds.Purpose("synthetic data")),
            SyntheticDialect.Client, backbone.Model.Config.VisionConfig.ImageSize),
        _ => throw new ConfigException($"dataset '{config.Dataset}' is not known (known: synthetic)"),
    };

    /// <summary>
    /// Loads the config's backbone (<see cref="Backbones.Load"/>) on its device and precision; the tiny backbone's
    /// folder defaults to the shipped one, a random backbone's initialisation is seeded from the config's seed.
    /// </summary>
    public static Backbone LoadBackbone(SimulationConfig config)
    {
        var where = DeviceChoice.Resolve(config.Device, config.Precision);
        string? dir = config.ModelDir ?? (config.Backbone == "tiny" ? Path.Combine(FindRepositoryRoot() ?? ".", TinyBackbone.DefaultDirectory) : null);
        TorchSharp.torch.manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("backbone init")));
        return Backbones.Load(config.Backbone, where, dir, config.VisionTowerDir);
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
