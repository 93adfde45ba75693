using System.CommandLine;
using FedNano;
using FedNano.Cli.Commands;

var root = new RootCommand("fednano: simulate federated tuning of multimodal LLMs with FedNano (NanoEdge + NanoAdapters, Fisher merging) and its baselines.");
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
    foreach (var e in parsed.Errors) Console.Error.WriteLine($"fednano: {e.Message}");
    Console.Error.WriteLine("Run 'fednano --help' for usage.");
    return 2;
}
try
{
    return parsed.Invoke();
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"fednano: {e.Message}");
    return 2;
}
