using FedNano.Edge;
using FedNano.Privacy;
using static TorchSharp.torch;

namespace FedNano.Simulation;

internal sealed partial class ClientTrainer
{
    /// <summary>
    /// One DP-SGD step's gradient (<see cref="DpSgd"/>, config <c>dp</c>) on <paramref name="batch"/>: the server
    /// returns the gradient of the summed loss with respect to the sequence (each sample's row its own), the exact
    /// per-sample gradients of the NanoAdapters follow from it
    /// (<see cref="Adapters.NanoAdapter.PerSampleGradientsOf"/>), each is clipped to <c>dp.max_grad_norm</c>, they
    /// are summed, Gaussian noise from <paramref name="noise"/> is added and the sum divided by the batch's size;
    /// that is put in the adapters' gradients, for the rest of the step.
    /// Returns the batch-mean loss.
    /// </summary>
    internal Tensor PrivateStep(EncodedBatch batch, DpConfig dp, Generator noise, int client = 0)
    {
        var (nll, perSample) = PerSampleStep(batch, client);
        using (no_grad())
        {
            var mean = DpSgd.NoisyMeanGradient(perSample, dp.MaxGradNorm, dp.NoiseMultiplier, noise, batch.Count);
            foreach (var (name, p) in edge.AdapterParameters())
                if (p.grad is { } grad) grad.copy_(mean[name]);
                else p.grad = mean[name].clone();
        }
        return nll.mean();
    }

    /// <summary>
    /// The Fisher upload under DP: <see cref="DpSgd.NoisyFisher"/> of the edge's adapters over all of
    /// <paramref name="data"/> (each sample's gradient clipped to <c>dp.max_grad_norm</c>, squared, summed over the
    /// batches, noised once with <c>dp.fisher_noise_multiplier</c>, divided by the number of samples): one Gaussian
    /// mechanism with sampling rate 1.
    /// </summary>
    private AdapterState PrivateFisher(IReadOnlyList<EncodedSample> data, DpConfig dp, Generator noise, int client)
    {
        var sums = edge.AdapterParameters().ToDictionary(p => p.name, p => zeros_like(p.parameter));
        for (int i = 0; i < data.Count; i += config.BatchSize)
        {
            using var scope = NewDisposeScope();
            using var batch = EncodedBatch.Create(data.Skip(i).Take(config.BatchSize).ToArray(), true, 0, edge.Device);
            var (_, perSample) = PerSampleStep(batch, client);
            using (no_grad())
                foreach (var (name, sum) in DpSgd.ClippedSquareSums(perSample, dp.MaxGradNorm)) sums[name].add_(sum);
        }
        var fisher = DpSgd.NoisyFisherOfSums(sums, dp.MaxGradNorm, dp.FisherSigma, noise, Math.Max(data.Count, 1));
        foreach (var s in sums.Values) s.Dispose();
        return new AdapterState(fisher);
    }

    /// <summary>
    /// A batch across the split with the edge's adapters, the server's gradient being that of the summed loss: the
    /// per-sample loss [B] and each sample's exact adapter gradients (<see cref="PerSampleGradients"/>).
    /// </summary>
    private (Tensor nll, Dictionary<string, Tensor> perSample) PerSampleStep(EncodedBatch batch, int client)
    {
        var raw = edge.RawSequence(batch);
        Tensor sent;
        using (no_grad()) sent = edge.Adapt(raw, batch.IsImage);
        var (nll, g) = server.LossAndGradient(sent, batch.Labels, sum: true);
        Traffic.Step(client, batch.Samples, sent);
        using (no_grad()) return (nll, PerSampleGradients(raw, g, batch.IsImage));
    }

    /// <summary>
    /// Each sample's gradient [B, ...] of the edge's adapter parameters (named as
    /// <see cref="NanoEdge.AdapterParameters"/> names them), from the raw sequence and the gradient of a sum of
    /// per-sample losses with respect to the adapted one.
    /// </summary>
    private Dictionary<string, Tensor> PerSampleGradients(Tensor raw, Tensor gradOut, Tensor isImage)
    {
        var sides = new[]
        {
            ("adapter_i", edge.AdapterI, isImage), ("adapter_t", edge.AdapterT, isImage.logical_not()),
        };
        return sides.SelectMany(s => s.Item2.PerSampleGradients(raw, gradOut, s.Item3)
                .Select(p => (name: s.Item1 + "." + p.Key, grad: p.Value)))
            .ToDictionary(p => p.name, p => p.grad);
    }
}
