using FedNano.Data;
using FedNano.Data.Prompts;
using FedNano.Tokenizers;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>
/// A loaded MLLM ready to be split: the model, its tokenizer, how it turns an image into the tensor its
/// vision tower takes, and how it wraps a prompt (a conversation template; identity for the tiny backbone).
/// </summary>
public sealed record Backbone(string Name, IMultimodalModel Model, ITextTokenizer Tokenizer,
    Func<SampleImage, Tensor> Pixels)
{
    /// <summary>Wraps a data set's prompt in the backbone's conversation template.</summary>
    public Func<Prompt, Prompt> Template { get; init; } = p => p;
}
