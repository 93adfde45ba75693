using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>Patch, class-token and position embeddings of a CLIP ViT.</summary>
public sealed class ClipVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Parameter class_embedding;
    private readonly Conv2d patch_embedding;
    private readonly Embedding position_embedding;

    /// <summary>Embeddings of the given tower.</summary>
    public ClipVisionEmbeddings(ClipVisionConfig c) : base("embeddings")
    {
        class_embedding = new Parameter(randn(c.HiddenSize) * 0.02);
        patch_embedding = nn.Conv2d(c.NumChannels, c.HiddenSize, c.PatchSize, stride: c.PatchSize, bias: false);
        position_embedding = nn.Embedding(c.NumPatches + 1, c.HiddenSize);
        RegisterComponents();
    }

    /// <summary>[B, 1 + patches, d] from pixels [B, C, S, S].</summary>
    public override Tensor forward(Tensor pixels)
    {
        var patches = patch_embedding.forward(pixels.to_type(patch_embedding.weight!.dtype)).flatten(2).transpose(1, 2);
        var cls = class_embedding.expand(patches.shape[0], 1, -1);
        var x = cat([cls, patches], 1);
        return x + position_embedding.forward(arange(x.shape[1], ScalarType.Int64, x.device)).unsqueeze(0);
    }
}

/// <summary>Multi-head self-attention of a CLIP encoder block (all positions, no mask).</summary>
public sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, out_proj;
    private readonly int heads, headDim;

    /// <summary>Attention of the given tower.</summary>
    public ClipAttention(ClipVisionConfig c) : base("self_attn")
    {
        heads = c.NumAttentionHeads; headDim = c.HiddenSize / heads;
        q_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        k_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        v_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        out_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor Heads(Linear l) => l.forward(x).view(b, t, heads, headDim).transpose(1, 2);
        var o = nn.functional.scaled_dot_product_attention(Heads(q_proj), Heads(k_proj), Heads(v_proj));
        return out_proj.forward(o.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

/// <summary>The MLP of a CLIP encoder block: <c>fc2(act(fc1(x)))</c>.</summary>
public sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    private readonly bool quickGelu;

    /// <summary>MLP of the given tower.</summary>
    public ClipMlp(ClipVisionConfig c) : base("mlp")
    {
        fc1 = nn.Linear(c.HiddenSize, c.IntermediateSize);
        fc2 = nn.Linear(c.IntermediateSize, c.HiddenSize);
        quickGelu = c.HiddenAct == "quick_gelu";
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var h = fc1.forward(x);
        h = quickGelu ? h * sigmoid(1.702 * h) : nn.functional.gelu(h);
        return fc2.forward(h);
    }
}

/// <summary>A pre-norm CLIP encoder block.</summary>
public sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1, layer_norm2;
    private readonly ClipMlp mlp;

    /// <summary>A block of the given tower.</summary>
    public ClipEncoderLayer(ClipVisionConfig c) : base("layer")
    {
        self_attn = new ClipAttention(c);
        layer_norm1 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new ClipMlp(c);
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

/// <summary>The stack of CLIP encoder blocks.</summary>
public sealed class ClipEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    /// <summary>The blocks of the given tower.</summary>
    public ClipEncoder(ClipVisionConfig c) : base("encoder")
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, c.NumHiddenLayers)
            .Select(_ => new ClipEncoderLayer(c)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs the first <paramref name="count"/> blocks, freeing each block's input once the next has
    /// it.</summary>
    public Tensor Forward(Tensor x, int count)
    {
        return Blocks.Chain(layers.Take(count), x);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => Forward(x, layers.Count);
}

/// <summary>The CLIP vision transformer (Hugging Face's <c>CLIPVisionTransformer</c>).</summary>
public sealed class ClipVisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ClipVisionEmbeddings embeddings;
    private readonly LayerNorm pre_layrnorm, post_layernorm;
    private readonly ClipEncoder encoder;
    private readonly int layerCount;

    /// <summary>A tower of the given configuration, randomly initialised.</summary>
    public ClipVisionTransformer(ClipVisionConfig c) : base("vision_model")
    {
        embeddings = new ClipVisionEmbeddings(c);
        pre_layrnorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        encoder = new ClipEncoder(c);
        post_layernorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        layerCount = c.NumHiddenLayers;
        RegisterComponents();
    }

    /// <summary>
    /// Hidden states number <paramref name="featureLayer"/> in Hugging Face's <c>hidden_states</c> tuple
    /// (0 = embeddings after <c>pre_layrnorm</c>, negative counts from the end: -2 is LLaVA's choice).
    /// </summary>
    public Tensor HiddenState(Tensor pixels, int featureLayer)
    {
        int count = featureLayer < 0 ? layerCount + 1 + featureLayer : featureLayer;
        return encoder.Forward(pre_layrnorm.forward(embeddings.forward(pixels)), count);
    }

    /// <summary>The pooled output: <c>post_layernorm</c> of the class token after all blocks.</summary>
    public override Tensor forward(Tensor pixels) => post_layernorm.forward(HiddenState(pixels, layerCount)[.., 0]);
}

/// <summary>A CLIP vision tower as LLaVA uses it (Hugging Face's <c>CLIPVisionModel</c>; keys
/// <c>vision_model.*</c>).</summary>
public sealed class ClipVisionModel : nn.Module<Tensor, Tensor>
{
    private readonly ClipVisionTransformer vision_model;

    /// <summary>A tower of the given configuration, randomly initialised.</summary>
    public ClipVisionModel(ClipVisionConfig c) : base("vision_tower")
    {
        Config = c;
        vision_model = new ClipVisionTransformer(c);
        RegisterComponents();
    }

    /// <summary>The configuration it was built from.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>
    /// Image features for the projector, as LLaVA selects them: hidden state <paramref name="featureLayer"/>,
    /// with the class token dropped when <paramref name="dropClassToken"/> (LLaVA-1.5: -2, dropped).
    /// </summary>
    public Tensor Features(Tensor pixels, int featureLayer = -2, bool dropClassToken = true)
    {
        var h = vision_model.HiddenState(pixels, featureLayer);
        return dropClassToken ? h[.., 1..] : h;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor pixels) => vision_model.forward(pixels);
}

/// <summary>Runs a stack of blocks.</summary>
internal static class Blocks
{
    /// <summary>
    /// <paramref name="x"/> through <paramref name="blocks"/> in turn, each block's input freed once the next block
    /// has it (autograd keeps what it needs); the caller's <paramref name="x"/> is left alone.
    /// </summary>
    public static Tensor Chain(IEnumerable<nn.Module<Tensor, Tensor>> blocks, Tensor x)
    {
        var h = x;
        foreach (var block in blocks)
        {
            var next = block.forward(h);
            if (!ReferenceEquals(h, x)) h.Dispose();
            h = next;
        }
        return ReferenceEquals(h, x) ? h.alias() : h;
    }
}
