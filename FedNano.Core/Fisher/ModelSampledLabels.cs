using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>
/// The label draw of the model-sampled ("true") Fisher, <c>F = E_x E_{y ~ p_theta(y|x)} [(d log p_theta(y|x) /
/// d theta)^2]</c>: the gradient pass uses, in place of the sample's true answer (the empirical Fisher), an answer
/// drawn from the model's own predictive distribution. For multiple choice that distribution is the softmax of the
/// option letters' next-token log-probabilities, renormalised over the options the sample offers (as evaluation
/// scores them). Kunstner, Balles and Hennig, "Limitations of the Empirical Fisher Approximation for Natural
/// Gradient Descent", NeurIPS 2019, on why the two differ.
/// </summary>
public static class ModelSampledLabels
{
    /// <summary>
    /// Draws <paramref name="draws"/> option indices per sample, with replacement, from
    /// <paramref name="optionLogProbs"/> [B, O] (log-probabilities or any logits; <c>-inf</c> where a sample has no
    /// such option, which is then never drawn). Returns int64 [B, draws] on the input's device; the draw itself is
    /// made on the CPU from <paramref name="generator"/>, so a seeded generator gives the same labels on any device.
    /// </summary>
    public static Tensor Draw(Tensor optionLogProbs, Generator generator, int draws = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(draws);
        if (optionLogProbs.dim() != 2)
        {
            var shape = string.Join(", ", optionLogProbs.shape);
            throw new ArgumentException($"expected option log-probs [B, O], got [{shape}]", nameof(optionLogProbs));
        }
        using var scope = NewDisposeScope();
        var logits = optionLogProbs.detach().to_type(ScalarType.Float64).cpu();
        if (!logits.isfinite().any(1).all().item<bool>())
            throw new ArgumentException(
                "every sample needs at least one option with a finite log-probability", nameof(optionLogProbs));
        var probs = nn.functional.softmax(logits, 1);
        var labels = multinomial(probs, draws, replacement: true, generator: generator);
        return labels.to(optionLogProbs.device).MoveToOuterDisposeScope();
    }
}
