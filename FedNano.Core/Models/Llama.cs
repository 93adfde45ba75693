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

/// <summary>Root-mean-square layer norm of LLaMA: <c>x / sqrt(mean(x^2) + eps) * weight</c>, computed in
/// float32.</summary>
public sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    // held for the module's lifetime: a Scalar converted implicitly per call can be finalised while libtorch still
    // reads it ("Unknown scalar type", seen once in a long sweep)
    private readonly Scalar eps;

    /// <summary>A norm over the last dimension of width <paramref name="size"/>.</summary>
    public LlamaRmsNorm(long size, double eps, string name = "norm") : base(name)
    {
        weight = new Parameter(ones(size));
        this.eps = eps.ToScalar();
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.to_type(ScalarType.Float32);
        h = h * rsqrt(h.square().mean([-1L], keepdim: true).add(eps));
        return (weight * h.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position tables: cos and sin of shape [B or 1, 1, T, headDim], float32.</summary>
/// <param name="Cos">Cosines.</param>
/// <param name="Sin">Sines.</param>
public sealed record Rope(Tensor Cos, Tensor Sin)
{
    /// <summary>
    /// Tables for <paramref name="positions"/> ([B or 1, T] int64) with LLaMA's frequencies
    /// (Hugging Face's <c>rotate_half</c> convention), computed in float64.
    /// </summary>
    public static Rope For(Tensor positions, int headDim, double theta)
    {
        using var scope = NewDisposeScope();
        var invFreq = 1.0 / pow(theta, arange(0, headDim, 2, ScalarType.Float64, positions.device) / headDim);
        var freqs = positions.to_type(ScalarType.Float64).unsqueeze(-1) * invFreq;   // [B, T, headDim / 2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                                // [B, 1, T, headDim]
        return new Rope(emb.cos().to_type(ScalarType.Float32).MoveToOuterDisposeScope(),
            emb.sin().to_type(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>Applies the rotation to x of shape [B, H, T, headDim].</summary>
    public Tensor Apply(Tensor x)
    {
        long half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return x * Cos.to_type(x.dtype) + rotated * Sin.to_type(x.dtype);
    }
}

/// <summary>
/// Keys and values of earlier positions, per block, for incremental decoding: each block appends the keys and
/// values of the positions it is given and attends over all of them. Holds [B, kvHeads, T, headDim] per block.
/// </summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] keys = new Tensor?[layers], values = new Tensor?[layers];

    /// <summary>Positions held (0 before the first forward).</summary>
    public long Length => keys[0]?.shape[2] ?? 0;

    /// <summary>Appends block <paramref name="layer"/>'s new keys and values; returns all of them.</summary>
    internal (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v)
    {
        var (oldK, oldV) = (keys[layer], values[layer]);
        var allK = oldK is null ? k : cat([oldK, k], 2);
        var allV = oldV is null ? v : cat([oldV, v], 2);
        keys[layer] = allK.DetachFromDisposeScope();
        values[layer] = allV.DetachFromDisposeScope();
        oldK?.Dispose(); oldV?.Dispose();
        return (allK, allV);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t?.Dispose();
        Array.Clear(keys); Array.Clear(values);
    }
}

/// <summary>
/// What a decoder block takes per call besides its weights (as Microsoft.ML.GenAI's <c>DecoderLayerInput</c>).
/// </summary>
/// <param name="HiddenStates">The residual stream [B, T, d].</param>
/// <param name="Rope">Rotary tables of the T positions.</param>
/// <param name="Delta">A per-client correction of the linear layers (FedDPA-F's LoRA), or null.</param>
/// <param name="Cache">Keys and values of earlier positions (incremental decoding), or null.</param>
/// <param name="KeyMask">
/// [B, T_keys] bool, the keys each sample may attend to (padding excluded) on top of causality; null: all.
/// </param>
public sealed record DecoderLayerInput(
    Tensor HiddenStates, Rope Rope, ILinearDelta? Delta = null, KvCache? Cache = null, Tensor? KeyMask = null);

/// <summary>Causal multi-head self-attention of LLaMA with rotary positions and grouped key/value heads.</summary>
public sealed class LlamaAttention : nn.Module<DecoderLayerInput, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, o_proj;
    private readonly int heads, kvHeads, headDim, layer;
    private readonly string path;

    /// <summary>The attention of block <paramref name="layer"/>.</summary>
    public LlamaAttention(LlamaConfig c, int layer) : base("self_attn")
    {
        heads = c.NumAttentionHeads; kvHeads = c.KeyValueHeads; headDim = c.HeadDim;
        q_proj = nn.Linear(c.HiddenSize, heads * headDim, hasBias: false);
        k_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: false);
        v_proj = nn.Linear(c.HiddenSize, kvHeads * headDim, hasBias: false);
        o_proj = nn.Linear(heads * headDim, c.HiddenSize, hasBias: false);
        this.layer = layer;
        path = $"model.layers.{layer}.self_attn.";
        RegisterComponents();
    }

    /// <summary>Attention over <see cref="DecoderLayerInput.HiddenStates"/> (already normed).</summary>
    public override Tensor forward(DecoderLayerInput input)
    {
        var x = input.HiddenStates;
        long b = x.shape[0], t = x.shape[1];
        Tensor Project(Linear l, string name) => LlamaMlp.Apply(l, path + name, x, input.Delta);
        var q = input.Rope.Apply(Project(q_proj, "q_proj").view(b, t, heads, headDim).transpose(1, 2));
        var k = input.Rope.Apply(Project(k_proj, "k_proj").view(b, t, kvHeads, headDim).transpose(1, 2));
        var v = Project(v_proj, "v_proj").view(b, t, kvHeads, headDim).transpose(1, 2);
        if (input.Cache is { } cache) (k, v) = cache.Append(layer, k, v);
        if (kvHeads != heads)
        {
            k = k.repeat_interleave(heads / kvHeads, dim: 1);
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        long keysLength = k.shape[2];
        Tensor o;
        if (input.KeyMask is null && keysLength == t)
            o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        else
        {
            // query i (at key index i + keysLength - t) sees keys up to itself, and only the unmasked ones
            var mask = ones(t, keysLength, ScalarType.Bool, x.device).tril(keysLength - t).unsqueeze(0).unsqueeze(0);
            if (input.KeyMask is { } keyMask) mask = mask.logical_and(keyMask.unsqueeze(1).unsqueeze(1));
            o = nn.functional.scaled_dot_product_attention(q, k, v, mask);
        }
        return LlamaMlp.Apply(o_proj, path + "o_proj", o.transpose(1, 2).reshape(b, t, heads * headDim), input.Delta);
    }
}

/// <summary>The SwiGLU MLP of LLaMA: <c>down(silu(gate(x)) * up(x))</c>.</summary>
public sealed class LlamaMlp : nn.Module<Tensor, ILinearDelta?, Tensor>
{
    private readonly Linear gate_proj, up_proj, down_proj;
    private readonly string path;

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

    /// <summary>The MLP of <paramref name="x"/>, each linear corrected by <paramref name="delta"/> if given.</summary>
    public override Tensor forward(Tensor x, ILinearDelta? delta)
    {
        var gate = nn.functional.silu(Apply(gate_proj, path + "gate_proj", x, delta));
        return Apply(down_proj, path + "down_proj", gate * Apply(up_proj, path + "up_proj", x, delta), delta);
    }
}

/// <summary>A pre-norm LLaMA decoder block.</summary>
public sealed class LlamaDecoderLayer : nn.Module<DecoderLayerInput, Tensor>
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

    /// <summary>
    /// The block's output [B, T, d]. Runs in a dispose scope of its own: only the output leaves it, so the
    /// block's intermediates are freed when it returns (autograd keeps what its backward needs).
    /// </summary>
    public override Tensor forward(DecoderLayerInput input)
    {
        using var scope = NewDisposeScope();
        var x = input.HiddenStates;
        var h = x + self_attn.forward(input with { HiddenStates = input_layernorm.forward(x) });
        return (h + mlp.forward(post_attention_layernorm.forward(h), input.Delta)).MoveToOuterDisposeScope();
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
        layers = new ModuleList<LlamaDecoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer(c, i)).ToArray());
        norm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    /// <summary>The token embedding (the client keeps a frozen copy of it).</summary>
    public Embedding EmbedTokens => embed_tokens;

    /// <summary>
    /// Final hidden states [B, T, d] for input embeddings [B, T, d]. The embeddings are cast to the model's dtype
    /// (a client may send float32 to a half-precision LLM; the gradient returns in the sender's dtype). Positions
    /// are 0..T-1 after the <paramref name="cache"/>'s length, or <paramref name="positions"/> ([B, T]) when given;
    /// <paramref name="keyMask"/> ([B, cached + T]) excludes padded keys. Each block's intermediates are freed
    /// as soon as it returns, and each block's input as soon as the next block has it, so the peak memory of a
    /// forward without gradient is one block's.
    /// </summary>
    public Tensor Forward(Tensor inputsEmbeds, ILinearDelta? delta = null, KvCache? cache = null,
        Tensor? positions = null, Tensor? keyMask = null)
    {
        using var scope = NewDisposeScope();
        var h = inputsEmbeds.to_type(embed_tokens.weight!.dtype);
        var rope = RopeFor(h, cache, positions);
        foreach (var layer in layers)
        {
            var next = layer.forward(new DecoderLayerInput(h, rope, delta, cache, keyMask));
            h.Dispose();
            h = next;
        }
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    private Rope RopeFor(Tensor h, KvCache? cache, Tensor? positions) => Rope.For(
        positions ?? arange(cache?.Length ?? 0, (cache?.Length ?? 0) + h.shape[1], ScalarType.Int64, h.device)
            .unsqueeze(0),
        config.HeadDim, config.RopeTheta);

    /// <summary>The loss a backward starts from: the sum, the mean, or the sum over
    /// <paramref name="meanOver"/>.</summary>
    internal static Tensor Reduce(Tensor loss, bool sum, long? meanOver) =>
        sum ? loss.sum() : meanOver is { } n ? loss.sum() / n : loss.mean();

    /// <summary>
    /// Activation checkpointing of the frozen blocks: runs the blocks without autograd keeping only each block's
    /// input, back-propagates the sum (or mean) of <paramref name="perSampleLoss"/> of the final hidden states, then
    /// recomputes the blocks one at a time from the last, back-propagating through each. Returns the per-sample loss
    /// (detached) and the gradient with respect to <paramref name="inputsEmbeds"/> (in its dtype); gradients also
    /// reach any trainable tensor of <paramref name="delta"/>. Peak memory: the blocks' inputs plus one block's
    /// activations.
    /// </summary>
    internal (Tensor loss, Tensor gradient) BackwardCheckpointed(
        Tensor inputsEmbeds, ILinearDelta? delta, Func<Tensor, Tensor> perSampleLoss, bool sum, long? meanOver = null)
    {
        using var scope = NewDisposeScope();
        Tensor h;
        using (no_grad()) h = inputsEmbeds.detach().to_type(embed_tokens.weight!.dtype);
        var rope = RopeFor(h, null, null);
        var inputs = new List<Tensor>();
        using (no_grad())
            foreach (var layer in layers)
            {
                inputs.Add(h);
                h = layer.forward(new DecoderLayerInput(h, rope, delta));
            }
        var last = h.requires_grad_(true);
        var loss = perSampleLoss(norm.forward(last));
        Reduce(loss, sum, meanOver).backward();
        var grad = last.grad!;
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            using var block = NewDisposeScope();
            var x = inputs[i].requires_grad_(true);
            layers[i].forward(new DecoderLayerInput(x, rope, delta)).backward([grad]);
            grad.Dispose();
            grad = x.grad!.MoveToOuterDisposeScope();
            x.Dispose();
        }
        return (loss.detach().MoveToOuterDisposeScope(), grad.to_type(inputsEmbeds.dtype).MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputsEmbeds) => Forward(inputsEmbeds);
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

    /// <summary>Final hidden states (after the last norm) of input embeddings; see
    /// <see cref="LlamaModel.Forward"/>.</summary>
    public Tensor Hidden(Tensor inputsEmbeds, ILinearDelta? delta = null, KvCache? cache = null,
        Tensor? positions = null, Tensor? keyMask = null) =>
        model.Forward(inputsEmbeds, delta, cache, positions, keyMask);

    /// <summary>Logits [B, T, vocab] for input embeddings [B, T, d], with an optional per-client linear
    /// delta.</summary>
    public Tensor Forward(Tensor inputsEmbeds, ILinearDelta? delta) =>
        lm_head.forward(model.Forward(inputsEmbeds, delta));

    /// <summary>Logits of the hidden states [.., d] (the LM head alone).</summary>
    public Tensor Head(Tensor hidden) => lm_head.forward(hidden);

    /// <summary>
    /// Per-sample negative log-likelihood [B] of the target tokens (labels != -100) for input embeddings
    /// [B, T, d]; logits are computed only where there is a label.
    /// </summary>
    public Tensor TargetNll(Tensor inputsEmbeds, Tensor labels, ILinearDelta? delta = null) =>
        NllOfHidden(model.Forward(inputsEmbeds, delta), labels);

    private Tensor NllOfHidden(Tensor hidden, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var where = labels.ne(-100);
        var rows = where.nonzero();
        var logits = lm_head.forward(hidden[where]).to_type(ScalarType.Float32);
        var nll = nn.functional.cross_entropy(logits, labels[where], reduction: nn.Reduction.None);
        return zeros(labels.shape[0], dtype: ScalarType.Float32, device: labels.device)
            .index_add(0, rows[.., 0], nll, 1.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The server's half of a training step: the per-sample target NLL [B] (detached) of
    /// <paramref name="inputsEmbeds"/>, and the gradient of its sum (<paramref name="sum"/>) or mean with respect
    /// to <paramref name="inputsEmbeds"/> (in its dtype), also accumulated into any trainable tensor of
    /// <paramref name="delta"/>. With <paramref name="checkpoint"/> the blocks are recomputed in the backward
    /// (activation checkpointing): the same gradients to float rounding, with one block's activations alive at a time.
    /// With <paramref name="meanOver"/> (and not <paramref name="sum"/>) the mean is the sum over that many samples:
    /// those of a whole batch when <paramref name="inputsEmbeds"/> is a micro-batch of it.
    /// </summary>
    public (Tensor nll, Tensor gradient) TargetNllBackward(Tensor inputsEmbeds, Tensor labels, bool sum = false,
        ILinearDelta? delta = null, bool checkpoint = false, long? meanOver = null)
    {
        if (checkpoint)
            return model.BackwardCheckpointed(inputsEmbeds, delta, h => NllOfHidden(h, labels), sum, meanOver);
        using var scope = NewDisposeScope();
        var x = inputsEmbeds.detach().requires_grad_(true);
        var nll = TargetNll(x, labels, delta);
        LlamaModel.Reduce(nll, sum, meanOver).backward();
        return (nll.detach().MoveToOuterDisposeScope(), x.grad!.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputsEmbeds) => Forward(inputsEmbeds, null);
}
