using FedNano.Edge;

namespace FedNano.Strategies;

/// <summary>
/// Local training, the no-collaboration baseline: every client trains its own adapters on its own data, round after
/// round, never downloads or uploads anything, and is evaluated with its own adapters on its own test part.
/// All clients start from the same (seeded) initial adapters.
/// </summary>
public sealed class Local : IStrategy
{
    private readonly Dictionary<int, AdapterState> states = [];

    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "local";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new() { Upload = false };

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        global.Clone();

    /// <inheritdoc/>
    public AdapterState? ClientState(int client, AdapterState global) => states.GetValueOrDefault(client) ?? global;

    /// <inheritdoc/>
    public void OnClientTrained(int round, int client, AdapterState trained)
    {
        if (states.Remove(client, out var old)) old.Dispose();
        states[client] = trained.Clone();
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<int, AdapterState> ExportClientStates() => states;

    /// <inheritdoc/>
    public void ImportClientStates(IReadOnlyDictionary<int, AdapterState> states)
    {
        foreach (var s in this.states.Values) s.Dispose();
        this.states.Clear();
        foreach (var (k, s) in states) this.states[k] = s.Clone();
    }
}
