using FedNano.Tests.Experiments;
using NUnit.Framework;

namespace FedNano.Tests.Reliability;

/// <summary>Values that once passed validation and then crashed or ran away: each is one line, exit 2, nothing
/// written.</summary>
[NonParallelizable]
public class ValidationTests
{
    private string dir = "";

    [SetUp] public void SetUp() => dir = TinyRuns.TempDir("validation");
    [TearDown] public void TearDown() => Directory.Delete(dir, true);

    private void AssertRefused(string[] args, string expected)
    {
        string outDir = Path.Combine(dir, "out");
        var (code, err) = Cli.Fednano([.. args, "--out", outDir]);
        Assert.That(code, Is.EqualTo(2), err);
        Cli.AssertOneLine(err);
        Assert.That(err, Does.Contain(expected));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing written");
    }

    private string RawConfig(string fields)
    {
        string path = Path.Combine(dir, "raw.json");
        File.WriteAllText(path, $$"""
            { "synthetic_samples": 40, "clients": 2, "rounds": 1, "model_dir": "{{TinyRuns.BackboneDir}}",
              {{fields}} }
            """);
        return path;
    }

    [TestCase("\"learning_rate\": 1e400", "learning_rate must be at most")]
    [TestCase("\"alpha\": 1e400", "alpha must be > 0 and finite")]
    [TestCase("\"adapter\": null", "adapter is null")]
    [TestCase("\"methods\": null", "methods is null")]
    [TestCase("\"methods\": [null]", "methods must not hold empty or null names")]
    [TestCase("\"feddpa\": null", "feddpa is null")]
    [TestCase("\"dataset\": null", "dataset is null")]
    [TestCase("\"fisher_floor\": -1", "fisher_floor must be in [0, 1]")]
    [TestCase("\"synthetic_samples\": 2000000000", "synthetic_samples must be at most")]
    [TestCase("\"adapter\": { \"rank\": 2000000000 }", "adapter.rank must be at most")]
    [TestCase("\"adapter\": { \"scale\": 1e400 }", "adapter.scale must be > 0 and finite")]
    [TestCase("\"max_grad_norm\": 1e400", "max_grad_norm must be at most")]
    [TestCase("\"on_nonfinite\": \"ignore\"", "on_nonfinite 'ignore'")]
    public void ConfigValuesOutOfRange(string field, string expected) =>
        AssertRefused(["run", "--config", RawConfig(field)], expected);

    [TestCase("--alphas", "1e400", "alpha must be > 0 and finite")]
    [TestCase("--alphas", "NaN", "alpha must be > 0 and finite")]
    [TestCase("--seeds", "99999999999", "--seeds")]
    [TestCase("--clients", "0", "clients must be > 0")]
    [TestCase("--clients", "20000", "clients must be at most")]
    public void SweepListsOutOfRange(string option, string value, string expected) =>
        AssertRefused(["sweep", "--config", Cli.Config(dir), option, value], expected);

    [Test]
    public void ConfigFilesThatAreTooLargeAreNotRead()
    {
        AssertRefused(["run", "--config", "/dev/zero"], "too large");
        string big = Path.Combine(dir, "big.json");
        File.WriteAllText(big, "{" + new string(' ', 2 << 20) + "}");
        AssertRefused(["run", "--config", big], "too large");
    }
}

public class ParamsConfigTests
{
    [Test]
    public void ASimulationConfigIsNotCountedAsAModel()
    {
        string quickstart = Path.Combine(Data.DataFixtures.RepoRoot, "configs", "quickstart.json");
        var error = new StringWriter();
        int code = FedNano.Cli.Commands.ParamsCommand.Build().Parse(["--model", "tiny", "--config", quickstart])
            .Invoke(new System.CommandLine.InvocationConfiguration { Output = new StringWriter(), Error = error });
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("is not a LLaVA model config.json"));
    }
}
