using FedNano.Edge;
using FedNano.Simulation;
using FedNano.Strategies;
using static TorchSharp.torch;

var config = args.Length > 0 ? SimulationConfig.Load(args[0]) : Shipped.QuickstartConfig();
var median = Experiment.Create(config).RunStrategy(new Median());
var perClient = string.Join(", ", median.ClientAccuracy.Select(a => a.ToString("P1")));
Console.WriteLine($"median: mean accuracy {median.MeanAccuracy:P1}, per client {perClient}");

/// <summary>A new method in your own code: the element-wise (lower) median of the clients' adapters.</summary>
sealed class Median : IStrategy
{
    public string Name => "median";

    // what a client does this round: extra loss terms (ProximalMu, ExtraLoss), what it uploads (Upload, Fisher: an
    // estimator from FedNano.Fisher)
    public FitInstructions ConfigureFit(int round, int client) => new();

    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        new(global.Tensors.ToDictionary(p => p.Key,
            p => stack(updates.Select(u => u.Parameters[p.Key]).ToArray()).msort()[(updates.Count - 1) / 2]));

    // optional per-client state (Local uses it): ClientState(client, global) and
    // OnClientTrained(round, client, trained);
    // for checkpoints and resume, ExportClientStates() and ImportClientStates(states)
}
