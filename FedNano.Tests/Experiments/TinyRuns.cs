using FedNano.Simulation;

namespace FedNano.Tests.Experiments;

/// <summary>
/// A small random backbone in a temporary folder, and configs small enough for a run of a second or two.
/// </summary>
internal static class TinyRuns
{
    private static readonly Lazy<string> Dir = new(() =>
        TestBackbones.SaveRandom(Path.Combine(Path.GetTempPath(), $"fednano-test-backbone-{Environment.ProcessId}")));

    /// <summary>The folder of the random backbone.</summary>
    public static string BackboneDir => Dir.Value;

    /// <summary>2 clients, 3 rounds, few samples, rank 4.</summary>
    public static SimulationConfig Config(params string[] methods) => new()
    {
        Dataset = "synthetic", SyntheticSamples = 48, Clients = 2, Alpha = 1.0, MinPartitionSize = 6, Rounds = 3,
        BatchSize = 8, LearningRate = 5e-3, Adapter = new FedNano.Adapters.AdapterConfig { Rank = 4 },
        Methods = methods.Length == 0 ? ["fednano", "fedavg"] : methods, Seed = 3, ModelDir = BackboneDir,
    };

    /// <summary>A new empty temporary folder.</summary>
    public static string TempDir(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"fednano-test-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
