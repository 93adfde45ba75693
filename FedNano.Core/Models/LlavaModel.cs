using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>LLaVA-1.5's <c>mlp2x_gelu</c> connector: <c>linear_2(gelu(linear_1(x)))</c>, vision width to LLM
/// width.</summary>
public sealed class LlavaMultiModalProjector : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear_1, linear_2;

    /// <summary>A projector from <paramref name="visionHidden"/> to <paramref name="textHidden"/>.</summary>
    public LlavaMultiModalProjector(int visionHidden, int textHidden) : base("multi_modal_projector")
    {
        linear_1 = nn.Linear(visionHidden, textHidden);
        linear_2 = nn.Linear(textHidden, textHidden);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) =>
        linear_2.forward(nn.functional.gelu(linear_1.forward(x.to_type(linear_1.weight.dtype))));
}

/// <summary>
/// A whole LLaVA-style MLLM with the parameter names of transformers' <c>LlavaForConditionalGeneration</c>
/// (<c>vision_tower.vision_model.*</c>, <c>multi_modal_projector.*</c>, <c>language_model.*</c>). The FedNano
/// split hands its vision tower, projector and token embedding to the clients' NanoEdge and its language
/// model to the server.
/// </summary>
public sealed class LlavaModel : nn.Module<Tensor, Tensor>, IMultimodalModel
{
    private readonly ClipVisionModel vision_tower;
    private readonly LlavaMultiModalProjector multi_modal_projector;
    private readonly LlamaForCausalLM language_model;

    /// <summary>A model of the given configuration, randomly initialised (on the default device).</summary>
    public LlavaModel(LlavaConfig c) : base("llava")
    {
        Config = c;
        vision_tower = new ClipVisionModel(c.VisionConfig);
        multi_modal_projector = new LlavaMultiModalProjector(c.VisionConfig.HiddenSize, c.TextConfig.HiddenSize);
        language_model = new LlamaForCausalLM(c.TextConfig);
        RegisterComponents();
    }

    /// <summary>The configuration it was built from.</summary>
    public LlavaConfig Config { get; }
    /// <summary>The CLIP vision tower.</summary>
    public ClipVisionModel VisionTower => vision_tower;
    /// <summary>The connector.</summary>
    public LlavaMultiModalProjector Projector => multi_modal_projector;
    /// <summary>The language model.</summary>
    public LlamaForCausalLM LanguageModel => language_model;

    /// <summary>Visual tokens [B, N, d_text] of pixels [B, C, S, S], as LLaVA selects and projects them.</summary>
    public Tensor ImageTokens(Tensor pixels) =>
        multi_modal_projector.forward(vision_tower.Features(pixels, Config.VisionFeatureLayer,
            Config.VisionFeatureSelectStrategy == "default"));

    /// <inheritdoc/>
    public int TokensPerImage => Config.ImageTokens;

    /// <inheritdoc/>
    public Tensor Encode(Tensor pixels)
    {
        using var _ = no_grad();
        return ImageTokens(pixels);
    }

    /// <inheritdoc/>
    public int ImageSize => Config.VisionConfig.ImageSize;

    /// <inheritdoc/>
    public IEnumerable<(string name, Parameter parameter)> VisualParameters() =>
        named_parameters().Where(p => !p.name.StartsWith("language_model.", StringComparison.Ordinal));

    /// <inheritdoc/>
    public Tensor Features(Tensor pixels)
    {
        using var _ = no_grad();
        return vision_tower.Features(pixels, Config.VisionFeatureLayer,
            Config.VisionFeatureSelectStrategy == "default");
    }

    /// <inheritdoc/>
    public nn.Module<Tensor, Tensor> CopyConnector()
    {
        var copy = new LlavaMultiModalProjector(Config.VisionConfig.HiddenSize, Config.TextConfig.HiddenSize);
        copy.load_state_dict(multi_modal_projector.state_dict());
        return copy.to(language_model.Model.EmbedTokens.weight!.device);
    }

    /// <inheritdoc/>
    public Ledgers.ArchitectureParameters Architecture(string name) =>
        Ledgers.ArchitectureParameters.Llava(Config, name);

    /// <summary>Not used: the model runs in pieces through the split (see <c>NanoEdge</c>).</summary>
    public override Tensor forward(Tensor pixels) => ImageTokens(pixels);
}
