using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Experiments;

public class ConfigsTests
{
    private static string ConfigsDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "FedNano.Sim.sln"))) return Path.Combine(d.FullName, "configs");
        throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
    }

    private static IEnumerable<string> Files() =>
        Directory.GetFiles(ConfigsDir(), "*.json").Select(Path.GetFileName).Order()!;

    [TestCaseSource(nameof(Files))]
    public void EveryConfigLoads(string name) =>
        Assert.DoesNotThrow(() => SimulationConfig.Load(Path.Combine(ConfigsDir(), name)));

    [Test]
    public void EveryPaperConfigHasATinyTwinOnATinyBackboneAndLocalData()
    {
        var paper = Files().Where(f => f != "quickstart.json" && !f.EndsWith("-tiny.json")).ToArray();
        Assert.That(paper, Is.Not.Empty);
        foreach (var f in paper)
        {
            string twin = Path.Combine(ConfigsDir(), f.Replace(".json", "-tiny.json"));
            Assert.That(File.Exists(twin), f);
            var c = SimulationConfig.Load(twin);
            string backbone = f.Contains("minigpt4") ? "minigpt4-tiny" : "tiny";
            Assert.That((c.Backbone, c.ModelDir), Is.EqualTo((backbone, (string?)null)), twin);
            Assert.That(c.Dataset == "synthetic" || c.DataRoot!.StartsWith("data/fixtures/"), twin);
        }
    }
}
