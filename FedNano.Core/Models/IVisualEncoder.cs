using TorchSharp;

namespace FedNano.Models;

/// <summary>The client's frozen visual path: images to LLM-width tokens.</summary>
public interface IVisualEncoder
{
    /// <summary>Tokens each image becomes (576 for LLaVA-1.5 at 336 px, 32 for MiniGPT-4).</summary>
    int TokensPerImage { get; }

    /// <summary>Tokens [N, TokensPerImage, d_llm] of pixel values [N, C, S, S] (no gradient needed).</summary>
    torch.Tensor Encode(torch.Tensor pixels);
}
