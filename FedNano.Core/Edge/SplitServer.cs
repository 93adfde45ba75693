using FedNano.Models;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>
/// The server side of the FedNano split: the frozen LLM. It receives the clients' input-embedding sequences,
/// computes the loss or the answer scores, and for training sends back the gradient with respect to the
/// sequence it received (the only thing that crosses back to the client).
/// </summary>
public sealed class SplitServer
{
    /// <summary>Default <see cref="TrainTokens"/>.</summary>
    public const int DefaultTrainTokens = 4096;

    /// <summary>
    /// A server that runs <paramref name="llm"/>, which it freezes; with <paramref name="activationCheckpointing"/>
    /// its blocks are recomputed in the backward instead of keeping their activations; a training step's sequences
    /// go through the LLM in micro-batches of at most <paramref name="trainTokens"/> tokens.
    /// </summary>
    public SplitServer(LlamaForCausalLM llm, bool activationCheckpointing = false, int trainTokens = DefaultTrainTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(trainTokens);
        Llm = llm;
        ActivationCheckpointing = activationCheckpointing;
        TrainTokens = trainTokens;
        foreach (var p in llm.parameters()) p.requires_grad = false;
        llm.eval();
    }

    /// <summary>The frozen language model.</summary>
    public LlamaForCausalLM Llm { get; }

    /// <summary>Whether training steps recompute the blocks in the backward (activation checkpointing).</summary>
    public bool ActivationCheckpointing { get; }

    /// <summary>
    /// Most tokens (samples times the padded sequence length) of one forward and backward through the LLM in a
    /// training step; a longer batch goes through in micro-batches of whole samples, their gradients concatenated
    /// (each sample's depends on its own sequence alone), so a step's activations are bounded whatever its batch size.
    /// </summary>
    public int TrainTokens { get; }

    /// <summary>
    /// The server's part of a training step on the sequences <paramref name="received"/> [B, T, d]: the per-sample
    /// negative log-likelihood [B] of the target tokens (labels != -100) and the gradient of its mean (or
    /// <paramref name="sum"/>) with respect to <paramref name="received"/>, the message back to the client.
    /// <paramref name="delta"/> is a per-client correction inside the LLM (FedDPA-F's LoRA, whose gradients
    /// accumulate in its parameters), null for FedNano. Runs in micro-batches of <see cref="TrainTokens"/>.
    /// </summary>
    public (Tensor nll, Tensor gradient) LossAndGradient(Tensor received, Tensor labels, bool sum = false,
        ILinearDelta? delta = null)
    {
        int rows = (int)received.shape[0], chunk = (int)Math.Max(1, TrainTokens / Math.Max(1, received.shape[1]));
        if (chunk >= rows) return Llm.TargetNllBackward(received, labels, sum, delta, ActivationCheckpointing);
        var nlls = new List<Tensor>();
        var gradients = new List<Tensor>();
        for (int r = 0; r < rows; r += chunk)
        {
            int end = Math.Min(rows, r + chunk);
            var (nll, g) = Llm.TargetNllBackward(received[r..end], labels[r..end], sum, delta, ActivationCheckpointing,
                meanOver: rows); // the mean over the whole batch
            nlls.Add(nll);
            gradients.Add(g);
        }
        return (cat(nlls, 0), cat(gradients, 0));
    }

    /// <summary>
    /// Log-probabilities [B, V] of the next token at the given position of each sample. With a
    /// <paramref name="cache"/>, the sequences continue the cached ones at <paramref name="positions"/> ([B, T]),
    /// attending only to the keys <paramref name="keyMask"/> allows (see <see cref="LlamaModel.Forward"/>).
    /// </summary>
    public Tensor NextTokenLogProbs(Tensor inputsEmbeds, long[] positionsInBatch, ILinearDelta? delta = null,
        KvCache? cache = null, Tensor? positions = null, Tensor? keyMask = null)
    {
        using var scope = NewDisposeScope();
        var hidden = Llm.Hidden(inputsEmbeds, delta, cache, positions, keyMask);
        var idx = tensor(positionsInBatch, device: hidden.device);
        var picked = hidden[arange(hidden.shape[0], device: hidden.device), idx];
        return Llm.Head(picked).to_type(ScalarType.Float32).log_softmax(-1).MoveToOuterDisposeScope();
    }
}
