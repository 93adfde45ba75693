using System.CommandLine;
using FedNano.Cli.Commands;

var verbose = new Option<bool>("--verbose")
{
    Description = "On an error, print its details (stack trace) too.",
    Recursive = true,
};
var root = new RootCommand("fednano: simulate federated tuning of multimodal LLMs with FedNano "
    + "(NanoEdge + NanoAdapters, Fisher merging) and its baselines.");
root.Options.Add(verbose);
root.Subcommands.Add(RunCommand.Build());
root.Subcommands.Add(SweepCommand.Build());
root.Subcommands.Add(ReportCommand.Build());
root.Subcommands.Add(PretrainCommand.Build());
root.Subcommands.Add(PartitionCommand.Build());
root.Subcommands.Add(ParamsCommand.Build());
root.Subcommands.Add(DataCommands.Build());

ConsoleOutput.UsePlainOutputWhenRedirected();

// `fednano` alone runs the default job, as `fednano run` does.
if (args.Length == 0) args = ["run"];
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    Console.Error.WriteLine($"fednano: {string.Join("; ", parsed.Errors.Select(e => e.Message))} " +
                            $"(run 'fednano --help' for usage)");
    return 2;
}
// One error boundary for every command (exit 2: bad input; 1: anything else), instead of System.CommandLine's
// "Unhandled exception" handler.
CliErrors.Verbose = parsed.GetValue(verbose);
try { return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); }
catch (Exception e) { return CliErrors.Report(e, Console.Error); }
