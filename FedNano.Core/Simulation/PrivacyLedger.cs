using FedNano.Privacy;
using FedNano.Strategies;

namespace FedNano.Simulation;

/// <summary>
/// The privacy each participant of a method's run has spent (config <c>dp</c>), one <see cref="RdpAccountant"/>
/// each: every round it trains, its local steps as the sampled Gaussian mechanism with q = batch_size / |D_k| and the
/// noise multiplier (the pooled learner: q = batch_size / all samples, its steps), and an exact Fisher pass as one
/// Gaussian mechanism (q = 1, the Fisher noise multiplier). Squared gradients of DP-SGD (FedNano-EF's Fisher) and
/// the proximal term cost nothing more (post-processing, no data). Each round's rows get the epsilon at
/// <c>dp.delta</c> and the accountant's history, from which a resumed run restores it.
/// </summary>
internal sealed class PrivacyLedger
{
    private readonly DpConfig dp;
    private readonly FederatedSimulation sim;
    private readonly IStrategy strategy;
    private readonly Dictionary<int, RdpAccountant> accountants = [];

    /// <summary>A ledger for <paramref name="strategy"/>'s run, restored from the rows of its start state.</summary>
    public PrivacyLedger(DpConfig dp, FederatedSimulation sim, IStrategy strategy, IEnumerable<RoundResult> rows)
    {
        (this.dp, this.sim, this.strategy) = (dp, sim, strategy);
        foreach (var g in rows.Where(r => r.Method == strategy.Name && r.Privacy is not null)
                     .GroupBy(r => strategy.PoolsData ? FederatedSimulation.Pooled : r.Client))
            accountants[g.Key] = new RdpAccountant(g.MaxBy(r => r.Round)!.Privacy!);
    }

    /// <summary>
    /// Counts a round's training of <paramref name="participants"/> (with <paramref name="fits"/>) and sets the
    /// epsilon and history of every row of <paramref name="round"/> in <paramref name="rows"/>.
    /// </summary>
    public void Record(List<RoundResult> rows, int round, int[] participants, FitInstructions[] fits)
    {
        for (int j = 0; j < participants.Length; j++)
        {
            int k = participants[j];
            var accountant = Of(k);
            int samples = sim.DataOf(k).Count;
            int steps = k == FederatedSimulation.Pooled ? sim.Train.Sum(t => sim.Trainer.StepsFor(t.Length))
                : sim.Trainer.StepsFor(samples);
            accountant.Step(Math.Min(1.0, sim.Config.BatchSize / (double)samples), dp.NoiseMultiplier, steps);
            if (fits[j].Fisher is Fisher.IFisherPass) accountant.Step(1.0, dp.FisherSigma);
        }
        for (int i = 0; i < rows.Count; i++)
            if (rows[i].Method == strategy.Name && rows[i].Round == round)
            {
                var accountant = Of(strategy.PoolsData ? FederatedSimulation.Pooled : rows[i].Client);
                rows[i] = rows[i] with { Epsilon = accountant.Epsilon(dp.Delta), Privacy = [.. accountant.History] };
            }
    }

    private RdpAccountant Of(int participant) =>
        accountants.TryGetValue(participant, out var a) ? a : accountants[participant] = new RdpAccountant();
}
