using System.CommandLine;
using System.Globalization;
using FedNano.Experiments;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class SweepCommand
{
    public static Command Build()
    {
        var config = new Option<string?>("--config") { Description = "Base simulation config (JSON). Default: configs/quickstart.json." };
        var alphas = new Option<string?>("--alphas") { Description = "Dirichlet concentrations, comma-separated (default: the config's alpha)." };
        var methods = new Option<string?>("--methods") { Description = "Methods, comma-separated, or all (default: the config's methods)." };
        var seeds = new Option<string?>("--seeds") { Description = "Seeds, comma-separated (default: the config's seed)." };
        var clients = new Option<string?>("--clients") { Description = "Numbers of clients, comma-separated (default: the config's clients)." };
        var outDir = new Option<string>("--out") { Description = "Sweep folder; started again, finished cells are skipped.", Required = true };
        var cmd = new Command("sweep", "Run every (alpha, clients, method, seed) cell of a grid, each a run folder under OUT/cells/, and write OUT/aggregate.csv (mean and std over seeds).");
        foreach (var o in new Option[] { config, alphas, methods, seeds, clients, outDir }) cmd.Options.Add(o);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            string path = r.GetValue(config) ?? RunOptions.DefaultConfig();
            var baseConfig = SimulationConfig.Load(path);
            var grid = new SweepGrid(
                List(r.GetValue(alphas), "--alphas", double.Parse) ?? [baseConfig.Alpha],
                r.GetValue(methods)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? baseConfig.Methods,
                List(r.GetValue(seeds), "--seeds", int.Parse) ?? [baseConfig.Seed],
                List(r.GetValue(clients), "--clients", int.Parse) ?? [baseConfig.Clients]);
            return Run(baseConfig, grid, r.GetValue(outDir)!);
        }));
        return cmd;
    }

    private static T[]? List<T>(string? text, string option, Func<string, IFormatProvider, T> parse)
    {
        if (text is null) return null;
        try { return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => parse(t, CultureInfo.InvariantCulture)).ToArray(); }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new FedNano.ConfigException($"{option} '{text}': expected comma-separated numbers in range, " +
                                              $"e.g. 0.1,0.5,1 ({e.Message})");
        }
    }

    private static int Run(SimulationConfig baseConfig, SweepGrid grid, string dir)
    {
        int rounds = baseConfig.Rounds;
        SweepOutcome? outcome = null;
        AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                int total = 0, skipped = 0, index = 0;
                outcome = Sweep.Run(baseConfig, grid, dir, new SweepHooks
                {
                    Planned = (todo, done) =>
                    {
                        total = todo.Count; skipped = done.Count;
                        AnsiConsole.MarkupLine($"sweep [bold]{Markup.Escape(dir)}[/]: {todo.Count + done.Count} cells, {done.Count} finished before (skipped), {todo.Count} to run");
                        task = ctx.AddTask("sweep", maxValue: Math.Max(1, total * rounds));
                        if (total == 0) task.Value = task.MaxValue;
                    },
                    CellStarted = (cell, i) =>
                    {
                        index = i;
                        task!.Value = i * rounds;
                        task.Description = $"cells {i}/{total} done | {cell.Name} starting";
                    },
                    Progress = (cell, p) =>
                    {
                        task!.Value = index * rounds + p.Round;
                        task.Description = $"cells {index}/{total} done | {cell.Name} round {p.Round}/{p.Rounds} mean acc {p.MeanAccuracy:P1}";
                    },
                    Log = m => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(m)}[/]"),
                });
                if (task is not null) { task.Value = task.MaxValue; task.Description = $"cells {total}/{total} done"; }
            });

        var rows = outcome!.Aggregate.Where(x => x.Client == "mean").ToArray();
        var table = new Table().Title("Final mean client accuracy over seeds").AddColumns("clients", "alpha", "method", "seeds", "mean", "std");
        foreach (var x in rows)
            table.AddRow(x.Clients.ToString(CultureInfo.InvariantCulture), x.Alpha.ToString(CultureInfo.InvariantCulture), x.Method, x.Seeds.ToString(CultureInfo.InvariantCulture),
                x.AccuracyMean.ToString("P1", CultureInfo.InvariantCulture), x.AccuracyStd?.ToString("P1", CultureInfo.InvariantCulture) ?? "-");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(Path.Combine(dir, Sweep.AggregateFile))}[/]; tables and plots: fednano report {Markup.Escape(dir)}");
        return 0;
    }
}
