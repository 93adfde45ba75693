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
        int code = ParamsCommand.Build().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private static string RowOf(string text, string method) =>
        text.Split('\n').Single(l => l.Split('│', '|').Select(c => c.Trim()).Contains(method));

    [Test]
    public void Llava15Rank64PrintsTheHeadlineNumbers()
    {
        var (code, output, error) = Run("--model", "llava-1.5-7b", "--rank", "64");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), error);
            Assert.That(output, Does.Contain("Uploaded parameters per round"));
            Assert.That(RowOf(output, "FedNano"), Does.Contain("1,048,576"));
            Assert.That(RowOf(output, "FedNano"), Does.Contain(ParamsCommand.Percent(1_048_576.0 / FedNano.Ledgers.ArchitectureParameters.Llava15_7B.Total)));
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

    [TestCase(0.000148459, "0.01485%")]
    [TestCase(0.06465, "6.465%")]
    [TestCase(1.0453, "104.53%")]
    [TestCase(0, "0%")]
    public void PercentKeepsFourSignificantDigits(double fraction, string expected) =>
        Assert.That(ParamsCommand.Percent(fraction), Is.EqualTo(expected));
}
