using System.CommandLine;
using FedNano.Simulation;

namespace FedNano.Cli.Commands;

/// <summary>The options shared by commands that take a simulation config, and how they override it.</summary>
internal sealed class RunOptions
{
    public readonly Option<string?> Config = new("--config") { Description = "Simulation config (JSON). Default: configs/quickstart.json." };
    public readonly Option<string?> Method = new("--method") { Description = $"{string.Join(", ", MethodCatalog.All)} or all (comma-separated for several)." };
    public readonly Option<int?> Clients = new("--clients") { Description = "Number of clients K." };
    public readonly Option<double?> Alpha = new("--alpha") { Description = "Dirichlet concentration of the label partition (> 0; small = heterogeneous)." };
    public readonly Option<int?> Rounds = new("--rounds") { Description = "Communication rounds." };
    public readonly Option<int?> Rank = new("--rank") { Description = "NanoAdapter rank." };
    public readonly Option<int?> Seed = new("--seed") { Description = "Seed of every random draw." };

    public IEnumerable<Option> All => [Config, Method, Clients, Alpha, Rounds, Rank, Seed];

    /// <summary>The config file (or the default) with the command line's overrides, validated.</summary>
    public SimulationConfig Resolve(ParseResult r)
    {
        string path = r.GetValue(Config) ?? DefaultConfig();
        var c = SimulationConfig.Load(path);
        if (r.GetValue(Method) is { } m) c = c with { Methods = m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
        if (r.GetValue(Clients) is { } k) c = c with { Clients = k };
        if (r.GetValue(Alpha) is { } a) c = c with { Alpha = a };
        if (r.GetValue(Rounds) is { } n) c = c with { Rounds = n };
        if (r.GetValue(Rank) is { } rank) c = c with { Adapter = c.Adapter with { Rank = rank } };
        if (r.GetValue(Seed) is { } s) c = c with { Seed = s };
        try { c.Validate(); }
        catch (FedNano.ConfigException e) { throw new FedNano.ConfigException($"{e.Message} (from {path} and the command line)"); }
        return c;
    }

    private static string DefaultConfig()
    {
        var root = Experiment.FindRepositoryRoot() ?? throw new FedNano.ConfigException("no --config given and configs/quickstart.json not found: run from the repository or pass --config");
        return Path.Combine(root, "configs", "quickstart.json");
    }
}
