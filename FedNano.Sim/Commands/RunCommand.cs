using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class RunCommand
{
    public static Command Build()
    {
        var options = new RunOptions();
        var outOpt = new Option<string?>("--out") { Description = "Output folder (default: runs/<config>-<time>)." };
        var cmd = new Command("run", "Run a federated simulation and write rounds.csv and summary.csv.");
        foreach (var o in options.All) cmd.Options.Add(o);
        cmd.Options.Add(outOpt);
        cmd.SetAction(r => CliErrors.Guard(() => Run(options.Resolve(r), r.GetValue(outOpt), r.GetValue(options.Config))));
        return cmd;
    }

    /// <summary>
    /// One row per method: final accuracy per client and mean, model parameters (+ Fisher values) one client uploads per
    /// round, and the parameters resident on a client with their share of the whole MLLM (<paramref name="modelTotal"/>).
    /// </summary>
    internal static Table ResultTable(IReadOnlyList<MethodResult> results, int clients, long modelTotal)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Title("Final test accuracy (%) per client 0, 1, ... and mean, and costs").AddColumn(new TableColumn("method").NoWrap());
        for (int k = 0; k < clients; k++) table.AddColumn(new TableColumn(k.ToString(inv)).RightAligned());
        table.AddColumn(new TableColumn("[bold]mean[/]").RightAligned())
            .AddColumn(new TableColumn("up/round").RightAligned())
            .AddColumn(new TableColumn("client params").RightAligned().NoWrap());
        foreach (var res in results)
        {
            string up = res.UploadedPerRound.ToString("N0", inv) + (res.FisherPerRound > 0 ? $" +{res.FisherPerRound.ToString("N0", inv)} F" : "");
            string storage = res.ClientResident is { } c ? $"{c.ToString("N0", inv)} ({(100.0 * c / modelTotal).ToString("F1", inv)}%)" : "-";
            table.AddRow([Markup.Escape(res.Method), .. res.ClientAccuracy.Select(a => (100 * a).ToString("F1", inv)), $"[bold]{(100 * res.MeanAccuracy).ToString("F1", inv)}[/]", up, storage]);
        }
        table.Caption($"up/round: parameters one client uploads per round (+F: Fisher values); client params: parameters held by one client (share of the whole MLLM, {modelTotal.ToString("N0", inv)}); per client and round in rounds.csv");
        return table;
    }

    private static int Run(SimulationConfig config, string? outDir, string? configPath)
    {
        string name = Path.GetFileNameWithoutExtension(configPath ?? "quickstart");
        outDir ??= Path.Combine("runs", $"{name}-{DateTime.Now:yyyyMMdd-HHmmss}");
        if (File.Exists(outDir) || (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any()))
            throw new FedNano.ConfigException($"output folder {outDir} exists and is not empty; choose another --out");
        var methods = MethodCatalog.Expand(config.Methods);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sim = Experiment.Create(config, AnsiConsole.WriteLine);
        AnsiConsole.MarkupLine($"[bold]FedNano.Sim[/] {config.Dataset}: {config.Clients} clients, alpha {config.Alpha.ToString(CultureInfo.InvariantCulture)}, "
            + $"{config.Rounds} rounds, rank {config.Adapter.Rank}, seed {config.Seed}; methods {string.Join(", ", methods)}");
        AnsiConsole.MarkupLine($"backbone {config.Backbone} on {sim.Edge.Device} ({sim.Edge.FrozenParameters().First().parameter.dtype}, adapters float32)");
        AnsiConsole.MarkupLine($"clients' train/test samples: {string.Join("  ", sim.Data.Clients.Select(c => $"{c.Index}:{c.Train.Count}/{c.Test.Count}"))}");

        var results = new List<MethodResult>();
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var zs = ctx.AddTask("zero-shot", maxValue: 1);
                results.Add(sim.ZeroShot());
                zs.Increment(1);
                zs.Description = $"zero-shot      mean acc {results[0].MeanAccuracy:P1}";
                foreach (var m in methods)
                {
                    var task = ctx.AddTask($"{m,-14}", maxValue: config.Rounds);
                    void OnProgress(SimulationProgress p)
                    {
                        task.Value = p.Round;
                        task.Description = $"{m,-14} round {p.Round}/{p.Rounds} mean acc {p.MeanAccuracy:P1}";
                    }
                    sim.Progress += OnProgress;
                    results.Add(sim.Run(m));
                    sim.Progress -= OnProgress;
                }
            });

        AnsiConsole.Write(ResultTable(results, config.Clients, sim.Architecture.Total));
        var breakdowns = config.IsRealDataset
            ? results.Select(res => (res.Method, Evaluation.Breakdowns.For(config.Dataset, res.FinalRecords))).ToArray()
            : [];
        if (breakdowns.Length > 0) AnsiConsole.Write(BreakdownTable(breakdowns));

        string tmp = outDir.TrimEnd('/', '\\') + ".partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        File.WriteAllText(Path.Combine(tmp, "config.json"), config.ToJson());
        ResultFiles.Write(Path.Combine(tmp, "rounds.csv"), ResultFiles.Rounds(results));
        ResultFiles.Write(Path.Combine(tmp, "summary.csv"), ResultFiles.Summary(results, sim.Architecture.Total));
        var written = new List<string> { "summary.csv", "rounds.csv", "config.json", "run.json" };
        if (breakdowns.Length > 0)
        {
            Evaluation.Breakdowns.WriteCsv(Path.Combine(tmp, "breakdown.csv"), breakdowns);
            written.Add("breakdown.csv");
            foreach (var res in results)
            {
                string file = $"predictions-{res.Method}.json";
                Evaluation.Breakdowns.WriteResultsJson(Path.Combine(tmp, file), res.FinalRecords);
                written.Add(file);
            }
        }
        File.WriteAllText(Path.Combine(tmp, "run.json"), JsonSerializer.Serialize(new
        {
            version = typeof(FederatedSimulation).Assembly.GetName().Version?.ToString(),
            seed = config.Seed,
            machine = Environment.MachineName,
            os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            threads = TorchSharp.torch.get_num_threads(),
            backbone = config.Backbone,
            device = sim.Edge.Device.ToString(),
            precision = sim.Edge.FrozenParameters().First().parameter.dtype.ToString(),
            finished = DateTime.UtcNow.ToString("o"),
            seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
        }, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(outDir)) Directory.Delete(outDir);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outDir))!);
        Directory.Move(tmp, outDir);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(outDir)}[/]: {string.Join(", ", written)} ({clock.Elapsed.TotalMinutes:F1} min)");
        return 0;
    }

    /// <summary>Accuracy (%) per category (rows) and method (columns) over all clients' final test predictions.</summary>
    private static Table BreakdownTable(IReadOnlyList<(string Method, IReadOnlyList<Evaluation.CategoryAccuracy> Rows)> breakdowns)
    {
        var table = new Table().Title("Final test accuracy (%) per category, all clients' test parts").AddColumn("group").AddColumn("category").AddColumn(new TableColumn("n").RightAligned());
        foreach (var (method, _) in breakdowns) table.AddColumn(new TableColumn(Markup.Escape(method)).RightAligned());
        var first = breakdowns[0].Rows;
        for (int i = 0; i < first.Count; i++)
            table.AddRow([Markup.Escape(first[i].Group), Markup.Escape(first[i].Category), first[i].Count.ToString(CultureInfo.InvariantCulture),
                .. breakdowns.Select(b => double.IsNaN(b.Rows[i].Accuracy) ? "-" : b.Rows[i].Accuracy.ToString("F1", CultureInfo.InvariantCulture))]);
        return table;
    }
}
