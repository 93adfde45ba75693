using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>The client's frozen visual path: images to LLM-width tokens.</summary>
public interface IVisualEncoder
{
    /// <summary>Tokens each image becomes (576 for LLaVA-1.5 at 336 px, 32 for MiniGPT-4).</summary>
    int TokensPerImage { get; }

    /// <summary>Tokens [N, TokensPerImage, d_llm] of pixel values [N, C, S, S] (no gradient needed).</summary>
    Tensor Encode(Tensor pixels);
}

/// <summary>
/// An MLLM the FedNano split can cut: a visual path — frozen features, then a connector to LLM-width tokens —
/// and a LLaMA language model. The client keeps the visual path and the token embedding, the server the LLM.
/// </summary>
public interface IMultimodalModel : IVisualEncoder, IDisposable
{
    /// <summary>Every parameter of the model (a module's own <c>parameters</c>).</summary>
    IEnumerable<TorchSharp.Modules.Parameter> parameters(bool recurse = true);

    /// <summary>The language model (the server's part).</summary>
    LlamaForCausalLM LanguageModel { get; }

    /// <summary>Side of the square images the visual path takes, in pixels.</summary>
    int ImageSize { get; }

    /// <summary>The visual path's parameters, as the client holds them, by checkpoint name.</summary>
    IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> VisualParameters();

    /// <summary>The frozen features [N, P, d_features] the connector maps to tokens (no gradient).</summary>
    Tensor Features(Tensor pixels);

    /// <summary>A trainable copy of the connector (features to LLM-width tokens) on the model's device, for
    /// FedDPA-F.</summary>
    nn.Module<Tensor, Tensor> CopyConnector();

    /// <summary>Parameter counts of the architecture, for the ledgers.</summary>
    Ledgers.ArchitectureParameters Architecture(string name);
}
