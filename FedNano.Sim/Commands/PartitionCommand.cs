using System.CommandLine;
using FedNano.Partitioning;
using FedNano.Simulation;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class PartitionCommand
{
    public static Command Build()
    {
        var options = new RunOptions();
        var cmd = new Command("partition",
            "Print each client's label histogram for a config's partition (no training).");
        foreach (var o in options.All) cmd.Options.Add(o);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            var config = options.Resolve(r);
            var backbone = Experiment.LoadBackbone(config);
            var samples = Experiment.LoadSamples(config, backbone);
            var data = FederatedData.Partition(samples, config);
            var all = data.Clients.SelectMany(c => c.Train.Concat(c.Test)).ToArray();
            var labels = all.Select(s => s.MetaValue(config.PartitionBy)).ToArray();
            int offset = 0;
            var parts = data.Clients.Select(c =>
            {
                var p = Enumerable.Range(offset, c.Train.Count + c.Test.Count).ToArray();
                offset += p.Length;
                return p;
            }).ToArray();
            var (names, counts) = DirichletPartitioner.Histogram(labels, parts);
            string[] headers = ["client", .. names, "total", "train/test"];
            var rows = Enumerable.Range(0, parts.Length).Select(k => (string[])[k.ToString(),
                .. names.Select((_, j) => counts[k, j].ToString()),
                parts[k].Length.ToString(), $"{data.Clients[k].Train.Count}/{data.Clients[k].Test.Count}"]).ToArray();
            ConsoleOutput.WriteTable($"{config.PartitionBy} per client "
                + $"({config.PartitionScheme} scheme, alpha {config.Alpha}, seed {config.Seed})", headers, rows);
            return 0;
        }));
        return cmd;
    }
}
