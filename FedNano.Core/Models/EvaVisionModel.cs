using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>
/// Patch (biased conv), class-token and position embeddings of BLIP-2's ViT (<c>Blip2VisionEmbeddings</c>).
/// </summary>
public sealed class EvaVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Parameter class_embedding, position_embedding;
    private readonly Conv2d patch_embedding;

    /// <summary>Embeddings of the given tower.</summary>
    public EvaVisionEmbeddings(Blip2VisionConfig c) : base("embeddings")
    {
        class_embedding = new Parameter(randn(1, 1, c.HiddenSize) * 0.02);
        patch_embedding = nn.Conv2d(c.NumChannels, c.HiddenSize, c.PatchSize, stride: c.PatchSize);
        position_embedding = new Parameter(randn(1, c.NumPatches + 1, c.HiddenSize) * 0.02);
        RegisterComponents();
    }

    /// <summary>[B, 1 + patches, d] from pixels [B, C, S, S].</summary>
    public override Tensor forward(Tensor pixels)
    {
        var patches = patch_embedding.forward(pixels.to_type(patch_embedding.weight!.dtype)).flatten(2).transpose(1, 2);
        var x = cat([class_embedding.expand(patches.shape[0], 1, -1), patches], 1);
        return x + position_embedding;
    }
}

/// <summary>
/// Self-attention of an EVA block (<c>Blip2Attention</c>): one bias-free fused <c>qkv</c> projection plus separate
/// <c>q_bias</c> and <c>v_bias</c> (the key has none), then <c>projection</c>.
/// </summary>
public sealed class EvaAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv, projection;
    private readonly Parameter? q_bias, v_bias;
    private readonly int heads, headDim;

    /// <summary>Attention of the given tower.</summary>
    public EvaAttention(Blip2VisionConfig c) : base("self_attn")
    {
        heads = c.NumAttentionHeads; headDim = c.HiddenSize / heads;
        qkv = nn.Linear(c.HiddenSize, 3 * c.HiddenSize, hasBias: false);
        if (c.QkvBias)
        {
            q_bias = new Parameter(zeros(c.HiddenSize));
            v_bias = new Parameter(zeros(c.HiddenSize));
        }
        projection = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var bias = q_bias is null ? null : cat([q_bias, zeros_like(v_bias!), v_bias!]);
        var mixed = nn.functional.linear(x, qkv.weight!, bias).view(b, t, 3, heads, headDim).permute(2, 0, 3, 1, 4);
        var o = nn.functional.scaled_dot_product_attention(mixed[0], mixed[1], mixed[2]);
        return projection.forward(o.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

/// <summary>The MLP of an EVA block: <c>fc2(gelu(fc1(x)))</c>.</summary>
public sealed class EvaMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;

    /// <summary>MLP of the given tower.</summary>
    public EvaMlp(Blip2VisionConfig c) : base("mlp")
    {
        fc1 = nn.Linear(c.HiddenSize, c.IntermediateSize);
        fc2 = nn.Linear(c.IntermediateSize, c.HiddenSize);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => fc2.forward(nn.functional.gelu(fc1.forward(x)));
}

/// <summary>A pre-norm EVA block (<c>Blip2EncoderLayer</c>).</summary>
public sealed class EvaEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly EvaAttention self_attn;
    private readonly LayerNorm layer_norm1, layer_norm2;
    private readonly EvaMlp mlp;

    /// <summary>A block of the given tower.</summary>
    public EvaEncoderLayer(Blip2VisionConfig c) : base("layer")
    {
        self_attn = new EvaAttention(c);
        layer_norm1 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new EvaMlp(c);
        layer_norm2 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The block's output; its intermediates are freed when it returns (autograd keeps what it
    /// needs).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.forward(layer_norm1.forward(x));
        return (h + mlp.forward(layer_norm2.forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>The stack of EVA blocks.</summary>
public sealed class EvaEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<EvaEncoderLayer> layers;

    /// <summary>The blocks of the given tower.</summary>
    public EvaEncoder(Blip2VisionConfig c) : base("encoder")
    {
        layers = new ModuleList<EvaEncoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new EvaEncoderLayer(c)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs the blocks, freeing each block's input once the next has it.</summary>
    public override Tensor forward(Tensor x) => Blocks.Chain(layers, x);
}

/// <summary>
/// BLIP-2's EVA ViT-g vision tower (Hugging Face's <c>Blip2VisionModel</c>, keys <c>vision_model.*</c>):
/// embeddings, blocks, <c>post_layernorm</c> (LAVIS' <c>ln_vision</c>, applied to every token).
/// </summary>
public sealed class EvaVisionModel : nn.Module<Tensor, Tensor>
{
    private readonly EvaVisionEmbeddings embeddings;
    private readonly EvaEncoder encoder;
    private readonly LayerNorm post_layernorm;

    /// <summary>A tower of the given configuration, randomly initialised.</summary>
    public EvaVisionModel(Blip2VisionConfig c) : base("vision_model")
    {
        embeddings = new EvaVisionEmbeddings(c);
        encoder = new EvaEncoder(c);
        post_layernorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>
    /// The features the Q-Former reads: <c>last_hidden_state</c> [B, 1 + patches, d] after <c>post_layernorm</c>.
    /// </summary>
    public override Tensor forward(Tensor pixels) =>
        post_layernorm.forward(encoder.forward(embeddings.forward(pixels)));
}
