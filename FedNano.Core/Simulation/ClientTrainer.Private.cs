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
        SetNoisyMean(edge.AdapterParameters(), perSample, dp, noise);
        return nll.mean();
    }

    /// <summary>
    /// DP-SGD's gradient from <paramref name="perSample"/> ([B, ...] by parameter name): each sample's clipped, summed,
    /// noised from <paramref name="noise"/>, divided by B; put into <paramref name="parameters"/>' gradients.
    /// </summary>
    private static void SetNoisyMean(IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> parameters,
        IReadOnlyDictionary<string, Tensor> perSample, DpConfig dp, Generator noise)
    {
        using var _ = no_grad();
        int count = (int)perSample.Values.First().shape[0];
        var mean = DpSgd.NoisyMeanGradient(perSample, dp.MaxGradNorm, dp.NoiseMultiplier, noise, count);
        foreach (var (name, p) in parameters)
            if (p.grad is { } grad) grad.copy_(mean[name]);
            else p.grad = mean[name].clone();
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
        var weights = edge.AdapterParameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using (no_grad()) return (nll, PerSampleGradients(raw, g, batch.IsImage, n => weights[n]));
    }

    /// <summary>
    /// Each sample's gradient [B, ...] of the adapter parameters (named as <see cref="NanoEdge.AdapterParameters"/>
    /// names them), from the raw sequence and the gradient of a sum of per-sample losses with respect to the adapted
    /// one; <paramref name="weight"/> gives each adapter weight by name: one client's ([r, d]), or each sample's own
    /// client's stacked per sample ([B, r, d]).
    /// </summary>
    private Dictionary<string, Tensor> PerSampleGradients(Tensor raw, Tensor gradOut, Tensor isImage,
        Func<string, Tensor> weight)
    {
        var sides = new[]
        {
            ("adapter_i", edge.AdapterI.Scale, isImage), ("adapter_t", edge.AdapterT.Scale, isImage.logical_not()),
        };
        return sides.SelectMany(s => Adapters.NanoAdapter.PerSampleGradientsOf(raw, gradOut, s.Item3,
                    weight(s.Item1 + ".down.weight"), weight(s.Item1 + ".up.weight"), s.Item2)
                .Select(p => (name: s.Item1 + "." + p.Key, grad: p.Value)))
            .ToDictionary(p => p.name, p => p.grad);
    }
}
