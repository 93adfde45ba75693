using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>
/// The model-sampled ("true") Fisher, <c>E_x E_{y ~ p_theta(y|x)} [(d log p_theta(y|x) / d theta)^2]</c>: the same
/// pass as <see cref="EmpiricalFisher"/> but each sample's answer is drawn from the model's own distribution over
/// the options it offers (<see cref="ModelSampledLabels"/>), so its expectation is
/// <c>sum_y p_theta(y|x) g_y^2</c>; a free-form sample keeps its true answer. It does not shrink as a client fits
/// its data, unlike the empirical Fisher. Kunstner, Balles and Hennig, "Limitations of the Empirical Fisher
/// Approximation for Natural Gradient Descent", NeurIPS 2019.
/// </summary>
public sealed class SampledFisher(bool normalise = false) : IFisherPass
{
    /// <summary>The estimator's name in configs and the CLI (its only spelling).</summary>
    public const string EstimatorName = "sampled";

    /// <inheritdoc/>
    public string Name => EstimatorName;

    /// <inheritdoc/>
    public bool Normalise { get; } = normalise;

    /// <inheritdoc/>
    public Tensor Answers(Tensor trueAnswers, Func<Tensor> optionLogProbs, Generator generator)
    {
        using var scope = NewDisposeScope();
        var logProbs = optionLogProbs();
        var offers = logProbs.isfinite().any(1);
        // a free-form row offers no option: draw from a placeholder and keep its true answer
        var drawn = ModelSampledLabels.Draw(where(offers.unsqueeze(1), logProbs, zeros_like(logProbs)), generator)
            .squeeze(1);
        return where(offers, drawn, trueAnswers.to(drawn.device)).MoveToOuterDisposeScope();
    }
}
