namespace FedNano;

/// <summary>
/// A configuration, data set or checkpoint that cannot be used as given. The message says what was wrong,
/// where (file, field, key or id) and, where there is one, how to fix it; the CLI prints it as one line and
/// exits with code 2.
/// </summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner)
{
    internal static void Positive(int value, string field)
    {
        if (value <= 0) throw new ConfigException($"{field} must be > 0 (got {value})");
    }

    internal static void Positive(double value, string field)
    {
        if (!(value > 0)) throw new ConfigException($"{field} must be > 0 (got {value})");
    }
}
