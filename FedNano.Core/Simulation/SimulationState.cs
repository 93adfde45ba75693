using FedNano.Edge;

namespace FedNano.Simulation;

/// <summary>
/// Where a method's run stands after a round: everything needed to continue it exactly. What is not in it, and
/// why it needs no saving: the optimiser (AdamW is created afresh for every client in every round, so no
/// optimiser state outlives a round), the data order and the client sampling (their generators are derived from
/// (seed, round, client) by <see cref="Seeds"/>, not drawn from a running stream), the partition and the
/// adapters' initialisation (derived from the seed when the simulation is built). The default torch generator's
/// state is kept by the checkpoint for completeness, although no operation of a round draws from it.
/// </summary>
/// <param name="Method">Method name.</param>
/// <param name="Round">Rounds finished (1-based; 0: none).</param>
/// <param name="Global">The global adapters after that round (centralized: the single learner's adapters; FedDPA-F:
/// the global LoRA and connector).</param>
/// <param name="Clients">State each client keeps to itself between rounds, by client index and name (Local: its own
/// adapters; FedDPA-F after its last round: its local LoRA); empty for methods without any.</param>
/// <param name="Rows">Rows of <c>rounds.csv</c> so far.</param>
/// <param name="Final">Per client, the predictions of the model after that round on its test part.</param>
public sealed record SimulationState(
    string Method, int Round, AdapterState Global, IReadOnlyDictionary<int, AdapterState> Clients,
    IReadOnlyList<RoundResult> Rows, IReadOnlyList<IReadOnlyList<Prediction>> Final);
