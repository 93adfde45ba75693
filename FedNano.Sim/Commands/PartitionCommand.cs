using System.CommandLine;
namespace FedNano.Cli.Commands;
internal static class PartitionCommand { public static Command Build() => new("partition", "Print the partition."); }
