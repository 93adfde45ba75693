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
    /// <summary>A server that runs <paramref name="llm"/>, which it freezes.</summary>
    public SplitServer(LlamaForCausalLM llm)
    {
        Llm = llm;
        foreach (var p in llm.parameters()) p.requires_grad = false;
        llm.eval();
    }

    /// <summary>The frozen language model.</summary>
    public LlamaForCausalLM Llm { get; }

    /// <summary>
    /// Per-sample negative log-likelihood [B] of the target tokens (labels != -100) for input embeddings
    /// [B, T, d]; logits are computed only where there is a label. <paramref name="delta"/> is a per-client
    /// correction inside the LLM (FedDPA-F's LoRA), null for FedNano.
    /// </summary>
    public Tensor TargetNll(Tensor inputsEmbeds, Tensor labels, ILinearDelta? delta = null)
    {
        var hidden = Llm.Hidden(inputsEmbeds, delta);
        var where = labels.ne(-100);
        var rows = where.nonzero();                       // [N, 2] (batch, position)
        var logits = Llm.Head(hidden[where]).to_type(ScalarType.Float32);
        var nll = nn.functional.cross_entropy(logits, labels[where], reduction: nn.Reduction.None);
        return zeros(labels.shape[0], dtype: ScalarType.Float32, device: labels.device).index_add(0, rows[.., 0], nll, 1.0);
    }

    /// <summary>Log-probabilities [B, V] of the next token at the given position of each sample.</summary>
    public Tensor NextTokenLogProbs(Tensor inputsEmbeds, long[] positions, ILinearDelta? delta = null)
    {
        var hidden = Llm.Hidden(inputsEmbeds, delta);
        var idx = tensor(positions, device: hidden.device);
        var picked = hidden[arange(hidden.shape[0], device: hidden.device), idx];
        return Llm.Head(picked).to_type(ScalarType.Float32).log_softmax(-1);
    }
}
