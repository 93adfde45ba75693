using System.CommandLine;
using FedNano.Data;

namespace FedNano.Cli.Commands;

/// <summary><c>fednano data ...</c>: look at real data sets on disk.</summary>
public static class DataCommands
{
    /// <summary>The <c>data</c> command with its <c>inspect</c> subcommand; add it to the root command.</summary>
    public static Command Build()
    {
        var dataset = new Option<string>("--dataset") { Description = "scienceqa or iconqa", Required = true };
        var root = new Option<string>("--data-root")
        {
            Description = "ScienceQA: the folder with problems.json and pid_splits.json; "
                + "IconQA: the folder holding iconqa_data (or iconqa_data)",
            Required = true,
        };
        var inspect = new Command("inspect",
            "Count problems per split and subject or task, images present and missing, and choices per question");
        inspect.Options.Add(dataset);
        inspect.Options.Add(root);
        inspect.SetAction(parse => Run(() =>
        {
            var report = DatasetInspector.Inspect(parse.GetValue(dataset)!, parse.GetValue(root)!);
            Console.Write(report.ToText());
        }));
        var data = new Command("data", "Inspect real data sets (ScienceQA, IconQA) in their official layout");
        data.Subcommands.Add(inspect);
        return data;
    }

    /// <summary>
    /// Runs <paramref name="body"/>; a <see cref="ConfigException"/> becomes one line on stderr and exit code 2.
    /// </summary>
    internal static int Run(Action body)
    {
        try { body(); return 0; }
        catch (ConfigException e)
        {
            Console.Error.WriteLine("error: " + e.Message.ReplaceLineEndings(" "));
            return 2;
        }
    }
}
