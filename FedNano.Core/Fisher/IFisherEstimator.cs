using FedNano.Edge;
using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>
/// How a client estimates the diagonal Fisher information of its adapters for Fisher merging (see
/// <see cref="FisherEstimators"/> for the built-in ones). An estimator is either a pass over the client's data
/// after local training (<see cref="IFisherPass"/>) or an observer of local training's gradients
/// (<see cref="IGradientFisher"/>); with <see cref="Normalise"/> the client divides its estimate by its mean.
/// </summary>
public interface IFisherEstimator
{
    /// <summary>The estimator's name in configs and the CLI (e.g. <c>empirical</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Whether the client divides its estimate by its mean over all its values
    /// (<see cref="FisherEstimators.Normalised"/>), so every client's Fisher has mean 1 and merging weighs where,
    /// not how much, a client is informed.
    /// </summary>
    bool Normalise { get; }
}

/// <summary>
/// A Fisher estimate from one pass over the client's training data after local training: the mean over samples of
/// the squared exact per-sample gradient of the log-likelihood of an answer the estimator picks per sample.
/// </summary>
public interface IFisherPass : IFisherEstimator
{
    /// <summary>
    /// The option index [B] (int64) whose answer's log-likelihood gradient is squared for each sample of a batch.
    /// <paramref name="trueAnswers"/> [B] holds the samples' correct options (-1 for a free-form answer, whose true
    /// target is then used whatever is returned); <paramref name="optionLogProbs"/> gives, when called, the model's
    /// log-probabilities of the options [B, O] (<c>-inf</c> where a sample offers fewer; costs one forward of the
    /// LLM), <paramref name="generator"/> is the client's seeded source of any draw.
    /// </summary>
    Tensor Answers(Tensor trueAnswers, Func<Tensor> optionLogProbs, Generator generator);
}

/// <summary>A Fisher estimate accumulated from the gradients local training computes anyway (no extra pass).</summary>
public interface IGradientFisher : IFisherEstimator
{
    /// <summary>A fresh observer of one client's local training over <paramref name="parameters"/> (by name).</summary>
    IGradientObserver Observe(IReadOnlyDictionary<string, Tensor> parameters);
}

/// <summary>What watches one client's local steps: each step's gradient of the batch-mean task loss.</summary>
public interface IGradientObserver : IDisposable
{
    /// <summary>
    /// Called at every local step right after the task loss's backward (before proximal or extra terms and clipping)
    /// with the parameters' gradients by name; the tensors are only valid during the call.
    /// </summary>
    void Step(IReadOnlyDictionary<string, Tensor> gradients);

    /// <summary>The estimate after the last step, shaped like the parameters (the caller disposes it).</summary>
    AdapterState Estimate();
}
