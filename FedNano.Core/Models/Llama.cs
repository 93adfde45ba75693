using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>
/// Adds a low-rank (or any) correction to the output of a named linear layer of the LLM, e.g. the LoRA of
/// FedDPA-F. The base model stays one shared frozen copy; each client passes its own delta.
/// </summary>
public interface ILinearDelta
{
    /// <summary>
    /// The correction to add to the output of the linear layer <paramref name="name"/> (its parameter path
    /// without <c>.weight</c>, e.g. <c>model.layers.3.self_attn.q_proj</c>) for input <paramref name="x"/>,
    /// or null for none.
    /// </summary>
    Tensor? Delta(string name, Tensor x);
}

/// <summary>Root-mean-square layer norm of LLaMA: <c>x / sqrt(mean(x^2) + eps) * weight</c>, computed in float32.</summary>
public sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    /// <summary>A norm over the last dimension of width <paramref name="size"/>.</summary>
    public LlamaRmsNorm(long size, double eps, string name = "norm") : base(name)
    {
        weight = new Parameter(ones(size));
        this.eps = eps;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.to_type(ScalarType.Float32);
        h = h * rsqrt(h.pow(2).mean([-1L], keepdim: true) + eps);
        return (weight * h.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embedding of LLaMA (Hugging Face's <c>rotate_half</c> convention).</summary>
internal static class Rotary
{
    /// <summary>cos and sin tables of shape [T, headDim] for positions 0..T-1.</summary>
    public static (Tensor cos, Tensor sin) Tables(long length, int headDim, double theta, Device device)
    {
        var invFreq = 1.0 / pow(theta, arange(0, headDim, 2, ScalarType.Float64, device) / headDim);
        var t = arange(length, ScalarType.Float64, device);
        var freqs = outer(t, invFreq);
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to_type(ScalarType.Float32), emb.sin().to_type(ScalarType.Float32));
    }

    /// <summary>Applies the rotation to x of shape [B, H, T, headDim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return x * cos.to_type(x.dtype) + rotated * sin.to_type(x.dtype);
    }
}

/// <summary>Causal multi-head self-attention of LLaMA with rotary positions and grouped key/value heads.</summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, o_proj;
    private readonly int heads, kvHeads, headDim;
    private readonly string path;

    internal Tensor? Cos, Sin;
    internal ILinearDelta? DeltaSource;

    /// <summary>The attention of block <paramref name="layer"/>.</summary>
    public LlamaAttention(LlamaConfig c, int layer) : base("self_attn")
    {
        heads = c.NumAttentionHeads; kvHeads = c.KeyValueHeads; headDim = c.HeadDim;
        q_proj = nn.Linear(c.HiddenSize, heads * headDim, hasBias: false);
        k_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: false);
        v_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: false);
        o_proj = nn.Linear(heads * headDim, c.HiddenSize, hasBias: false);
        path = $"model.layers.{layer}.self_attn.";
        RegisterComponents();
    }

    private Tensor Project(Linear linear, string name, Tensor x) => LlamaMlp.Apply(linear, path + name, x, DeltaSource);

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var q = Project(q_proj, "q_proj", x).view(b, t, heads, headDim).transpose(1, 2);
        var k = Project(k_proj, "k_proj", x).view(b, t, kvHeads, headDim).transpose(1, 2);
        var v = Project(v_proj, "v_proj", x).view(b, t, kvHeads, headDim).transpose(1, 2);
        q = Rotary.Apply(q, Cos!, Sin!);
        k = Rotary.Apply(k, Cos!, Sin!);
        if (kvHeads != heads)
        {
            k = k.repeat_interleave(heads / kvHeads, dim: 1);
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        var o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        return Project(o_proj, "o_proj", o.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

/// <summary>The SwiGLU MLP of LLaMA: <c>down(silu(gate(x)) * up(x))</c>.</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear gate_proj, up_proj, down_proj;
    private readonly string path;
    internal ILinearDelta? DeltaSource;

    /// <summary>The MLP of block <paramref name="layer"/>.</summary>
    public LlamaMlp(LlamaConfig c, int layer) : base("mlp")
    {
        gate_proj = nn.Linear(c.HiddenSize, c.IntermediateSize, hasBias: false);
        up_proj = nn.Linear(c.HiddenSize, c.IntermediateSize, hasBias: false);
        down_proj = nn.Linear(c.IntermediateSize, c.HiddenSize, hasBias: false);
        path = $"model.layers.{layer}.mlp.";
        RegisterComponents();
    }

    internal static Tensor Apply(Linear linear, string name, Tensor x, ILinearDelta? delta)
    {
        var y = linear.forward(x);
        return delta?.Delta(name, x) is { } d ? y + d.to_type(y.dtype) : y;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) =>
        Apply(down_proj, path + "down_proj",
            nn.functional.silu(Apply(gate_proj, path + "gate_proj", x, DeltaSource)) * Apply(up_proj, path + "up_proj", x, DeltaSource),
            DeltaSource);
}

/// <summary>A pre-norm LLaMA decoder block.</summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private readonly LlamaRmsNorm input_layernorm, post_attention_layernorm;

    /// <summary>Block number <paramref name="layer"/>.</summary>
    public LlamaDecoderLayer(LlamaConfig c, int layer) : base($"layer{layer}")
    {
        self_attn = new LlamaAttention(c, layer);
        mlp = new LlamaMlp(c, layer);
        input_layernorm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps);
        post_attention_layernorm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    internal void Prepare(Tensor cos, Tensor sin, ILinearDelta? delta)
    {
        self_attn.Cos = cos; self_attn.Sin = sin;
        self_attn.DeltaSource = delta; mlp.DeltaSource = delta;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var h = x + self_attn.forward(input_layernorm.forward(x));
        return h + mlp.forward(post_attention_layernorm.forward(h));
    }
}

