using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>
/// MiniGPT-4 with the parameter names of Hugging Face's <c>Blip2ForConditionalGeneration</c>: the EVA ViT-g tower
/// (<c>vision_model.*</c>), the Q-Former (<c>qformer.*</c>) and its <c>query_tokens</c>, the linear
/// <c>language_projection</c> (MiniGPT-4's <c>llama_proj</c>) and a LLaMA/Vicuna <c>language_model.*</c>.
/// As an <see cref="IVisualEncoder"/> it turns each image into <see cref="MiniGpt4Config.NumQueryTokens"/> LLM-width
/// tokens (ViT, Q-Former, projection); under the FedNano split that path and the token embedding go to the client,
/// the language model to the server.
/// </summary>
public sealed class MiniGpt4Model : nn.Module<Tensor, Tensor>, IMultimodalModel
{
    private readonly EvaVisionModel vision_model;
    private readonly Blip2QFormerModel qformer;
    private readonly Parameter query_tokens;
    private readonly Linear language_projection;
    private readonly LlamaForCausalLM language_model;

    /// <summary>A model of the given configuration, randomly initialised (on the default device).</summary>
    public MiniGpt4Model(MiniGpt4Config c) : base("minigpt4")
    {
        Config = c;
        vision_model = new EvaVisionModel(c.VisionConfig);
        qformer = new Blip2QFormerModel(c.QFormerConfig);
        query_tokens = new Parameter(randn(1, c.NumQueryTokens, c.QFormerConfig.HiddenSize) * 0.02);
        language_projection = nn.Linear(c.QFormerConfig.HiddenSize, c.TextConfig.HiddenSize);
        language_model = new LlamaForCausalLM(c.TextConfig);
        RegisterComponents();
    }

    /// <summary>The configuration it was built from.</summary>
    public MiniGpt4Config Config { get; }
    /// <summary>The EVA ViT-g vision tower.</summary>
    public EvaVisionModel VisionModel => vision_model;
    /// <summary>The Q-Former.</summary>
    public Blip2QFormerModel QFormer => qformer;
    /// <summary>The learned query tokens [1, queries, d_qformer].</summary>
    public Parameter QueryTokens => query_tokens;
    /// <summary>The projection from the Q-Former to the language model.</summary>
    public Linear LanguageProjection => language_projection;
    /// <summary>The language model.</summary>
    public LlamaForCausalLM LanguageModel => language_model;

    /// <summary>
    /// The parameters of the visual path (tower, Q-Former, queries, projection), as the client holds them.
    /// </summary>
    public IEnumerable<(string name, Parameter parameter)> VisualParameters() =>
        named_parameters().Where(p => !p.name.StartsWith("language_model.", StringComparison.Ordinal));

    /// <inheritdoc/>
    public int TokensPerImage => Config.NumQueryTokens;

    /// <summary>
    /// Visual tokens [B, queries, d_text] of pixels [B, 3, S, S], with autograd as the caller set it.
    /// </summary>
    public Tensor ImageTokens(Tensor pixels)
    {
        var image = vision_model.forward(pixels);
        var queries = query_tokens.expand(image.shape[0], -1, -1);
        return language_projection.forward(qformer.forward(queries, image));
    }

    /// <inheritdoc/>
    public Tensor Encode(Tensor pixels)
    {
        using var _ = no_grad();
        return ImageTokens(pixels);
    }

    /// <inheritdoc/>
    public int ImageSize => Config.VisionConfig.ImageSize;

    /// <summary>The Q-Former's output [N, queries, d_qformer] for pixels [N, 3, S, S]: what the projection
    /// maps.</summary>
    public Tensor Features(Tensor pixels)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var image = vision_model.forward(pixels);
        return qformer.forward(query_tokens.expand(image.shape[0], -1, -1), image).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public nn.Module<Tensor, Tensor> CopyConnector()
    {
        var copy = nn.Linear(Config.QFormerConfig.HiddenSize, Config.TextConfig.HiddenSize);
        copy.load_state_dict(language_projection.state_dict());
        return copy.to(language_projection.weight.device);
    }

    /// <inheritdoc/>
    public Ledgers.ArchitectureParameters Architecture(string name) =>
        Ledgers.ArchitectureParameters.MiniGpt4(Config, name);

    /// <summary>Not used: the model runs in pieces through the split.</summary>
    public override Tensor forward(Tensor pixels) => ImageTokens(pixels);
}
