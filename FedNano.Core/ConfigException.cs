namespace FedNano;

/// <summary>
/// A known failure: input that cannot be used as given. The message says what was wrong, where (file, field, key
/// or id) and, where there is one, how to fix it; the CLI prints it as one line and exits with code 2.
/// </summary>
public abstract class FedNanoException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A configuration, option value, data set or checkpoint that cannot be used as given (see
/// <see cref="FedNanoException"/>).</summary>
public sealed class ConfigException(string message, Exception? inner = null) : FedNanoException(message, inner)
{
    internal static void Positive(int value, string field)
    {
        if (value <= 0) throw new ConfigException($"{field} must be > 0 (got {value})");
    }

    internal static void Positive(double value, string field)
    {
        if (!(value > 0 && double.IsFinite(value))) throw new ConfigException($"{field} must be > 0 and finite " +
                                                                              $"(got {value})");
    }

    /// <summary>Throws if <paramref name="value"/> is above <paramref name="max"/> (a bound on what it may allocate or
    /// mean).</summary>
    internal static void AtMost(long value, long max, string field)
    {
        if (value > max) throw new ConfigException($"{field} must be at most {max:N0} (got {value:N0})");
    }

    /// <summary>Throws if <paramref name="value"/> is above <paramref name="max"/> or infinite.</summary>
    internal static void AtMost(double value, double max, string field)
    {
        if (value > max) throw new ConfigException($"{field} must be at most {max:G} (got {value:G})");
    }
}

/// <summary>A run's checkpoint or results that cannot be used (corrupt, of another config); exit code 2.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : FedNanoException(message, inner);

/// <summary>A client's loss or update became NaN or infinite and <c>on_nonfinite</c> is <c>stop</c>; exit code
/// 2.</summary>
public sealed class NonFiniteException(string message) : FedNanoException(message);
