using FedNano.Edge;
using FedNano.Simulation;
using static TorchSharp.torch;

namespace FedNano.Strategies;

/// <summary>What a sampled client does in a round, as the strategy configures it.</summary>
public sealed record FitInstructions
{
    /// <summary>
    /// The estimator of the diagonal Fisher the client uploads with its adapters (a pass after training, or an
    /// observer of its local steps; see <see cref="FedNano.Fisher.FisherEstimators"/>); null for none.
    /// </summary>
    public FedNano.Fisher.IFisherEstimator? Fisher { get; init; }
    /// <summary>Weight mu of the proximal term <c>mu/2 ||theta - theta_global||^2</c> added to the local loss
    /// (0: none).</summary>
    public double ProximalMu { get; init; }
    /// <summary>
    /// Any further term of the local loss: given the live trainable parameters by name (e.g.
    /// <c>adapter_i.down.weight</c>), a scalar tensor whose gradient is added at every step; null for none.
    /// </summary>
    public Func<IReadOnlyDictionary<string, Tensor>, Tensor>? ExtraLoss { get; init; }
    /// <summary>Whether the client uploads its trained adapters (and Fisher) to the server; false for purely local
    /// training.</summary>
    public bool Upload { get; init; } = true;
    /// <summary>
    /// Which elements of each trainable tensor the client may change: 1 where it trains, 0 where the gradient is set
    /// to zero right before every optimiser step (so, from a zero start, the element stays exactly zero); null: all.
    /// The simulation sets it for a client whose adapter rank is below the global one (its padded components).
    /// </summary>
    public AdapterState? GradientMask { get; init; }
}

/// <summary>What a client uploads after local training.</summary>
/// <param name="Client">Client index.</param>
/// <param name="Samples">Number of local training samples |D_k|.</param>
/// <param name="Parameters">The trained adapter parameters theta_k.</param>
/// <param name="Fisher">Diagonal Fisher F_k, shaped like the parameters, when the strategy asked for one.</param>
public sealed record ClientUpdate(int Client, int Samples, AdapterState Parameters, AdapterState? Fisher);

/// <summary>
/// A federated strategy, shaped like Flower's: it configures each sampled client's round (<see cref="ConfigureFit"/>:
/// extra loss terms, what to upload), aggregates the uploads into the next global adapters (<see cref="Aggregate"/>)
/// and, if it personalises, keeps per-client state (<see cref="ClientState"/>, <see cref="OnClientTrained"/>); a
/// method whose clients hold another model than NanoAdapters brings its client side (<see cref="CreateClient"/>).
/// Implement it in your own code to add a method and pass it to
/// <see cref="FedNano.Simulation.FederatedSimulation.RunStrategy"/>; nothing in Core needs to change.
/// </summary>
public interface IStrategy
{
    /// <summary>The method's name as it appears in results (e.g. <c>fedavg</c>).</summary>
    string Name { get; }

    /// <summary>The instructions for <paramref name="client"/> in round <paramref name="round"/> (1-based).</summary>
    FitInstructions ConfigureFit(int round, int client);

    /// <summary>
    /// Whether one learner trains on every client's training data pooled (Centralized): each round a single
    /// participant (client index -1) trains with the budget of all clients' local steps and uploads its adapters,
    /// every client is evaluated with them, and nothing counts as communicated. Default: false.
    /// </summary>
    bool PoolsData => false;

    /// <summary>
    /// The client side for a run of <paramref name="simulation"/>, created when the run starts and disposed when it
    /// ends. Default: NanoAdapters on the shared NanoEdge (<see cref="IClientAlgorithm"/>).
    /// </summary>
    IClientAlgorithm CreateClient(FederatedSimulation simulation) => new NanoAdapterClient(simulation);

    /// <summary>The new global adapters from the round's uploads. Must not dispose its inputs.</summary>
    AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates);

    /// <summary>
    /// The adapters <paramref name="client"/> starts local training from and is evaluated with, when they are its
    /// own rather than the global ones (it then downloads nothing); null (the default) for the global adapters.
    /// The simulation neither changes nor disposes what is returned.
    /// </summary>
    AdapterState? ClientState(int client, AdapterState global) => null;

    /// <summary>
    /// Called with <paramref name="client"/>'s adapters right after its local training. The simulation disposes
    /// <paramref name="trained"/> after the round: clone it to keep it. Default: nothing.
    /// </summary>
    void OnClientTrained(int round, int client, AdapterState trained) { }

    /// <summary>
    /// The per-client state the strategy keeps between rounds, by client index, for a checkpoint (e.g. personal
    /// adapters); the caller reads it right away and neither changes nor disposes it. Default: none.
    /// </summary>
    IReadOnlyDictionary<int, AdapterState> ExportClientStates() => new Dictionary<int, AdapterState>();

    /// <summary>
    /// Restores per-client state exported earlier by <see cref="ExportClientStates"/> before a run continues from a
    /// checkpoint (an empty dictionary when it starts afresh); clone what is kept, the caller disposes its states.
    /// Default: accepts only an empty dictionary, as a strategy without per-client state exports nothing.
    /// </summary>
    void ImportClientStates(IReadOnlyDictionary<int, AdapterState> states)
    {
        if (states.Count > 0)
            throw new ArgumentException($"strategy '{Name}' keeps no per-client state, but the start state holds " +
                                        $"some for clients {string.Join(", ", states.Keys.Order())}", nameof(states));
    }
}
