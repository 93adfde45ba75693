using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>Sequence assembly shared by pretraining and the split.</summary>
internal static class Sequences
{
    /// <summary>
    /// Token embeddings of a batch with <paramref name="visual"/> ([images x P, d], batch-major) at the image places.
    /// </summary>
    public static Tensor Assemble(Embedding embed, Tensor? visual, EncodedBatch batch)
    {
        var x = embed.forward(batch.Ids);
        return visual is null ? x : x.masked_scatter(batch.IsImage.unsqueeze(-1), visual.to_type(x.dtype));
    }
}
