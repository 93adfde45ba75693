using static TorchSharp.torch;

namespace FedNano.Privacy;

/// <summary>
/// DP-SGD's gradient (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016): each sample's gradient
/// over all trainable tensors together is clipped to L2 norm C, the clipped gradients are summed, Gaussian noise
/// N(0, sigma^2 C^2) is added to every coordinate, and the result is divided by the batch size. Per-sample
/// gradients come as one tensor per parameter with the sample first, [B, ...] (e.g.
/// <see cref="Adapters.NanoAdapter.PerSampleGradients"/>). Each step is one step of the sampled Gaussian mechanism
/// with noise multiplier sigma, to be counted by an <see cref="RdpAccountant"/>.
/// </summary>
public static class DpSgd
{
    /// <summary>The L2 norm [B] of each sample's gradient over all the tensors together.</summary>
    public static Tensor PerSampleNorms(IReadOnlyDictionary<string, Tensor> perSample)
    {
        using var scope = NewDisposeScope();
        var squares = perSample.Values.Select(g => g.flatten(1).to_type(ScalarType.Float64).pow(2).sum(dim: 1))
            .ToArray();
        if (squares.Length == 0) throw new ArgumentException("no per-sample gradients given", nameof(perSample));
        return stack(squares).sum(dim: 0).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Each sample's gradients scaled by <c>min(1, C / norm_b)</c>, so the clipped norm is exactly
    /// <c>min(norm_b, C)</c> (a sample already within C is left as it is). Same keys, shapes and dtypes.
    /// </summary>
    public static Dictionary<string, Tensor> ClipPerSample(IReadOnlyDictionary<string, Tensor> perSample,
        double maxGradNorm)
    {
        if (!(maxGradNorm > 0))
            throw new ArgumentOutOfRangeException(nameof(maxGradNorm), maxGradNorm, "clipping norm must be > 0");
        using var scope = NewDisposeScope();
        var norms = PerSampleNorms(perSample);
        var factor = where(norms > maxGradNorm, maxGradNorm / norms, ones_like(norms));
        return perSample.ToDictionary(p => p.Key, p =>
        {
            var f = factor.to_type(p.Value.dtype).view([-1, .. Enumerable.Repeat(1L, (int)p.Value.dim() - 1)]);
            return (p.Value * f).MoveToOuterDisposeScope();
        });
    }

    /// <summary>
    /// The privatised mean gradient <c>(sum_b clip_C(g_b) + N(0, sigma^2 C^2)) / n</c>, one tensor per parameter
    /// shaped like a single sample's gradient. The noise is drawn on the CPU from <paramref name="generator"/> (a
    /// seeded generator makes it reproducible on any device) and moved to the gradients' device.
    /// <paramref name="batchSize"/> n defaults to B; with Poisson sampling pass the expected batch size, as Opacus
    /// does, so the divisor does not reveal the sampled batch's size. Keys are taken in order, so the same
    /// generator state gives the same noise.
    /// </summary>
    public static Dictionary<string, Tensor> NoisyMeanGradient(IReadOnlyDictionary<string, Tensor> perSample,
        double maxGradNorm, double noiseMultiplier, Generator generator, int? batchSize = null)
    {
        using var scope = NewDisposeScope();
        var clipped = ClipPerSample(perSample, maxGradNorm);
        double n = Divisor(perSample, batchSize);
        var sums = NoisySums(clipped, maxGradNorm, noiseMultiplier, generator);
        return sums.ToDictionary(p => p.Key, p => (p.Value / n).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// A Gaussian-mechanism diagonal Fisher from per-sample gradients, for a Fisher upload that is protected too:
    /// <c>max(0, (sum_b clip_C(g_b)^2 + N(0, sigma^2 C^4)) / n)</c>. A clipped sample's squared gradient has L2 norm
    /// at most <c>||clip_C(g_b)||^2 &lt;= C^2</c>, so this is one step of the Gaussian mechanism with sensitivity C^2
    /// and noise multiplier sigma (count it with the accountant: sampling rate 1 when every local sample takes
    /// part); clamping at 0 is post-processing. <paramref name="samples"/> n defaults to B.
    /// </summary>
    public static Dictionary<string, Tensor> NoisyFisher(IReadOnlyDictionary<string, Tensor> perSample,
        double maxGradNorm, double noiseMultiplier, Generator generator, int? samples = null)
    {
        using var scope = NewDisposeScope();
        double n = Divisor(perSample, samples);
        return NoisyFisherOfSums(ClippedSquareSums(perSample, maxGradNorm), maxGradNorm, noiseMultiplier, generator, n)
            .ToDictionary(p => p.Key, p => p.Value.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <c>sum_b clip_C(g_b)^2</c> of a batch, one tensor per parameter: what <see cref="NoisyFisher"/> sums before its
    /// noise, for data seen in several batches (add the batches' sums, then <see cref="NoisyFisherOfSums"/> once).
    /// </summary>
    public static Dictionary<string, Tensor> ClippedSquareSums(IReadOnlyDictionary<string, Tensor> perSample,
        double maxGradNorm)
    {
        using var scope = NewDisposeScope();
        return ClipPerSample(perSample, maxGradNorm)
            .ToDictionary(p => p.Key, p => p.Value.pow(2).sum(dim: 0).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <see cref="NoisyFisher"/> from the clipped square sums of all <paramref name="samples"/> samples
    /// (<see cref="ClippedSquareSums"/>, added over batches): <c>max(0, (sums + N(0, sigma^2 C^4)) / n)</c>.
    /// </summary>
    public static Dictionary<string, Tensor> NoisyFisherOfSums(IReadOnlyDictionary<string, Tensor> sums,
        double maxGradNorm, double noiseMultiplier, Generator generator, double samples)
    {
        if (!(samples > 0)) throw new ArgumentOutOfRangeException(nameof(samples), samples, "must be > 0");
        using var scope = NewDisposeScope();
        return sums.ToDictionary(p => p.Key, p =>
        {
            var noise = Noise(p.Value, noiseMultiplier * maxGradNorm * maxGradNorm, generator);
            return ((p.Value + noise) / samples).clamp_min(0).MoveToOuterDisposeScope();
        });
    }

    // Sums over the samples plus N(0, (sigma sensitivity)^2) per coordinate, drawn on the CPU in key order.
    private static Dictionary<string, Tensor> NoisySums(IReadOnlyDictionary<string, Tensor> perSample,
        double sensitivity, double noiseMultiplier, Generator generator) =>
        perSample.ToDictionary(p => p.Key, p =>
        {
            var sum = p.Value.sum(dim: 0);
            return sum + Noise(sum, noiseMultiplier * sensitivity, generator);
        });

    // N(0, std^2) shaped like `like`, drawn in float64 on the CPU from the generator, moved to like's device and dtype.
    private static Tensor Noise(Tensor like, double std, Generator generator)
    {
        if (!(std >= 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "noise multiplier must be >= 0");
        var noise = randn(like.shape, dtype: ScalarType.Float64, generator: generator) * std;
        return noise.to(like.device).to_type(like.dtype);
    }

    private static double Divisor(IReadOnlyDictionary<string, Tensor> perSample, int? n)
    {
        double d = n ?? perSample.Values.First().shape[0];
        return d > 0 ? d : throw new ArgumentOutOfRangeException(nameof(n), d, "batch size must be > 0");
    }
}
