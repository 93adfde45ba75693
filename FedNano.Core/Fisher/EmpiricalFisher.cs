using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>
/// The empirical Fisher (FedNano's): the mean over the client's training samples of the squared exact per-sample
/// gradient of the true answer's log-likelihood, computed in one extra pass after local training.
/// "FedNano: Toward Lightweight Federated Tuning for Pretrained Multimodal Large Language Models" (2025), after
/// Matena and Raffel, "Merging Models with Fisher-Weighted Averaging", NeurIPS 2022.
/// </summary>
public sealed class EmpiricalFisher(bool normalise = false) : IFisherPass
{
    /// <summary>The estimator's name in configs and the CLI (its only spelling).</summary>
    public const string EstimatorName = "empirical";

    /// <inheritdoc/>
    public string Name => EstimatorName;

    /// <inheritdoc/>
    public bool Normalise { get; } = normalise;

    /// <inheritdoc/>
    public Tensor Answers(Tensor trueAnswers, Func<Tensor> optionLogProbs, Generator generator) => trueAnswers;
}
