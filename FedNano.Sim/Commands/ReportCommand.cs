using System.CommandLine;
using FedNano.Reports;
using Spectre.Console;

namespace FedNano.Cli.Commands;

internal static class ReportCommand
{
    public static Command Build()
    {
        var dir = new Argument<string>("DIR")
        {
            Description = "A sweep folder (fednano sweep --out) or a run folder (fednano run --out).",
        };
        var outDir = new Option<string?>("--out")
        {
            Description = "Where to write report.md and plots/ (default: DIR).",
        };
        var cmd = new Command("report",
            "Write Markdown tables shaped like the paper's and PNG plots of a finished sweep or run.");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(outDir);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            string d = r.GetValue(dir)!;
            if (!Directory.Exists(d)) throw new FedNano.ConfigException($"{d}: folder not found");
            var report = SweepReport.Load(d, out int unfinished);
            var files = report.Write(r.GetValue(outDir) ?? d, Path.GetFileName(Path.GetFullPath(d).TrimEnd('/')),
                unfinished);
            if (unfinished > 0)
                AnsiConsole.MarkupLine($"[yellow]{FedNano.Reports.Words.Count(unfinished, "unfinished cell")} left out;"
                    + " run the sweep again to finish them[/]");
            foreach (var f in files) AnsiConsole.MarkupLine($"wrote {Markup.Escape(f)}");
            return 0;
        }));
        return cmd;
    }
}
