using FedNano;

namespace FedNano.Cli.Commands;

/// <summary>
/// The CLI's one error boundary: every failure becomes one line on stderr and an exit code. A known failure
/// (<see cref="FedNanoException"/>: bad usage, config, data, checkpoint) exits 2; anything else (I/O, out of
/// memory, native errors) exits 1, with the exception's details only under <c>--verbose</c>.
/// </summary>
internal static class CliErrors
{
    /// <summary>Set from the global <c>--verbose</c> option: print the full exception after the one line.</summary>
    public static bool Verbose { get; set; }

    /// <summary>Runs a command body inside the boundary.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) { return Report(e, Console.Error); }
    }

    /// <summary>Writes the one line for <paramref name="e"/> (and, under <see cref="Verbose"/>, its details); returns
    /// the exit code.</summary>
    public static int Report(Exception e, TextWriter error)
    {
        while (e is System.Reflection.TargetInvocationException or AggregateException
            && e.InnerException is { } inner) e = inner;
        string folder = e.Data[Experiments.RunFolder.FailedFolderKey] is string dir
            ? $" (run folder {dir} marked failed; continue it with: fednano run --resume {dir})" : "";
        int code = e is FedNanoException ? 2 : 1;
        string line = e switch
        {
            FedNanoException => e.Message,
            _ when Experiments.RunFolder.IsOutOfMemory(e) =>
                $"out of memory ({FirstLine(e.Message)}); lower train_batch_tokens, eval_batch_tokens or batch_size, " +
                $"or set activation_checkpointing: true",
            OperationCanceledException => "stopped",
            IOException or UnauthorizedAccessException =>
                $"{FirstLine(e.Message).TrimEnd('.')}: check that the path exists, " +
                $"is writable and the disk is not full",
            _ => $"{e.GetType().Name}: {FirstLine(e.Message)}",
        };
        error.WriteLine($"fednano: {OneLine(line)}{folder}"
            + (code == 1 && !Verbose ? " (--verbose for details)" : ""));
        if (Verbose) error.WriteLine(e.ToString());
        return code;
    }

    private static string FirstLine(string message)
    {
        var first = message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault() ?? "";
        // libtorch appends "Exception raised from ... (most recent call first):" and a native stack
        int raised = first.IndexOf("Exception raised from", StringComparison.Ordinal);
        return (raised > 0 ? first[..raised] : first).Trim();
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
