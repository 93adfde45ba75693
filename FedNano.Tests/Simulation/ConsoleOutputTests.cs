using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FedNano.Cli.Commands;
using FedNano.Tests.Experiments;
using NUnit.Framework;
using Spectre.Console;

namespace FedNano.Tests.Simulation;

/// <summary>
/// What <c>fednano</c> writes when its output is a file or a pipe: a readable log and tables no wider than 80 columns.
/// </summary>
[NonParallelizable]
public class ConsoleOutputTests
{
    [Category("Slow")]
    [Test]
    public void PipedRunIsATimestampedLogWithTablesOf80ColumnsAndRecordsItsThreads()
    {
        string dir = TinyRuns.TempDir("piped");
        string config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, (TinyRuns.Config("fednano", "fedavg") with { Rounds = 2, Clients = 3 }).ToJson());
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "fednano"),
            ["run", "--config", config, "--threads", "1", "--out", Path.Combine(dir, "run")])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        string log = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, process.StandardError.ReadToEnd());

        var lines = log.Split('\n');
        Assert.That(log.IndexOfAny(['\x1b', '\r']), Is.EqualTo(-1), "no terminal control codes, no redrawn frames");
        Assert.That(lines.Where(l => l.StartsWith('│') || l.StartsWith('┌')).Max(l => l.Length),
            Is.LessThanOrEqualTo(80), "tables fit 80 columns");
        var progress = lines.Where(l => l.Contains("round 1/2") || l.Contains("round 2/2")).ToArray();
        Assert.That(progress, Has.Length.EqualTo(4), "one line per method and round");
        Assert.That(progress.All(l => Regex.IsMatch(l,
                @"^\d\d:\d\d:\d\d \[ *\d+%\] (fednano|fedavg) +round \d/2, mean accuracy \d+\.\d %")),
            string.Join('\n', progress));
        Assert.That(lines.Count(l => l.Contains("done, mean accuracy")), Is.EqualTo(3),
            "zero-shot, fednano, fedavg each end with a line");
        Assert.That(log, Does.Contain("2 rounds of 1 local epoch").And.Contain("3 clients"));
        Assert.That(lines.Count(l => Regex.IsMatch(l, @"^│ (zero-shot|fednano|fedavg) ")), Is.EqualTo(6),
            "accuracy and costs tables, whole");

        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run", "run.json")))!;
        Assert.That((int)info["threads"]!, Is.EqualTo(1));
        Assert.That((int)info["interop_threads"]!, Is.GreaterThanOrEqualTo(1));
        Assert.That((int?)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run", "config.json")))!["threads"],
            Is.EqualTo(1));
    }

    [Test]
    public void WideTablesAreCutIntoTablesThatFitKeepingTheKeyColumn()
    {
        string[] headers = ["method", .. Enumerable.Range(0, 12).Select(k => k.ToString()), "mean", "up/round"];
        var rows = new[] { "zero-shot", "fednano-ef" }
            .Select(m => (string[])[m, .. Enumerable.Repeat("100.0", 13), "1,048,576 +1,048,576 F"]).ToArray();
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
            { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        console.Profile.Width = 80;
        var tables = ConsoleOutput.Fit("accuracy", headers, rows, width: 80);
        foreach (var t in tables) console.Write(t);
        var lines = output.ToString().Split('\n');
        Assert.That(tables, Has.Count.GreaterThan(1));
        Assert.That(lines.Max(l => l.TrimEnd().Length), Is.LessThanOrEqualTo(80));
        Assert.That(lines.Count(l => l.Contains("fednano-ef")), Is.EqualTo(tables.Count),
            "the method column in every part");
        Assert.That(output.ToString(), Does.Contain("1,048,576 +1,048,576 F"), "no cell is cut");
        foreach (var h in headers.Skip(1))
            Assert.That(lines.Any(l => Regex.IsMatch(l, $@"│ +{Regex.Escape(h)} │")), h);
    }
}

/// <summary>Many clients: the run table summarises them instead of listing them.</summary>
public class ManyClientsTableTests
{
    [Test]
    public void MoreClientsThanFitAreSummarisedWithWorstAndBest()
    {
        var config = TinySetup.Config() with
            { Clients = 30, SyntheticSamples = 240, MinPartitionSize = 4, PartitionScheme = "client" };
        var zero = TinySetup.Simulation(config).ZeroShot();
        var output = new StringWriter();
        var before = AnsiConsole.Console;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
            { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        AnsiConsole.Console.Profile.Width = 80;
        try { FedNano.Cli.Commands.RunCommand.WriteResults([zero], config.Clients, 1000); }
        finally { AnsiConsole.Console = before; }
        var text = output.ToString();
        var acc = zero.ClientAccuracy;
        int worst = Array.IndexOf(acc, acc.Min()), best = Array.IndexOf(acc, acc.Max());
        Assert.That(text, Does.Contain("over 30 clients").And.Contain("worst").And.Contain("best"));
        Assert.That(text, Does.Contain($"(client {worst})").And.Contain($"(client {best})"));
        Assert.That(text.Split('\n').Max(l => l.TrimEnd().Length), Is.LessThanOrEqualTo(80));
    }
}

/// <summary>The thread count a run gets, and where a run folder goes by default.</summary>
public class ThreadsAndFolderNameTests
{
    [Test]
    public void ThreadsComeFromTheConfigElseOmpNumThreadsElseTheDefault()
    {
        string? before = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        try
        {
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", "3");
            Assert.That(FedNano.Simulation.TorchThreads.Resolve(2), Is.EqualTo(2));
            Assert.That(FedNano.Simulation.TorchThreads.Resolve(null), Is.EqualTo(3));
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", null);
            Assert.That(FedNano.Simulation.TorchThreads.Resolve(null),
                Is.EqualTo(Math.Max(1, Environment.ProcessorCount / 4)));
        }
        finally { Environment.SetEnvironmentVariable("OMP_NUM_THREADS", before); }
        var e = Assert.Throws<ConfigException>(
            () => (new FedNano.Simulation.SimulationConfig { Threads = 0 }).Validate())!;
        Assert.That(e.Message, Does.Contain("threads"));
    }

    [Test]
    public void RunFoldersAreNamedAfterTheDataSetAndTheConfig()
    {
        var synthetic = new FedNano.Simulation.SimulationConfig();
        var iconqa = synthetic with { Dataset = "iconqa", DataRoot = "x" };
        Assert.That(Path.GetFileName(RunCommand.DefaultOutDir(synthetic, null)),
            Does.Match(@"^synthetic-quickstart-\d{8}-\d{6}$"));
        Assert.That(Path.GetFileName(RunCommand.DefaultOutDir(iconqa, "configs/quickstart.json")),
            Does.StartWith("iconqa-quickstart-"));
        Assert.That(Path.GetFileName(RunCommand.DefaultOutDir(iconqa, "configs/main-iconqa-llava-tiny.json")),
            Does.StartWith("main-iconqa-llava-tiny-"));
    }
}
