using System.CommandLine;
using FedNano.Cli.Commands;
using NUnit.Framework;

namespace FedNano.Tests.Ledgers;

public class ParamsCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ParamsCommand.Build().Parse(args)
            .Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>
    /// The rows of <paramref name="method"/> (a table too wide for 80 columns is cut into several) joined.
    /// </summary>
    private static string RowOf(string text, string method) =>
        string.Join(" ", text.Split('\n').Where(l => l.Split('│', '|').Select(c => c.Trim()).Contains(method)));

    [Test]
    public void Llava15Rank64PrintsTheHeadlineNumbers()
    {
        var (code, output, error) = Run("--model", "llava-1.5-7b", "--rank", "64");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), error);
            Assert.That(output, Does.Contain("up/round"));
            Assert.That(output.Split('\n').Max(l => l.TrimEnd().Length), Is.LessThanOrEqualTo(80),
                "fits an 80-column terminal");
            Assert.That(RowOf(output, "FedNano"), Does.Contain("1,048,576"));
            Assert.That(RowOf(output, "FedNano"), Does.Contain(
                ParamsCommand.Percent(1_048_576.0 / FedNano.Ledgers.ArchitectureParameters.Llava15_7B.Total)));
            Assert.That(RowOf(output, "FedDPA-F"), Does.Contain("180,887,552"));
        });
    }

    [TestCase("--model", "gpt-5")]
    [TestCase("--model", "llava-1.5-7b", "--rank", "0")]
    [TestCase("--model", "minigpt4-7b", "--rank", "-3")]
    public void UsageErrorsPrintOneLineAndExit2(params string[] args)
    {
        var (code, output, error) = Run(args);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
            Assert.That(output, Is.Empty, "nothing half-printed");
        });
    }

    [Test]
    public void ConfigFileIsCounted()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            string path = Path.Combine(dir.FullName, "config.json");
            new FedNano.Models.LlavaConfig().Save(path);
            var (code, output, _) = Run("--model", "tiny", "--config", path);
            Assert.That(code, Is.EqualTo(0));
            Assert.That(RowOf(output, "FedDPA-F"), Does.Contain("180,887,552"));
        }
        finally { dir.Delete(recursive: true); }
    }

    [TestCase(0.000148459, "0.015%")]
    [TestCase(0.06465, "6.465%")]
    [TestCase(1.0453, "104.530%")]
    [TestCase(0, "0.000%")]
    public void PercentHasThreeDecimalsEverywhere(double fraction, string expected) =>
        Assert.That(ParamsCommand.Percent(fraction), Is.EqualTo(expected));
}
