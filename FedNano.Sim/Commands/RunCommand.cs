using System.CommandLine;
using System.Globalization;
using FedNano.Experiments;
using FedNano.Reports;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class RunCommand
{
    public static Command Build()
    {
        var options = new RunOptions();
        var outOpt = new Option<string?>("--out")
        {
            Description = "Output folder (default: runs/<data set>-<config>-<time>).",
        };
        var resumeOpt = new Option<string?>("--resume")
        {
            Description = "Continue the run in this folder from its last complete round (its config.json is used).",
        };
        var cmd = new Command("run", "Run a federated simulation into a folder: config.json, run.json, "
            + "checkpoints/ after every round, rounds.csv and summary.csv.");
        foreach (var o in options.All) cmd.Options.Add(o);
        cmd.Options.Add(outOpt);
        cmd.Options.Add(resumeOpt);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            if (r.GetValue(resumeOpt) is { } dir)
            {
                if (options.All.Any(o => o != options.Threads && r.GetResult(o) is { Implicit: false })
                    || r.GetValue(outOpt) is not null)
                    throw new FedNano.ConfigException("--resume continues a run with the config in its folder; "
                        + "drop the other options (--threads may stay)");
                if (!Directory.Exists(dir)) throw new FedNano.ConfigException($"--resume {dir}: folder not found");
                var saved = RunFolder.LoadConfig(dir);
                return Run(r.GetValue(options.Threads) is { } t ? saved with { Threads = t } : saved, dir);
            }
            var config = options.Resolve(r);
            string outDir = r.GetValue(outOpt) ?? DefaultOutDir(config, r.GetValue(options.Config));
            if (File.Exists(outDir) || (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any()))
                throw new FedNano.ConfigException($"output folder {outDir} exists and is not empty; "
                    + $"choose another --out, or continue it with --resume {outDir}");
            return Run(config, outDir);
        }));
        return cmd;
    }

    /// <summary>
    /// The default run folder: <c>runs/&lt;data set&gt;-&lt;config&gt;-&lt;time&gt;</c>, the data set left out when the
    /// config's name has it.
    /// </summary>
    internal static string DefaultOutDir(SimulationConfig config, string? configPath)
    {
        string name = Path.GetFileNameWithoutExtension(configPath ?? "quickstart");
        if (!name.Contains(config.Dataset, StringComparison.OrdinalIgnoreCase)) name = $"{config.Dataset}-{name}";
        return Path.Combine("runs", $"{name}-{DateTime.Now:yyyyMMdd-HHmmss}");
    }

    /// <summary>
    /// Two tables of one row per method: final accuracy (%) per client and mean (cut into several where the console is
    /// too narrow for the clients); then the model parameters (+ Fisher values) one client uploads per round and the
    /// parameters resident on a client with their share of the whole MLLM (<paramref name="modelTotal"/>), with a
    /// legend.
    /// </summary>
    internal static void WriteResults(IReadOnlyList<MethodResult> results, int clients, long modelTotal)
    {
        var inv = CultureInfo.InvariantCulture;
        if (clients <= ListedClients)
        {
            var accuracy = results
                .Select(res => (string[])[res.Method, .. res.ClientAccuracy.Select(Pct), Pct(res.MeanAccuracy)])
                .ToArray();
            ConsoleOutput.WriteTable("Final accuracy (%)",
                ["method", .. Enumerable.Range(0, clients).Select(k => k.ToString(inv)), "mean"], accuracy);
        }
        else
        {
            // too many clients to list: the distribution over the clients evaluated (every client is in summary.csv)
            var summary = results.Select(res =>
            {
                var acc = res.ClientAccuracy.Select((a, k) => (a, k)).Where(x => !double.IsNaN(x.a)).ToArray();
                if (acc.Length == 0) return (string[])[res.Method, "0", "-", "-", "-", "-"];
                double mean = acc.Average(x => x.a), std = Math.Sqrt(acc.Average(x => (x.a - mean) * (x.a - mean)));
                var (worst, best) = (acc.MinBy(x => x.a), acc.MaxBy(x => x.a));
                return [res.Method, acc.Length.ToString(inv), Pct(mean), Pct(std),
                    $"{Pct(worst.a)} (client {worst.k})", $"{Pct(best.a)} (client {best.k})"];
            }).ToArray();
            ConsoleOutput.WriteTable($"Final accuracy (%) over {clients.ToString("N0", inv)} clients",
                ["method", "evaluated", "mean", "std", "worst", "best"], summary);
        }
        var costs = results.Select(res => new[]
        {
            res.Method, res.UploadedPerRound.ToString("N0", inv), res.FisherPerRound.ToString("N0", inv),
            res.ClientResident is { } c
                ? $"{c.ToString("N0", inv)} ({(100.0 * c / modelTotal).ToString("F1", inv)}%)"
                : "-",
        }).ToArray();
        ConsoleOutput.WriteTable("Costs per client", ["method", "up/round", "Fisher/round", "client params"], costs,
            legend: "up/round: parameters one client uploads per round (Fisher/round: Fisher values besides them); "
                + "client params: parameters held by one client "
                + $"(share of the whole MLLM, {modelTotal.ToString("N0", inv)}); "
                + "per client and round in rounds.csv.");
        static string Pct(double fraction) =>
            double.IsNaN(fraction) ? "-" : (100 * fraction).ToString("F1", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Most clients listed one by one on screen; past it the tables summarise (the files hold every client).
    /// </summary>
    private const int ListedClients = 20;

    private static int Run(SimulationConfig config, string outDir)
    {
        if (RunFolder.IsFinished(outDir))
        {
            AnsiConsole.MarkupLine($"{Markup.Escape(outDir)} holds a finished run; nothing to do");
            return 0;
        }
        RunOutcome? outcome = null;
        ConsoleOutput.Progress(progress =>
        {
            outcome = RunFolder.Run(config, outDir, new RunHooks
            {
                Log = m => progress.Log(m),
                Started = (sim, methods, from) => Started(progress, config, outDir, sim, methods, from),
                Progress = p => progress.Update(p.Method, p.Round,
                    $"round {p.Round}/{p.Rounds}, mean accuracy {Words.Percent(p.MeanAccuracy)}"),
                MethodFinished = r => progress.Update(r.Method, r.Method == MethodCatalog.ZeroShot ? 1 : config.Rounds,
                    $"done, mean accuracy {Words.Percent(r.MeanAccuracy)}"),
            });
        });

        var results = outcome!.Results;
        WriteResults(results, config.Clients, outcome.ModelParameters);
        var breakdowns = RunFolder.Breakdowns(config, results);
        if (breakdowns.Count > 0) WriteBreakdown(breakdowns);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(outDir)}[/]: "
            + "summary.csv, rounds.csv, config.json, run.json, checkpoints/"
            + (breakdowns.Count > 0 ? $", {RunFolder.BreakdownFile}" : "")
            + (config.IsRealDataset ? ", predictions-<method>.json" : ""));
        return 0;
    }

    /// <summary>What the run is (config, backbone, threads, clients' data), and one progress task per method.</summary>
    private static void Started(IProgressLines progress, SimulationConfig config, string outDir,
        FederatedSimulation sim, IReadOnlyList<string> methods, RunProgress? from)
    {
        var inv = CultureInfo.InvariantCulture;
        progress.Log($"FedNano.Sim {config.Dataset}: {Words.Count(config.Clients, "client")}, "
            + $"alpha {config.Alpha.ToString(inv)}, {Words.Count(config.Rounds, "round")} of "
            + $"{Words.Count(config.LocalEpochs, "local epoch")}, rank {config.Adapter.Rank}, "
            + $"seed {config.Seed}; methods {string.Join(", ", methods.Skip(1))}; run folder {outDir}");
        progress.Log($"backbone {config.Backbone} on {sim.Edge.Device} "
            + $"({sim.Edge.FrozenParameters().First().parameter.dtype}, adapters float32), "
            + $"{Words.Count(TorchSharp.torch.get_num_threads(), "libtorch thread")}");
        if (sim.Data.Clients.Count <= ListedClients)
            progress.Log("clients' train/test samples: "
                + string.Join("  ", sim.Data.Clients.Select(c => $"{c.Index}:{c.Train.Count}/{c.Test.Count}")));
        else
        {
            var train = sim.Data.Clients.Select(c => c.Train.Count).Order().ToArray();
            progress.Log($"clients' train samples: min {train[0]}, median {train[train.Length / 2]}, max {train[^1]}, "
                + $"{sim.Data.Clients.Sum(c => c.Test.Count)} test samples in all "
                + "(per client: rounds.csv, summary.csv)");
        }
        if (sim.Ranks is { } ranks && ranks.Ranks.Count <= ListedClients)
            progress.Log("clients' adapter ranks: " + string.Join("  ", ranks.Ranks.Select((r, k) => $"{k}:{r}"))
                + $" ({config.Adapter.RankMerging ?? "pad"} merging)");
        if (config.MissingModality is not null && sim.Data.Clients.Count <= ListedClients)
            progress.Log("clients' modalities: " + string.Join("  ", sim.Data.Clients.Select(c =>
                $"{c.Index}:{c.Train.FirstOrDefault()?.MetaValue(MissingModalityConfig.MetaKey)}")));
        if (from is not null)
            progress.Log($"continuing from checkpoint {from.Step}: {Words.Count(from.Completed.Count, "method")} done"
                + (from.Current is { } c ? $", {c.Method} at round {c.Round}" : ""));
        foreach (var m in methods)
        {
            double max = m == MethodCatalog.ZeroShot ? 1 : config.Rounds;
            double done = from?.Completed.Any(x => x.Method == m) == true ? max
                : from?.Current is { } cur && cur.Method == m ? cur.Round : 0;
            progress.Add(m, $"{m,-12}", max, done);
        }
    }

    /// <summary>
    /// Accuracy (%) per category (rows) and method (columns) over all clients' final test predictions.
    /// </summary>
    private static void WriteBreakdown(
        IReadOnlyList<(string Method, IReadOnlyList<Evaluation.CategoryAccuracy> Rows)> breakdowns)
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = breakdowns[0].Rows.Select((row, i) => (string[])[row.Group, row.Category, row.Count.ToString(inv),
            .. breakdowns.Select(b => double.IsNaN(b.Rows[i].Accuracy) ? "-" : b.Rows[i].Accuracy.ToString("F1", inv))])
            .ToArray();
        ConsoleOutput.WriteTable("Final test accuracy (%) per category, all clients' test parts",
            ["group", "category", "n", .. breakdowns.Select(b => b.Method)], rows, keyColumns: 3);
    }
}
