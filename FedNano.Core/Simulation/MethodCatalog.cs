using FedNano.Ledgers;
using FedNano.Strategies;

namespace FedNano.Simulation;

/// <summary>
/// A method the simulation runs by name: its strategy made from a config, and what it trains, uploads and keeps
/// on a client for an architecture and rank (its row of <see cref="ParameterLedger"/>; null if not stated).
/// </summary>
/// <param name="Name">The name in configs, the CLI and results.</param>
/// <param name="Title">The name as tables print it (e.g. <c>FedNano-EF</c>).</param>
/// <param name="Create">A fresh strategy for a run of <paramref name="Name"/>.</param>
/// <param name="Ledger">The method's parameter accounting, or null.</param>
public sealed record MethodEntry(
    string Name, string Title, Func<SimulationConfig, IStrategy> Create,
    Func<ArchitectureParameters, int, MethodParameters>? Ledger = null);

/// <summary>
/// The registry of methods: the built-in ones (one entry each, in the order <c>all</c> runs them) and any a user
/// registers from their own code (<see cref="Register"/>), which then run by name from configs, run folders, sweeps,
/// checkpoints and reports as the built-in ones do.
/// </summary>
public static class MethodCatalog
{
    /// <summary>The frozen backbone with identity adapters: the row every run starts with (no rounds).</summary>
    public const string ZeroShot = "zero-shot";

    private static readonly List<MethodEntry> entries =
    [
        Nano(Centralized.MethodName, "Centralized", _ => new Centralized(), up: false, fisher: false, clients: false,
            "NanoAdapters trained on pooled data at the server; no clients"),
        Nano(Local.MethodName, "Local", _ => new Local(), up: false, fisher: false, clients: true,
            "NanoAdapters trained alone, nothing communicated"),
        Nano(FedAvg.MethodName, "FedAvg", _ => new FedAvg(), up: true, fisher: false, clients: true,
            "NanoAdapters up, averaged by data size"),
        new(FedProx.MethodName, "FedProx", c => new FedProx(c.FedProxMu), (a, r) => new MethodParameters("FedProx",
            a.NanoAdapters(r), a.NanoAdapters(r), 0, a.NanoEdgeFrozen + 2 * a.NanoAdapters(r), a.Total,
            "as FedAvg; client also keeps the global adapters for the proximal term")),
        new(FedDpaF.MethodName, "FedDPA-F", _ => new FedDpaF(), (a, r) => new MethodParameters("FedDPA-F",
            2 * a.Lora(r) + a.TunableConnector, a.Lora(r) + a.TunableConnector, 0, a.Total + 2 * a.Lora(r), a.Total,
            "global LoRA + tunable projector up; local LoRA stays; whole MLLM on the client")),
        Nano(FedNanoFisher.MethodName, "FedNano", c => new FedNanoFisher(c.FisherFloor,
            Fisher.FisherEstimators.Create(c.Fisher, c.FisherNormalise)), up: true, fisher: true,
            clients: true, "NanoAdapters up; their diagonal Fisher (same count) up for Fisher merging"),
        Nano(FedNanoEf.MethodName, "FedNano-EF", c => new FedNanoEf(c.FisherFloor, c.FisherNormalise), up: true,
            fisher: true, clients: true, "as FedNano, Fisher from squared gradients seen while training"),
    ];

    /// <summary>An entry for a method that trains the NanoAdapters on the NanoEdge split.</summary>
    private static MethodEntry Nano(string name, string title, Func<SimulationConfig, IStrategy> create,
        bool up, bool fisher, bool clients, string note) => new(name, title, create, (a, r) =>
    {
        long adapters = a.NanoAdapters(r);
        return new MethodParameters(title, adapters, up ? adapters : 0, fisher ? adapters : 0,
            clients ? a.NanoEdgeFrozen + adapters : null, a.Total, note);
    });

    /// <summary>Every registered method, in the order <c>all</c> runs them.</summary>
    public static IReadOnlyList<MethodEntry> Entries
    {
        get { lock (entries) return entries.ToArray(); }
    }

    /// <summary>Every method name, in the order <c>all</c> runs them (a run always adds the zero-shot row).</summary>
    public static IReadOnlyList<string> All => Entries.Select(e => e.Name).ToArray();

    /// <summary>
    /// Adds a method from the user's code; its name must be new (and not <c>all</c> or <c>zero-shot</c>). Register it
    /// before a config naming it is run or a run folder holding it is resumed.
    /// </summary>
    public static void Register(MethodEntry entry)
    {
        if (string.IsNullOrWhiteSpace(entry.Name) || entry.Name is "all" or ZeroShot || entry.Name.Contains(','))
            throw new ArgumentException($"'{entry.Name}' cannot name a method", nameof(entry));
        lock (entries)
        {
            if (entries.Any(e => e.Name == entry.Name))
                throw new ArgumentException($"method '{entry.Name}' is already registered", nameof(entry));
            entries.Add(entry);
        }
    }

    /// <summary>The entry of <paramref name="name"/>; a <see cref="ConfigException"/> naming the known ones.</summary>
    public static MethodEntry Get(string name) =>
        Entries.FirstOrDefault(e => e.Name == name)
        ?? throw new ConfigException($"unknown method '{name}' (known: {string.Join(", ", All)}, all)");

    /// <summary>Throws <see cref="ConfigException"/> for an unknown method name.</summary>
    public static void Check(string name)
    {
        if (name != "all") Get(name);
    }

    /// <summary>The names with <c>all</c> expanded, in order, without repeats; unknown names refused.</summary>
    public static string[] Expand(IEnumerable<string> names)
    {
        var expanded = names.SelectMany(n => n == "all" ? All : [n]).Distinct().ToArray();
        foreach (var n in expanded) Check(n);
        return expanded;
    }

    /// <summary>A fresh strategy of the method <paramref name="name"/>.</summary>
    public static IStrategy Strategy(string name, SimulationConfig config) => Get(name).Create(config);
}
