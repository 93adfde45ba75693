using FedNano.Edge;
using FedNano.Simulation;

namespace FedNano.Strategies;

/// <summary>What a client's local training produced.</summary>
/// <param name="Trained">The client's trained state (the simulation disposes it after the round).</param>
/// <param name="Loss">Mean local training loss.</param>
/// <param name="Fisher">Diagonal Fisher of the trained state, when the fit instructions asked for one.</param>
/// <param name="SplitBytes">Bytes that crossed the client/server split during the training (0 without a split).</param>
public sealed record ClientFit(AdapterState Trained, double Loss, AdapterState? Fisher, long SplitBytes);

/// <summary>
/// The client side of a method, Flower's client algorithm: the model a client holds, what of it trains and how the
/// client is evaluated. The one round loop (<see cref="FederatedSimulation.RunStrategy"/>) asks it to train a round's
/// sampled clients from their start states and to evaluate every client; the strategy stays the server side. The
/// default (<see cref="IStrategy.CreateClient"/>) is NanoAdapters on the shared NanoEdge, trained across the split.
/// </summary>
public interface IClientAlgorithm : IDisposable
{
    /// <summary>The global state before the first round (the simulation clones it, neither changes nor disposes it).
    /// </summary>
    AdapterState Initial { get; }

    /// <summary>
    /// Whether the client ends at a split with the server's LLM, so that sequences and gradients cross it and are
    /// counted; false when the client holds the whole model (no split bytes). Default: true.
    /// </summary>
    bool CrossesSplit => true;

    /// <summary>Parameters <paramref name="client"/> holds, frozen and trainable, with the global state
    /// <paramref name="global"/>.</summary>
    long ResidentParameters(int client, AdapterState global);

    /// <summary>
    /// Local training of a round's sampled <paramref name="clients"/>, client j from <paramref name="starts"/>[j]
    /// following <paramref name="fits"/>[j] (<paramref name="global"/>: the round's global state, for a proximal
    /// term); one result per client, in order. Must not dispose its inputs.
    /// </summary>
    ClientFit[] Fit(int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global);

    /// <summary>
    /// Whether the clients are NanoAdapters on the shared NanoEdge, what <c>adapter.client_ranks</c> and <c>dp</c>
    /// apply to; a client side of its own (FedDPA-F) ignores both.
    /// </summary>
    internal bool OnNanoEdge => false;

    /// <summary>Called once after the last round's aggregation, before its evaluation, with the final global state.
    /// </summary>
    void AfterLastRound(int round, AdapterState global) { }

    /// <summary>
    /// How the clients are evaluated after <paramref name="round"/> with the new global state: per client, an
    /// evaluation client with a model of its own; null (the default) for the shared NanoEdge with the client's
    /// adapters (<see cref="IStrategy.ClientState"/>, else the global ones).
    /// </summary>
    Func<int, EvalClient>? Evaluation(int round, AdapterState global) => null;

    /// <summary>
    /// With <c>execution: batched</c>, instead of <see cref="Evaluation"/>: the evaluation of a test batch mixing
    /// clients' samples, given the clients present and each sample's row among them ([B]); null (the default): the
    /// shared NanoEdge's adapters stacked per sample, or client after client if <see cref="Evaluation"/> is set.
    /// </summary>
    internal Func<int[], TorchSharp.torch.Tensor, EvalClient>? EvaluationTogether(int round, AdapterState global) =>
        null;
}
