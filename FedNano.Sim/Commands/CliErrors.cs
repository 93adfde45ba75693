using FedNano;

namespace FedNano.Cli.Commands;

/// <summary>Runs a command body, turning bad input into one line on stderr and exit code 2.</summary>
internal static class CliErrors
{
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"fednano: {e.Message}");
            return 2;
        }
    }
}
