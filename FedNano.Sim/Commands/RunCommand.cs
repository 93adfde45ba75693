using System.CommandLine;
using System.Globalization;
using FedNano.Experiments;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class RunCommand
{
    public static Command Build()
    {
        var options = new RunOptions();
        var outOpt = new Option<string?>("--out") { Description = "Output folder (default: runs/<config>-<time>)." };
        var resumeOpt = new Option<string?>("--resume") { Description = "Continue the run in this folder from its last complete round (its config.json is used)." };
        var cmd = new Command("run", "Run a federated simulation into a folder: config.json, run.json, checkpoints/ after every round, rounds.csv and summary.csv.");
        foreach (var o in options.All) cmd.Options.Add(o);
        cmd.Options.Add(options.Execution);
        cmd.Options.Add(outOpt);
        cmd.Options.Add(resumeOpt);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            if (r.GetValue(resumeOpt) is { } dir)
            {
                bool others = options.All.Append(options.Execution).Any(o => r.GetResult(o) is not null);
                if (others || r.GetValue(outOpt) is not null)
                    throw new FedNano.ConfigException("--resume continues a run with the config in its folder; drop the other options");
                if (!Directory.Exists(dir)) throw new FedNano.ConfigException($"--resume {dir}: folder not found");
                return Run(RunFolder.LoadConfig(dir), dir);
            }
            var config = options.Resolve(r);
            string name = Path.GetFileNameWithoutExtension(r.GetValue(options.Config) ?? "quickstart");
            string outDir = r.GetValue(outOpt) ?? Path.Combine("runs", $"{name}-{DateTime.Now:yyyyMMdd-HHmmss}");
            if (File.Exists(outDir) || (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any()))
                throw new FedNano.ConfigException($"output folder {outDir} exists and is not empty; choose another --out, or continue it with --resume {outDir}");
            return Run(config, outDir);
        }));
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

    private static int Run(SimulationConfig config, string outDir)
    {
        if (RunFolder.IsFinished(outDir))
        {
            AnsiConsole.MarkupLine($"{Markup.Escape(outDir)} holds a finished run; nothing to do");
            return 0;
        }
        RunOutcome? outcome = null;
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                outcome = RunFolder.Run(config, outDir, new RunHooks
                {
                    Log = m => AnsiConsole.MarkupLine(Markup.Escape(m)),
                    Started = (sim, methods, from) =>
                    {
                        AnsiConsole.MarkupLine($"[bold]FedNano.Sim[/] {config.Dataset}: {config.Clients} clients, alpha {config.Alpha.ToString(CultureInfo.InvariantCulture)}, "
                            + $"{config.Rounds} rounds, rank {config.Adapter.Rank}, seed {config.Seed}; methods {string.Join(", ", methods.Skip(1))}");
                        AnsiConsole.MarkupLine($"backbone {config.Backbone} on {sim.Edge.Device} ({sim.Edge.FrozenParameters().First().parameter.dtype}, adapters float32)");
                        AnsiConsole.MarkupLine($"clients' train/test samples: {string.Join("  ", sim.Data.Clients.Select(c => $"{c.Index}:{c.Train.Count}/{c.Test.Count}"))}");
                        if (from is not null)
                            AnsiConsole.MarkupLine($"continuing from checkpoint {from.Step}: {from.Completed.Count} method(s) done" + (from.Current is { } c ? $", {c.Method} at round {c.Round}" : ""));
                        foreach (var m in methods)
                        {
                            var task = ctx.AddTask($"{m,-14}", maxValue: m == MethodCatalog.ZeroShot ? 1 : config.Rounds);
                            if (from?.Completed.Any(x => x.Method == m) == true) task.Value = task.MaxValue;
                            else if (from?.Current is { } cur && cur.Method == m) task.Value = cur.Round;
                            tasks[m] = task;
                        }
                    },
                    Progress = p =>
                    {
                        if (!tasks.TryGetValue(p.Method, out var task)) return;
                        task.Value = p.Round;
                        task.Description = $"{p.Method,-14} round {p.Round}/{p.Rounds} mean acc {p.MeanAccuracy:P1}";
                    },
                });
                foreach (var t in tasks.Values) t.Value = t.MaxValue;
            });

        var results = outcome!.Results;
        AnsiConsole.Write(ResultTable(results, config.Clients, outcome.ModelParameters));
        var breakdowns = RunFolder.Breakdowns(config, results);
        if (breakdowns.Count > 0) AnsiConsole.Write(BreakdownTable(breakdowns));
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(outDir)}[/]: summary.csv, rounds.csv, config.json, run.json, checkpoints/"
            + (breakdowns.Count > 0 ? $", {RunFolder.BreakdownFile}, predictions-<method>.json" : ""));
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
