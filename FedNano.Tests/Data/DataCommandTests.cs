using FedNano.Cli.Commands;
using NUnit.Framework;

namespace FedNano.Tests.Data;

[NonParallelizable]
public class DataCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var (so, se) = (new StringWriter(), new StringWriter());
        Console.SetOut(so); Console.SetError(se);
        try { return (DataCommands.Build().Parse(args).Invoke(), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }

    [Test]
    public void InspectPrintsTheCounts()
    {
        var (code, output, _) = Run("inspect", "--dataset", "scienceqa", "--data-root", DataFixtures.ScienceQa);
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("problems: 150").And.Contain("train 50, val 50, test 50")
            .And.Contain("natural science 97, language science 37, social science 16")
            .And.Contain("with an image: 67").And.Contain("found: 0"));
        (code, output, _) = Run("inspect", "--dataset", "iconqa", "--data-root", DataFixtures.IconQa);
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("questions: 150").And.Contain("choose_img 50, choose_txt 50, fill_in_blank 50")
            .And.Contain("missing or unreadable: 0"));
    }

    [Test]
    public void BadInputIsOneLineOnStderrAndExitTwo()
    {
        var (code, output, err) = Run("inspect", "--dataset", "cifar", "--data-root", DataFixtures.ScienceQa);
        Assert.That((code, output), Is.EqualTo((2, "")));
        Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.Contain("'cifar'"));
        (code, _, err) = Run("inspect", "--dataset", "iconqa", "--data-root", DataFixtures.ScienceQa);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("iconqa_data"));
    }
}
