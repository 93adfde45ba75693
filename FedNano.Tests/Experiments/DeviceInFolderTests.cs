using FedNano.Checkpoints;
using FedNano.Experiments;
using FedNano.Simulation;
using NUnit.Framework;
using TorchSharp;
using static FedNano.Tests.Simulation.RunCommandTests;

namespace FedNano.Tests.Experiments;

/// <summary>Device: the spelling is checked when validated, the machine asked when the model loads.</summary>
[NonParallelizable]
public class DeviceInFolderTests
{
    /// <summary>Also with a data set and a partition scheme this process has not registered.</summary>
    [Test]
    public void AFolderMadeForCudaReportsOnAMachineWithoutIt()
    {
        string dir = TinyRuns.TempDir("cuda-folder");
        var config = TinyRuns.Config("fedavg") with { Rounds = 1 };
        RunFolder.Run(config, dir);
        var elsewhere = config with
        {
            Device = "cuda", Precision = "float16", Dataset = "their-data", PartitionScheme = "theirs",
        };
        File.WriteAllText(Path.Combine(dir, RunFolder.ConfigFile), elsewhere.ToJson());
        Assert.That(RunFolder.LoadConfig(dir).ToJson(), Is.EqualTo(elsewhere.ToJson()));
        var (code, err) = Fednano("report", dir);
        Assert.That((code, err), Is.EqualTo((0, "")));
        Assert.That(File.Exists(Path.Combine(dir, "report.md")));
    }

    [Test]
    public void RunningOnCudaWhereThereIsNoneIsOneLineAndWritesNothing()
    {
        Assume.That(torch.cuda.is_available(), Is.False, "this machine has CUDA");
        string dir = TinyRuns.TempDir("cuda-run"), outDir = Path.Combine(dir, "run");
        string path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, (TinyRuns.Config("fedavg") with { Rounds = 1 }).ToJson());
        var (code, err) = Fednano("run", "--config", path, "--device", "cuda", "--out", outDir);
        string expected = "fednano: device cuda (--device): CUDA is not available on this machine (use auto or cpu)";
        Assert.That((code, err), Is.EqualTo((2, expected + Environment.NewLine)));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    [TestCase("cuda", "auto", null)]
    [TestCase("cuda:1", "float16", null)]
    [TestCase("CPU", "bf16", null)]
    [TestCase("cuda:x", "auto", "device 'cuda:x' (--device) must be auto, cpu, cuda or cuda:N")]
    [TestCase("tpu", "auto", "device 'tpu' (--device) must be auto, cpu, cuda or cuda:N")]
    [TestCase("cpu", "float16", "precision float16 (--precision) needs CUDA")]
    [TestCase("auto", "half", "precision 'half' (--precision) must be auto, float32, bfloat16 or float16")]
    public void ValidationChecksTheSpellingOnly(string device, string precision, string? error)
    {
        var config = new SimulationConfig { Device = device, Precision = precision };
        if (error is null) Assert.That(config.Validate, Throws.Nothing);
        else Assert.That(config.Validate, Throws.TypeOf<ConfigException>().With.Message.StartsWith(error));
        if (error is null && !torch.cuda.is_available() && device.StartsWith("cuda", StringComparison.Ordinal))
            Assert.That(() => DeviceChoice.Resolve(device, precision),
                Throws.TypeOf<ConfigException>().With.Message.Contains("not available"));
    }
}
