using FedNano.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>Building blocks shared by pretraining and the split: sequence assembly and the target loss.</summary>
internal static class Sequences
{
    /// <summary>Token embeddings of a batch with <paramref name="visual"/> ([images x P, d], batch-major) at the image places.</summary>
    public static Tensor Assemble(Embedding embed, Tensor? visual, EncodedBatch batch)
    {
        var x = embed.forward(batch.Ids);
        return visual is null ? x : x.masked_scatter(batch.IsImage.unsqueeze(-1), visual.to_type(x.dtype));
    }

    /// <summary>
    /// Per-sample negative log-likelihood [B] of the target tokens (labels != -100); logits are computed only
    /// where there is a label.
    /// </summary>
    public static Tensor TargetNll(LlamaForCausalLM llm, Tensor inputsEmbeds, Tensor labels, ILinearDelta? delta = null)
    {
        var hidden = llm.Hidden(inputsEmbeds, delta);
        var where = labels.ne(-100);
        var rows = where.nonzero();
        var logits = llm.Head(hidden[where]).to_type(ScalarType.Float32);
        var nll = nn.functional.cross_entropy(logits, labels[where], reduction: nn.Reduction.None);
        return zeros(labels.shape[0], dtype: ScalarType.Float32, device: labels.device).index_add(0, rows[.., 0], nll, 1.0);
    }
}
