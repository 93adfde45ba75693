using FedNano.Edge;
using static TorchSharp.torch;

namespace FedNano.Strategies;

/// <summary>
/// FedAvg: the global adapters are the mean of the clients' adapters weighted by their numbers of samples,
/// theta = sum_k |D_k| theta_k / sum_k |D_k|. McMahan et al., "Communication-Efficient Learning of Deep
/// Networks from Decentralized Data", AISTATS 2017.
/// </summary>
public sealed class FedAvg : IStrategy
{
    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "fedavg";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new();

    /// <inheritdoc/>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
        WeightedMean(global, updates);

    /// <summary>The sample-size-weighted mean of the updates' parameters.</summary>
    public static AdapterState WeightedMean(AdapterState global, IReadOnlyList<ClientUpdate> updates)
    {
        if (updates.Count == 0) return global.Clone();
        double total = updates.Sum(u => (double)u.Samples);
        return new AdapterState(global.Tensors.ToDictionary(p => p.Key, p =>
        {
            using var scope = NewDisposeScope();
            var sum = zeros_like(p.Value);
            foreach (var u in updates) sum = sum + u.Parameters[p.Key] * (u.Samples / total);
            return sum.MoveToOuterDisposeScope();
        }));
    }
}
