using System.CommandLine;
using System.Globalization;
using FedNano.Experiments;
using FedNano.Reports;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class SweepCommand
{
    public static Command Build()
    {
        var config = new Option<string?>("--config")
        {
            Description = "Base simulation config (JSON). Default: configs/quickstart.json.",
        };
        var alphas = new Option<string?>("--alphas")
        {
            Description = "Dirichlet concentrations, comma-separated (default: the config's alpha).",
        };
        var methods = new Option<string?>("--methods")
        {
            Description = "Methods, comma-separated, or all (default: the config's methods).",
        };
        var seeds = new Option<string?>("--seeds")
        {
            Description = "Seeds, comma-separated (default: the config's seed).",
        };
        var clients = new Option<string?>("--clients")
        {
            Description = "Numbers of clients, comma-separated (default: the config's clients).",
        };
        var outDir = new Option<string>("--out")
        {
            Description = "Sweep folder; started again, finished cells are skipped.",
            Required = true,
        };
        var threads = RunOptions.ThreadsOption();
        var fisher = RunOptions.FisherOption();
        var normalise = RunOptions.FisherNormaliseOption();
        var cmd = new Command("sweep", "Run every (alpha, clients, method, seed) cell of a grid, each a run folder "
            + "under OUT/cells/, and write OUT/aggregate.csv (mean and std over seeds).");
        foreach (var o in new Option[] { config, alphas, methods, seeds, clients, fisher, normalise, outDir, threads })
            cmd.Options.Add(o);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            string path = r.GetValue(config) ?? RunOptions.DefaultConfig();
            var baseConfig = SimulationConfig.Load(path);
            if (r.GetValue(threads) is { } t) baseConfig = baseConfig with { Threads = t };
            baseConfig = RunOptions.WithFisher(baseConfig, r, fisher, normalise);
            baseConfig.Validate();
            var grid = new SweepGrid(
                List(r.GetValue(alphas), "--alphas", double.Parse) ?? [baseConfig.Alpha],
                r.GetValue(methods)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    ?? baseConfig.Methods,
                List(r.GetValue(seeds), "--seeds", int.Parse) ?? [baseConfig.Seed],
                List(r.GetValue(clients), "--clients", int.Parse) ?? [baseConfig.Clients]);
            return Run(baseConfig, grid, r.GetValue(outDir)!);
        }));
        return cmd;
    }

    private static T[]? List<T>(string? text, string option, Func<string, IFormatProvider, T> parse)
    {
        if (text is null) return null;
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => parse(t, CultureInfo.InvariantCulture)).ToArray();
        }
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
        ConsoleOutput.Progress(progress =>
        {
            int total = 0, index = 0;
            outcome = Sweep.Run(baseConfig, grid, dir, new SweepHooks
            {
                Planned = (todo, done) =>
                {
                    total = todo.Count;
                    progress.Log($"sweep {dir}: {Words.Count(todo.Count + done.Count, "cell")}, "
                        + $"{done.Count} finished before (skipped), {todo.Count} to run, "
                        + $"{Words.Count(TorchThreads.Resolve(baseConfig.Threads), "libtorch thread")}");
                    progress.Add("sweep", "sweep", Math.Max(1, total * rounds), total == 0 ? 1 : 0);
                },
                CellStarted = (cell, i) =>
                {
                    index = i;
                    progress.Update("sweep", i * rounds, $"cells {i}/{total} done | {cell.Name} starting");
                },
                Progress = (cell, p) => progress.Update("sweep", index * rounds + p.Round,
                    $"cells {index}/{total} done | {cell.Name} round {p.Round}/{p.Rounds}, "
                        + $"mean accuracy {Words.Percent(p.MeanAccuracy)}"),
                Log = m => progress.Log(m, "yellow"),
            });
            if (total > 0) progress.Update("sweep", total * rounds, $"cells {total}/{total} done");
        });

        var rows = outcome!.Aggregate.Where(x => x.Client == "mean").Select(x => new[]
        {
            x.Clients.ToString(CultureInfo.InvariantCulture), x.Alpha.ToString(CultureInfo.InvariantCulture), x.Method,
            x.Seeds.ToString(CultureInfo.InvariantCulture), x.AccuracyMean.ToString("F1", CultureInfo.InvariantCulture),
            x.AccuracyStd?.ToString("F1", CultureInfo.InvariantCulture) ?? "-",
        }).ToArray();
        ConsoleOutput.WriteTable("Final mean client accuracy (%) over seeds",
            ["clients", "alpha", "method", "seeds", "mean", "std"], rows, keyColumns: 3);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(Path.Combine(dir, Sweep.AggregateFile))}[/]; "
            + $"tables and plots: fednano report {Markup.Escape(dir)}");
        return 0;
    }
}
