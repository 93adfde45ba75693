using System.Reflection;
using System.Text.RegularExpressions;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tests.Strategies;
using FedNano.Tests.Data;
using FedNano.Tests.Experiments;
using NUnit.Framework;

namespace FedNano.Tests.Samples;

/// <summary>
/// The projects under <c>samples/</c> are the README's library examples: they build with the tests (referenced by
/// this project), run here on a tiny config, and the README holds their code verbatim, so neither can rot.
/// </summary>
[NonParallelizable]
public class SamplesTests
{
    /// <summary>Runs a sample's entry point with <paramref name="args"/>; returns what it printed.</summary>
    private static string RunSample(string assembly, params string[] args)
    {
        var entry = Assembly.Load(assembly).EntryPoint!;
        var before = Console.Out;
        var output = new StringWriter();
        Console.SetOut(output);
        try { entry.Invoke(null, entry.GetParameters().Length == 0 ? [] : [args]); }
        finally { Console.SetOut(before); }
        return output.ToString();
    }

    private static string TinyConfig(string name)
    {
        string path = Path.Combine(TinyRuns.TempDir(name), "config.json");
        File.WriteAllText(path, (TinyRuns.Config("fednano") with { Rounds = 1 }).ToJson());
        return path;
    }

    [Category("Slow")]
    [TestCase("QuickStart", @"^zero-shot \d+(\.\d)? ?% -> fednano \d+(\.\d)? ?%$")]
    [TestCase("CustomStrategy", @"^median: mean accuracy \d+(\.\d)? ?%, per client .+$")]
    public void SampleRunsAndTheReadmeHoldsItsCode(string sample, string printed)
    {
        Assert.That(RunSample(sample, TinyConfig(sample)).Trim(),
            Does.Match(new Regex(printed, RegexOptions.Multiline)));
        string readme = File.ReadAllText(Path.Combine(DataFixtures.RepoRoot, "README.md")).ReplaceLineEndings("\n");
        string code = File.ReadAllText(Path.Combine(DataFixtures.RepoRoot, "samples", sample, "Program.cs"))
            .ReplaceLineEndings("\n");
        Assert.That(readme, Does.Contain("```csharp\n" + code + "```"),
            $"README.md shows samples/{sample}/Program.cs as it is");
    }

    /// <summary>
    /// The README's custom strategy (samples/CustomStrategy's <c>Median</c>), registered by name, runs through run
    /// folders as a built-in method does: checkpoints, resume, report.
    /// </summary>
    [Category("Slow")]
    [Test]
    public void TheCustomStrategySampleRunsThroughRunFolders()
    {
        var median = Assembly.Load("CustomStrategy").GetType("Median", throwOnError: true)!;
        var strategy = (IStrategy)Activator.CreateInstance(median, nonPublic: true)!;
        if (!MethodCatalog.All.Contains(strategy.Name))
            MethodCatalog.Register(new MethodEntry(strategy.Name, "Median (samples/CustomStrategy)",
                _ => (IStrategy)Activator.CreateInstance(median, nonPublic: true)!));
        UserStrategyTests.RunsThroughRunFolders(TinyRuns.Config(strategy.Name), strategy.Name);
    }

    [Test]
    public void ShippedFilesUnpackOutsideACheckoutAsTheRepositoryHasThem()
    {
        string cache = TinyRuns.TempDir("cache");
        string? before = Environment.GetEnvironmentVariable("FEDNANO_CACHE");
        Environment.SetEnvironmentVariable("FEDNANO_CACHE", cache);
        try
        {
            string dir = Shipped.Unpack();
            Assert.That(dir, Does.StartWith(cache));
            Assert.That(Shipped.Unpack(), Is.EqualTo(dir), "unpacked once, found again");
            string repo = DataFixtures.RepoRoot;
            foreach (var f in Directory.GetFiles(Path.Combine(repo, "data", "tiny-backbone")))
                Assert.That(File.ReadAllBytes(Path.Combine(dir, "tiny-backbone", Path.GetFileName(f))),
                    Is.EqualTo(File.ReadAllBytes(f)), f);
            Assert.That(File.ReadAllText(Path.Combine(dir, "quickstart.json")),
                Is.EqualTo(File.ReadAllText(Path.Combine(repo, "configs", "quickstart.json"))));
            Assert.That(SimulationConfig.Load(Path.Combine(dir, "quickstart.json")).Clients, Is.EqualTo(5));
        }
        finally { Environment.SetEnvironmentVariable("FEDNANO_CACHE", before); }
    }
}
