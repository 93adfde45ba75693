using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Simulation;

public class SimulationConfigTests
{
    [TestCase("{\"fedprox_mu\": -1}", "fedprox_mu must be >= 0")]
    [TestCase("{\"max_grad_norm\": -0.5}", "max_grad_norm must be >= 0")]
    [TestCase("{\"feddpa\": {\"instances\": 0}}", "feddpa.instances must be > 0")]
    [TestCase("{\"feddpa\": {\"local_epochs\": 0}}", "feddpa.local_epochs must be > 0")]
    [TestCase("{\"feddpa\": {\"lora_rank\": -2}}", "feddpa.lora_rank must be > 0")]
    [TestCase("{\"feddpa\": {\"rank\": 2}}", "feddpa.rank")]
    [TestCase("{\"methods\": [\"\"]}", "methods must not hold empty or null names")]
    public void BadMethodSettingsAreRefusedWithTheirField(string json, string expected)
    {
        string path = Path.Combine(Path.GetTempPath(), $"fednano-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            Assert.That(() => SimulationConfig.Load(path),
                Throws.TypeOf<ConfigException>().With.Message.Contains(expected).And.Message.Contains(path));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void EveryMethodOfThePaperHasAName()
    {
        Assert.That(MethodCatalog.All.Take(7), Is.EquivalentTo(new[]
            { "centralized", "local", "fedavg", "fedprox", "feddpa-f", "fednano", "fednano-ef" }));
        foreach (var m in MethodCatalog.All)
            Assert.That(MethodCatalog.Strategy(m, new SimulationConfig()).Name, Is.EqualTo(m));
    }
}
