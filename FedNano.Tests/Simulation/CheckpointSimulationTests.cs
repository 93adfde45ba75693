using System.Text.Json;
using FedNano.Adapters;
using FedNano.Cli.Commands;
using FedNano.Simulation;
using FedNano.Tests.Checkpoints;
using NUnit.Framework;

namespace FedNano.Tests.Simulation;

/// <summary>
/// A real-layout LLaVA checkpoint (the reference fixture, converted layout, with its SentencePiece tokenizer) trains
/// end to end.
/// </summary>
public class CheckpointSimulationTests
{
    private static SimulationConfig Config() => new()
    {
        Backbone = "llava-1.5-7b", ModelDir = LlavaCheckpointTests.Converted, Device = "cpu", Precision = "float32",
        SyntheticSamples = 24, Clients = 2, MinPartitionSize = 2, Rounds = 1, BatchSize = 4, LearningRate = 1e-2,
        Methods = ["fednano"], Adapter = new AdapterConfig { Rank = 4 },
    };

    [Category("Slow")]
    [Test]
    public void OneFedNanoRoundOnTheReferenceCheckpoint()
    {
        var config = Config();
        var sim = Experiment.Create(config);
        var sample = sim.Data.Clients[0].Train[0];
        Assert.That((sample.Image!.Height, sample.Image.Width), Is.EqualTo((28, 28)),
            "image size from the checkpoint's vision config");
        var frozen = sim.Edge.FrozenParameters().ToDictionary(p => p.name, p => p.parameter.bytes.ToArray());
        using var start = sim.Edge.AdapterState();

        var result = sim.Run("fednano");

        Assert.That(result.Rounds, Has.Count.EqualTo(2));
        Assert.That(result.Rounds.All(r => r.Round == 1 && double.IsFinite(r.TrainLoss) && r.TrainLoss > 0
            && r.UploadedParameters == sim.AdapterParameterCount), Is.True);
        Assert.That(result.Final.Select(p => p.Count), Is.EqualTo(sim.Data.Clients.Select(c => c.Test.Count)));
        Assert.That(result.ClientAccuracy.All(a => a >= 0 && a <= 1), Is.True);
        using var end = sim.Edge.AdapterState(); // the aggregated global adapters, loaded for the last evaluation
        Assert.That(end["adapter_t.up.weight"].abs().sum().item<float>(), Is.GreaterThan(0f), "the adapters trained");
        Assert.That(start["adapter_t.up.weight"].abs().sum().item<float>(), Is.EqualTo(0f));
        foreach (var (name, p) in sim.Edge.FrozenParameters())
            Assert.That(p.bytes.ToArray(), Is.EqualTo(frozen[name]), name);
    }

    [Category("Slow")]
    [Test]
    public void TheRunCommandTakesTheBackboneDevicePrecisionOptions()
    {
        string dir = Path.Combine(Path.GetTempPath(), "fednano-ckpt-run-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string configPath = Path.Combine(dir, "small.json");
            File.WriteAllText(configPath, """
                { "synthetic_samples": 24, "clients": 2, "min_partition_size": 2, "rounds": 1, "batch_size": 4,
                  "methods": ["fednano"], "adapter": { "rank": 4 } }
                """);
            string outDir = Path.Combine(dir, "out");
            int code = RunCommand.Build().Parse(["--config", configPath, "--backbone", "llava-1.5-7b",
                "--model-dir", LlavaCheckpointTests.Converted, "--device", "cpu", "--precision", "bfloat16",
                "--out", outDir]).Invoke();
            Assert.That(code, Is.EqualTo(0));
            Assert.That(File.Exists(Path.Combine(outDir, "summary.csv")), Is.True);
            using var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json")));
            Assert.That(run.RootElement.GetProperty("precision").GetString(), Is.EqualTo("BFloat16"));
            Assert.That(run.RootElement.GetProperty("backbone").GetString(), Is.EqualTo("llava-1.5-7b"));
            var written = SimulationConfig.Load(Path.Combine(outDir, "config.json"));
            Assert.That((written.Backbone, written.Device, written.Precision),
                Is.EqualTo(("llava-1.5-7b", "cpu", "bfloat16")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestCase("--backbone", "huge", "not one of tiny, mid, llava-1.5-7b")]
    [TestCase("--precision", "int8", "precision 'int8'")]
    [TestCase("--device", "tpu", "device 'tpu'")]
    public void BadBackboneOptionsAreConfigErrors(string option, string value, string message)
    {
        var options = new RunOptions();
        var cmd = new System.CommandLine.RootCommand();
        foreach (var o in options.All) cmd.Options.Add(o);
        string configPath = Path.Combine(TestContext.CurrentContext.WorkDirectory,
            "quick-" + Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(configPath, "{}");
        try
        {
            var parsed = cmd.Parse(["--config", configPath, option, value]);
            Assert.That(() => options.Resolve(parsed), Throws.TypeOf<ConfigException>().With.Message.Contains(message));
        }
        finally { File.Delete(configPath); }
    }
}