/// <summary>The LLaMA decoder stack (Hugging Face's <c>LlamaModel</c>): token embedding, blocks, final norm.</summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly LlamaRmsNorm norm;
    private readonly LlamaConfig config;

    /// <summary>A decoder of the given configuration, randomly initialised.</summary>
    public LlamaModel(LlamaConfig c) : base("model")
    {
        config = c;
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer(c, i)).ToArray());
        norm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    /// <summary>The token embedding (the client keeps a frozen copy of it).</summary>
    public Embedding EmbedTokens => embed_tokens;

    /// <summary>
    /// Final hidden states [B, T, d] for input embeddings [B, T, d] (causal, positions 0..T-1). The embeddings are
    /// cast to the model's dtype (a client may send float32 to a half-precision LLM; the gradient returns in the sender's dtype).
    /// </summary>
    public Tensor Forward(Tensor inputsEmbeds, ILinearDelta? delta)
    {
        var (cos, sin) = Rotary.Tables(inputsEmbeds.shape[1], config.HeadDim, config.RopeTheta, inputsEmbeds.device);
        var h = inputsEmbeds.to_type(embed_tokens.weight!.dtype);
        foreach (var layer in layers)
        {
            layer.Prepare(cos, sin, delta);
            h = layer.forward(h);
        }
        return norm.forward(h);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputsEmbeds) => Forward(inputsEmbeds, null);
}

/// <summary>
/// The LLaMA language model with its LM head (Hugging Face's <c>LlamaForCausalLM</c>). It takes input
/// <em>embeddings</em>, as the server side of the FedNano split does, and returns logits.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>
{
    private readonly LlamaModel model;
    private readonly Linear lm_head;

    /// <summary>A language model of the given configuration, randomly initialised.</summary>
    public LlamaForCausalLM(LlamaConfig c) : base("language_model")
    {
        Config = c;
        model = new LlamaModel(c);
        lm_head = nn.Linear(c.HiddenSize, c.VocabSize, hasBias: false);
        if (c.TieWordEmbeddings) lm_head.weight = model.EmbedTokens.weight!;
        RegisterComponents();
    }

    /// <summary>The configuration it was built from.</summary>
    public LlamaConfig Config { get; }
    /// <summary>The decoder stack.</summary>
    public LlamaModel Model => model;

    /// <summary>Final hidden states (after the last norm) for input embeddings.</summary>
    public Tensor Hidden(Tensor inputsEmbeds, ILinearDelta? delta = null) => model.Forward(inputsEmbeds, delta);

    /// <summary>Logits [B, T, vocab] for input embeddings [B, T, d], with an optional per-client linear delta.</summary>
    public Tensor Forward(Tensor inputsEmbeds, ILinearDelta? delta) => lm_head.forward(model.Forward(inputsEmbeds, delta));

    /// <summary>Logits of the hidden states [.., d] (the LM head alone).</summary>
    public Tensor Head(Tensor hidden) => lm_head.forward(hidden);

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputsEmbeds) => Forward(inputsEmbeds, null);
}
