using System.Text.Json;
using NUnit.Framework;
using FedNano.Tests.Experiments;

namespace FedNano.Tests.Reliability;

/// <summary>The fednano entry point in process, and tiny configs written to temporary folders.</summary>
internal static class Cli
{
    /// <summary>Runs fednano with <paramref name="args"/>; its exit code and what it wrote to stderr.</summary>
    public static (int code, string err) Fednano(params string[] args) => Simulation.RunCommandTests.Fednano(args);

    /// <summary>A config file in <paramref name="dir"/>: 1 round of fednano on 40 synthetic samples, fields overridden
    /// by <paramref name="overrides"/>.</summary>
    public static string Config(string dir, IReadOnlyDictionary<string, object?>? overrides = null)
    {
        var fields = new Dictionary<string, object?>
        {
            ["synthetic_samples"] = 40, ["clients"] = 2, ["alpha"] = 1.0, ["min_partition_size"] = 8, ["rounds"] = 1,
            ["batch_size"] = 8, ["adapter"] = new Dictionary<string, object?> { ["rank"] = 4 },
            ["methods"] = new[] { "fednano" },
            ["model_dir"] = TinyRuns.BackboneDir, ["seed"] = 3,
        };
        foreach (var (k, v) in overrides ?? new Dictionary<string, object?>()) fields[k] = v;
        string path = Path.Combine(dir, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(fields));
        return path;
    }

    /// <summary>What every failure must look like: one line, no stack trace, no "Unhandled exception".</summary>
    public static void AssertOneLine(string err)
    {
        Assert.That(err, Does.Not.Contain("Unhandled exception").And.Not.Contain("   at "), err);
        Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
    }
}
