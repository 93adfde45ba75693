using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Adapters;

/// <summary>Shape of the NanoAdapters: rank r and residual scale s of <c>x + s * up(down(x))</c>.</summary>
public sealed record AdapterConfig
{
    /// <summary>Rank of the low-rank residual (the paper uses 64).</summary>
    [JsonPropertyName("rank")] public int Rank { get; init; } = 64;
    /// <summary>Scale s of the residual.</summary>
    [JsonPropertyName("scale")] public double Scale { get; init; } = 1.0;
    /// <summary>
    /// Each client's own rank, at most <see cref="Rank"/> (the global adapters' rank); null: every client at
    /// <see cref="Rank"/>. See <see cref="Adapters.ClientRanks"/>.
    /// </summary>
    [JsonPropertyName("client_ranks"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ClientRanks? ClientRanks { get; init; }
    /// <summary>
    /// How adapters of different ranks are merged (with <see cref="ClientRanks"/>): <c>pad</c> (zero-padded to the
    /// largest rank and merged by the method's own rule) or <c>svd</c> (the size-weighted mean of the products
    /// <c>up x down</c>, re-factorised by truncated SVD); see <see cref="RankMerging"/>.
    /// </summary>
    [JsonPropertyName("rank_merging"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RankMerging { get; init; }

    /// <summary>Largest rank accepted (above any LLM width in use; keeps a typo from asking for terabytes).</summary>
    public const int MaxRank = 16384;

    /// <summary>Throws <see cref="ConfigException"/> for a rank or scale out of range.</summary>
    public void Validate()
    {
        ConfigException.Positive(Rank, "adapter.rank");
        ConfigException.AtMost(Rank, MaxRank, "adapter.rank");
        ConfigException.Positive(Scale, "adapter.scale");
        ConfigException.AtMost(Scale, 1e3, "adapter.scale");
        if (RankMerging is not (null or "pad" or "svd"))
            throw new ConfigException($"adapter.rank_merging must be pad or svd (got '{RankMerging}')");
    }
}

/// <summary>
/// A NanoAdapter (FedNano, Sec. 3): a LoRA-style low-rank residual <c>x + s * up(down(x))</c> with
/// <c>down: d -> r</c> and <c>up: r -> d</c>, both without bias. <c>up</c> starts at zero, so a fresh adapter
/// is exactly the identity. It computes in float32 whatever the dtype of its input (frozen parts may run in
/// half precision on CUDA) and returns the input's dtype.
/// </summary>
public sealed class NanoAdapter : nn.Module<Tensor, Tensor>
{
    private readonly Linear down, up;

    /// <summary>An adapter on features of width <paramref name="dim"/>.</summary>
    public NanoAdapter(int dim, AdapterConfig config, string name) : base(name)
    {
        config.Validate();
        down = nn.Linear(dim, config.Rank, hasBias: false);
        up = nn.Linear(config.Rank, dim, hasBias: false);
        using (no_grad()) up.weight!.zero_();
        Scale = config.Scale;
        RegisterComponents();
    }

    /// <summary>The residual scale s.</summary>
    public double Scale { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var h = up.forward(down.forward(x.to_type(down.weight!.dtype)));
        return x + (Scale * h).to_type(x.dtype);
    }

    /// <summary>
    /// Several clients' NanoAdapters applied at once: sample b of <paramref name="x"/> [B, T, d] goes through the
    /// adapter of client <paramref name="client"/>[b], whose weights are row <c>client[b]</c> of the stacked
    /// <paramref name="down"/> [K, r, d] and <paramref name="up"/> [K, d, r] (stacked from each client's own
    /// parameters, so gradients reach each client's tensors). The same function as <see cref="forward"/> per sample.
    /// </summary>
    public static Tensor Stacked(Tensor x, Tensor down, Tensor up, Tensor client, double scale)
    {
        using var scope = NewDisposeScope();
        var h = StackedProduct(x, down, up, client);
        return (x + (scale * h).to_type(x.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>up(down(x))</c> per sample with stacked factors: sample b of <paramref name="x"/> [B, T, in] through row
    /// <paramref name="client"/>[b] of <paramref name="down"/> [K, r, in] and <paramref name="up"/> [K, out, r], in
    /// <paramref name="down"/>'s dtype (a stacked NanoAdapter's correction; a stacked LoRA's delta).
    /// </summary>
    internal static Tensor StackedProduct(Tensor x, Tensor down, Tensor up, Tensor client) =>
        x.to_type(down.dtype).matmul(down[client].transpose(1, 2)).matmul(up[client].transpose(1, 2));

    /// <summary>
    /// Per-sample gradients of this adapter's parameters, squared and summed over the batch, given its inputs
    /// <paramref name="x"/> [B, T, d], the gradient <paramref name="gradOut"/> [B, T, d] of a sum of per-sample
    /// losses with respect to its outputs, and a [B, T] mask of the positions it was applied to (see
    /// <see cref="PerSampleGradients"/>). Returns one tensor per parameter, keyed as
    /// <see cref="nn.Module.named_parameters"/> names them.
    /// </summary>
    public Dictionary<string, Tensor> SquaredPerSampleGradients(Tensor x, Tensor gradOut, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return PerSampleGradients(x, gradOut, mask)
            .ToDictionary(p => p.Key, p => p.Value.pow(2).sum(dim: 0).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Each sample's gradient of this adapter's parameters, <c>down.weight</c> [B, r, d] and <c>up.weight</c>
    /// [B, d, r], given its inputs <paramref name="x"/> [B, T, d], the gradient <paramref name="gradOut"/> [B, T, d]
    /// of a sum of per-sample losses with respect to its outputs, and a [B, T] mask of the positions it was applied
    /// to. Exact: the adapter is linear in each weight, so sample b's gradient is a sum over its own positions only.
    /// </summary>
    public Dictionary<string, Tensor> PerSampleGradients(Tensor x, Tensor gradOut, Tensor mask) =>
        PerSampleGradientsOf(x, gradOut, mask, down.weight!, up.weight!, Scale);

    /// <summary>
    /// <see cref="PerSampleGradients(Tensor, Tensor, Tensor)"/> of an adapter with weights <paramref name="down"/>
    /// [r, d] and <paramref name="up"/> [d, r], or of one adapter per sample ([B, r, d] and [B, d, r]).
    /// </summary>
    internal static Dictionary<string, Tensor> PerSampleGradientsOf(
        Tensor x, Tensor gradOut, Tensor mask, Tensor down, Tensor up, double scale)
    {
        using var scope = NewDisposeScope();
        var m = mask.unsqueeze(-1).to_type(ScalarType.Float32);
        var xs = x.to_type(ScalarType.Float32) * m;
        var g = gradOut.to_type(ScalarType.Float32) * m * scale;
        var h = xs.matmul(down.transpose(-1, -2));                 // [B, T, r]
        var gUp = einsum("btd,btr->bdr", g, h);                     // d loss_b / d up.weight   [B, d, r]
        var gDown = einsum("btr,btd->brd", g.matmul(up), xs);       // d loss_b / d down.weight [B, r, d]
        return new Dictionary<string, Tensor>
        {
            ["down.weight"] = gDown.MoveToOuterDisposeScope(),
            ["up.weight"] = gUp.MoveToOuterDisposeScope(),
        };
    }
}
