using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Strategies;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>
/// Heterogeneous adapter ranks in the round loop (<c>adapter.client_ranks</c>). The global adapters and the shared
/// edge stay at the largest rank R (<c>adapter.rank</c>); a rank-r client is simulated as a rank-R adapter whose
/// components r..R-1 (rows of <c>down</c>, columns of <c>up</c>) are exactly zero: it starts from the global truncated
/// to its rank and zero-padded back (<see cref="View"/>), its gradient is masked there (<see cref="Fit"/>; with
/// <c>up</c> zero there the gradient is zero anyway, and so is its Fisher), so the sequential and batched paths need
/// nothing else; it downloads and uploads only its first r components (<see cref="Own"/>). The server merges the
/// uploads across ranks (<see cref="Aggregate"/>): <c>pad</c>, by padding them back and applying the method's own
/// merge; <c>svd</c>, by the size-weighted mean of the products re-factorised at R by truncated SVD, whose first r
/// components are then the best rank-r factorisation each client takes.
/// </summary>
internal sealed class RankPlan
{
    private readonly int[] ranks;
    private readonly int max;
    private readonly bool svd;
    private readonly Dictionary<int, AdapterState> masks = [];

    private RankPlan(int[] ranks, int max, bool svd) => (this.ranks, this.max, this.svd) = (ranks, max, svd);

    /// <summary>The plan of the config's <c>adapter.client_ranks</c>, or null without them.</summary>
    public static RankPlan? Of(SimulationConfig config) => config.Adapter.ClientRanks is { } r
        ? new(r.Resolve(config.Clients, Seeds.Derive(config.Seed, Seeds.Purpose("client ranks"))), config.Adapter.Rank,
            config.Adapter.RankMerging == "svd")
        : null;

    /// <summary>Each client's rank.</summary>
    public IReadOnlyList<int> Ranks => ranks;

    /// <summary>What client <paramref name="client"/> moves of <paramref name="state"/>: its first r components (new
    /// tensors).</summary>
    public AdapterState Own(int client, AdapterState state) => RankMerging.Truncate(state, ranks[client]);

    /// <summary><paramref name="state"/> as the client holds it: its first r components, zero-padded to R (new
    /// tensors).</summary>
    public AdapterState View(int client, AdapterState state)
    {
        using var own = Own(client, state);
        return RankMerging.Pad(own, max);
    }

    /// <summary>The client's instructions with the gradient of its padded components masked.</summary>
    public FitInstructions Fit(int client, FitInstructions fit, AdapterState like)
    {
        int r = ranks[client];
        if (r == max) return fit;
        if (!masks.TryGetValue(r, out var mask))
        {
            using var ones = like.Map(t => ones_like(t));
            masks[r] = mask = View(client, ones);
        }
        return fit with { GradientMask = mask };
    }

    /// <summary>The upload of <paramref name="update"/>'s client: its parameters and Fisher at its rank (new tensors;
    /// the full-rank Fisher is disposed).</summary>
    public ClientUpdate Upload(ClientUpdate update)
    {
        var own = update with
        {
            Parameters = Own(update.Client, update.Parameters),
            Fisher = update.Fisher is { } f ? Own(update.Client, f) : null,
        };
        update.Fisher?.Dispose();
        return own;
    }

    /// <summary>The next global adapters (rank R) from uploads of any ranks; see the class summary.</summary>
    public AdapterState Aggregate(IStrategy strategy, int round, AdapterState global,
        IReadOnlyList<ClientUpdate> updates)
    {
        if (updates.Count == 0) return strategy.Aggregate(round, global, updates);
        if (!svd) return RankMerging.MergePadded(global, updates, (g, u) => strategy.Aggregate(round, g, u));
        return RankMerging.MergeProducts(updates, [max])[max];
    }

    /// <summary>Values and bytes of <paramref name="state"/> the client moves (<see cref="Own"/>).</summary>
    public (long values, long bytes) Measure(int client, AdapterState state)
    {
        using var own = Own(client, state);
        return ClientTraffic.Measure(own);
    }

    /// <summary>Values of <paramref name="state"/> (at rank R) a client holds at its own rank.</summary>
    public long Values(int client, AdapterState state) => state.Tensors.Sum(p =>
        p.Key.EndsWith("down.weight") || p.Key.EndsWith("up.weight") ? p.Value.numel() / max * ranks[client]
            : p.Value.numel());

    /// <summary>Each client's view of the states it is evaluated with, made once per state and rank.</summary>
    public sealed class Views(RankPlan plan) : IDisposable
    {
        private readonly Dictionary<(AdapterState, int), AdapterState> made = [];

        /// <summary><paramref name="state"/> as <paramref name="client"/> holds it (owned by this cache).</summary>
        public AdapterState Of(int client, AdapterState state)
        {
            int r = plan.ranks[client];
            if (r == plan.max) return state;
            if (!made.TryGetValue((state, r), out var view)) made[(state, r)] = view = plan.View(client, state);
            return view;
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            foreach (var v in made.Values) v.Dispose();
        }
    }
}
