using System.Text.Json.Serialization;

namespace FedNano.Privacy;

/// <summary>
/// Settings of differentially private local training (DP-SGD, <see cref="DpSgd"/>), the config's <c>dp</c>
/// object: <c>{"noise_multiplier": 1.1, "max_grad_norm": 1.0, "delta": 1e-5}</c>. Epsilon follows from these and
/// the steps a client runs (<see cref="RdpAccountant"/>); it is reported, not set. An exact Fisher pass (FedNano's
/// upload) is released through <see cref="DpSgd.NoisyFisher"/> with <see cref="FisherNoiseMultiplier"/>, counted too.
/// </summary>
public sealed record DpConfig
{
    /// <summary>Noise std over the clipping norm, sigma (0: clipping only, no privacy: epsilon is infinite).</summary>
    [JsonPropertyName("noise_multiplier")] public double NoiseMultiplier { get; init; } = 1.0;
    /// <summary>L2 norm C each sample's gradient over all adapter tensors is clipped to.</summary>
    [JsonPropertyName("max_grad_norm")] public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>The delta epsilon is reported at (below 1 / samples of a client is the usual choice).</summary>
    [JsonPropertyName("delta")] public double Delta { get; init; } = 1e-5;

    /// <summary>
    /// Noise multiplier of the Fisher upload, a Gaussian mechanism over all the client's samples (sampling rate 1, so
    /// it costs more privacy than a sampled step with the same sigma); null: <see cref="NoiseMultiplier"/>.
    /// </summary>
    [JsonPropertyName("fisher_noise_multiplier")] public double? FisherNoiseMultiplier { get; init; }

    /// <summary>The Fisher upload's noise multiplier in effect.</summary>
    [JsonIgnore] public double FisherSigma => FisherNoiseMultiplier ?? NoiseMultiplier;

    /// <summary>Throws <see cref="ConfigException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        if (!(NoiseMultiplier >= 0 && double.IsFinite(NoiseMultiplier)))
            throw new ConfigException($"dp.noise_multiplier must be >= 0 (got {NoiseMultiplier}); 0 clips, no noise");
        if (!(MaxGradNorm > 0 && double.IsFinite(MaxGradNorm)))
            throw new ConfigException($"dp.max_grad_norm must be > 0 (got {MaxGradNorm}): the per-sample clip norm");
        if (FisherNoiseMultiplier is { } f && !(f >= 0 && double.IsFinite(f)))
            throw new ConfigException($"dp.fisher_noise_multiplier must be >= 0 (got {f}); " +
                                      "leave it out for noise_multiplier");
        if (!(Delta > 0 && Delta < 1))
            throw new ConfigException($"dp.delta must be in (0, 1) (got {Delta}), e.g. 1e-5");
    }
}
