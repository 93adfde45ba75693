using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>
/// Multi-head attention of the Q-Former (<c>Blip2QFormerMultiHeadAttention</c>): <c>query</c> reads the queries,
/// <c>key</c>/<c>value</c> read the queries (self-attention) or the image features (cross-attention); no mask.
/// </summary>
public sealed class QFormerMultiHeadAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear query, key, value;
    private readonly int heads, headDim;

    /// <summary>Self-attention, or cross-attention to features of width <c>encoder_hidden_size</c>.</summary>
    public QFormerMultiHeadAttention(Blip2QFormerConfig c, bool crossAttention) : base("attention")
    {
        heads = c.NumAttentionHeads; headDim = c.HiddenSize / heads;
        int source = crossAttention ? c.EncoderHiddenSize : c.HiddenSize;
        query = nn.Linear(c.HiddenSize, c.HiddenSize);
        key = nn.Linear(source, c.HiddenSize);
        value = nn.Linear(source, c.HiddenSize);
        RegisterComponents();
    }

    /// <summary>
    /// Context [B, T, d] of queries <paramref name="x"/> [B, T, d] reading <paramref name="source"/> [B, S, d_s].
    /// </summary>
    public override Tensor forward(Tensor x, Tensor source)
    {
        long b = x.shape[0];
        Tensor Heads(Linear l, Tensor input) =>
            l.forward(input).view(b, input.shape[1], heads, headDim).transpose(1, 2);
        var o = nn.functional.scaled_dot_product_attention(Heads(query, x), Heads(key, source), Heads(value, source));
        return o.transpose(1, 2).reshape(b, x.shape[1], heads * headDim);
    }
}

/// <summary>
/// BERT's residual output: <c>LayerNorm(dense(h) + input)</c> (transformers' <c>Blip2QFormerSelfOutput</c> and
/// <c>Blip2QFormerOutput</c>).
/// </summary>
public sealed class QFormerResidualOutput : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;

    /// <summary>An output from width <paramref name="inWidth"/> back to the Q-Former's width.</summary>
    public QFormerResidualOutput(Blip2QFormerConfig c, int inWidth, string name) : base(name)
    {
        dense = nn.Linear(inWidth, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary><c>LayerNorm(dense(<paramref name="h"/>) + <paramref name="input"/>)</c>.</summary>
    public override Tensor forward(Tensor h, Tensor input) => LayerNorm.forward(dense.forward(h) + input);
}

/// <summary>Attention plus its residual output (<c>Blip2QFormerAttention</c>).</summary>
public sealed class QFormerAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly QFormerMultiHeadAttention attention;
    private readonly QFormerResidualOutput output;

    /// <summary>Self-attention (<c>attention</c>) or cross-attention to the image (<c>crossattention</c>).</summary>
    public QFormerAttention(Blip2QFormerConfig c, bool crossAttention)
        : base(crossAttention ? "crossattention" : "attention")
    {
        attention = new QFormerMultiHeadAttention(c, crossAttention);
        output = new QFormerResidualOutput(c, c.HiddenSize, "output");
        RegisterComponents();
    }

    /// <summary>
    /// <paramref name="x"/> attending to <paramref name="source"/> (itself for self-attention), plus residual.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor source) => output.forward(attention.forward(x, source), x);
}

/// <summary>The query feed-forward's first half: <c>gelu(dense(x))</c> (<c>Blip2QFormerIntermediate</c>).</summary>
public sealed class QFormerIntermediate : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;

    /// <summary>The intermediate of the given Q-Former.</summary>
    public QFormerIntermediate(Blip2QFormerConfig c) : base("intermediate_query")
    {
        dense = nn.Linear(c.HiddenSize, c.IntermediateSize);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => nn.functional.gelu(dense.forward(x));
}

/// <summary>
/// A Q-Former layer (<c>Blip2QFormerLayer</c>) as it runs on the query tokens alone: self-attention, cross-attention
/// to the image in layers <c>0, f, 2f, ...</c>, the query feed-forward. (The text feed-forward is unused by BLIP-2's
/// image path and MiniGPT-4, and absent.)
/// </summary>
public sealed class QFormerLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly QFormerAttention attention;
    private readonly QFormerAttention? crossattention;
    private readonly QFormerIntermediate intermediate_query;
    private readonly QFormerResidualOutput output_query;

    /// <summary>Layer number <paramref name="index"/>.</summary>
    public QFormerLayer(Blip2QFormerConfig c, int index) : base($"layer{index}")
    {
        attention = new QFormerAttention(c, crossAttention: false);
        if (index % c.CrossAttentionFrequency == 0) crossattention = new QFormerAttention(c, crossAttention: true);
        intermediate_query = new QFormerIntermediate(c);
        output_query = new QFormerResidualOutput(c, c.IntermediateSize, "output_query");
        RegisterComponents();
    }

    /// <summary>Queries [B, Q, d] after this layer, given the image features [B, S, d_vision].</summary>
    public override Tensor forward(Tensor queries, Tensor image)
    {
        using var scope = NewDisposeScope();
        var h = attention.forward(queries, queries);
        if (crossattention is not null) h = crossattention.forward(h, image);
        return output_query.forward(intermediate_query.forward(h), h).MoveToOuterDisposeScope();
    }
}

/// <summary>The Q-Former's layers.</summary>
public sealed class QFormerEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<QFormerLayer> layer;

    /// <summary>The layers of the given Q-Former.</summary>
    public QFormerEncoder(Blip2QFormerConfig c) : base("encoder")
    {
        layer = new ModuleList<QFormerLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(i => new QFormerLayer(c, i)).ToArray());
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor queries, Tensor image)
    {
        foreach (var l in layer) queries = l.forward(queries, image);
        return queries;
    }
}

/// <summary>
/// BLIP-2's Q-Former (Hugging Face's <c>Blip2QFormerModel</c>, keys <c>qformer.*</c>): <c>layernorm</c> of the query
/// embeddings, then the layers; returns <c>last_hidden_state</c>.
/// </summary>
public sealed class Blip2QFormerModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm layernorm;
    private readonly QFormerEncoder encoder;

    /// <summary>A Q-Former of the given configuration, randomly initialised.</summary>
    public Blip2QFormerModel(Blip2QFormerConfig c) : base("qformer")
    {
        layernorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        encoder = new QFormerEncoder(c);
        RegisterComponents();
    }

    /// <summary>Query outputs [B, Q, d] of query embeddings [B, Q, d] reading image features [B, S, d_v].</summary>
    public override Tensor forward(Tensor queryEmbeds, Tensor image) =>
        encoder.forward(layernorm.forward(queryEmbeds), image.to_type(queryEmbeds.dtype));
}
