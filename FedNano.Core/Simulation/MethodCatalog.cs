using FedNano.Strategies;

namespace FedNano.Simulation;

/// <summary>The methods the simulation runs by name.</summary>
public static class MethodCatalog
{
    /// <summary>Every method name, in the order <c>all</c> runs them (the zero-shot row is always added by <c>fednano run</c>).</summary>
    public static readonly string[] All = ["centralized", "local", "fedavg", "fedprox", "feddpa-f", "fednano", "fednano-ef"];

    /// <summary>Throws <see cref="ConfigException"/> for an unknown method name.</summary>
    public static void Check(string name)
    {
        if (name != "all" && !All.Contains(name))
            throw new ConfigException($"unknown method '{name}' (known: {string.Join(", ", All)}, all)");
    }

    /// <summary>The names with <c>all</c> expanded, in order, without repeats.</summary>
    public static string[] Expand(IEnumerable<string> names) =>
        names.SelectMany(n => n == "all" ? All : [n]).Distinct().ToArray();

    /// <summary>A fresh strategy of a federated method, or null for one that is not aggregated (centralized).</summary>
    public static IStrategy? Strategy(string name, SimulationConfig config) => name switch
    {
        "fedavg" => new FedAvg(),
        "fedprox" => new FedProx(config.FedProxMu),
        "fednano" => new FedNanoFisher(config.FisherFloor),
        "fednano-ef" => new FedNanoEf(config.FisherFloor),
        "local" => new Local(),
        "feddpa-f" => new FedDpaF(),
        "centralized" => null,
        _ => throw new ConfigException($"unknown method '{name}' (known: {string.Join(", ", All)}, all)"),
    };
}
