using FedNano.Edge;
using FedNano.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Adapters;

/// <summary>
/// A set of LoRA factors on every linear of every LLaMA block (q, k, v, o, gate, up, down), applied through
/// <see cref="ILinearDelta"/> so the base LLM stays one shared frozen copy: the linear at path <c>p</c> (e.g.
/// <c>model.layers.3.self_attn.q_proj</c>) gets <c>scale * B(A(x))</c> added, with <c>A</c> [r, in] initialised as
/// <c>nn.Linear</c> does and <c>B</c> [out, r] zero (the delta starts at zero). Parameters are named
/// <c>p.lora_A</c> and <c>p.lora_B</c>. Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022.
/// </summary>
public sealed class LoraSet : ILinearDelta, IDisposable
{
    private readonly Dictionary<string, (Parameter a, Parameter b)> factors = [];

    /// <summary>
    /// LoRA of rank <paramref name="rank"/> on the linears of <paramref name="llm"/>, on <paramref name="device"/>.
    /// </summary>
    public LoraSet(LlamaConfig llm, int rank, double scale = 1.0, Device? device = null)
    {
        ConfigException.Positive(rank, "lora rank");
        Scale = scale;
        int d = llm.HiddenSize, kv = llm.KeyValueHeads * llm.HeadDim, ff = llm.IntermediateSize;
        int q = llm.NumAttentionHeads * llm.HeadDim;
        (string, int, int)[] targets =
            [("self_attn.q_proj", d, q), ("self_attn.k_proj", d, kv), ("self_attn.v_proj", d, kv),
             ("self_attn.o_proj", q, d), ("mlp.gate_proj", d, ff), ("mlp.up_proj", d, ff), ("mlp.down_proj", ff, d)];
        for (int layer = 0; layer < llm.NumHiddenLayers; layer++)
            foreach (var (name, input, output) in targets)
            {
                using var a = empty(rank, input, device: device);
                nn.init.kaiming_uniform_(a, Math.Sqrt(5));
                factors[$"model.layers.{layer}.{name}"] =
                    (new Parameter(a.clone()), new Parameter(zeros(output, rank, device: device)));
            }
    }

    /// <summary>The scale of the delta.</summary>
    public double Scale { get; }

    /// <summary>The factors, named <c>path.lora_A</c> / <c>path.lora_B</c>.</summary>
    public IEnumerable<(string name, Parameter parameter)> Parameters() =>
        factors.SelectMany(f => new[] { (f.Key + ".lora_A", f.Value.a), (f.Key + ".lora_B", f.Value.b) });

    /// <summary>A detached copy of the factors.</summary>
    public AdapterState State() => new(Parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()));

    /// <summary>
    /// Copies the factors of <paramref name="state"/> (keys as <see cref="Parameters"/> names them, extra keys
    /// ignored).
    /// </summary>
    public void Load(AdapterState state)
    {
        using var _ = no_grad();
        foreach (var (name, p) in Parameters()) p.copy_(state[name]);
    }

    /// <inheritdoc/>
    public Tensor? Delta(string name, Tensor x) =>
        factors.TryGetValue(name, out var f)
            ? nn.functional.linear(nn.functional.linear(x.to_type(f.a.dtype), f.a), f.b) * Scale : null;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (a, b) in factors.Values) { a.Dispose(); b.Dispose(); }
    }
}

/// <summary>
/// FedDPA's instance-wise mixture of a global and a local delta: <c>(1 - w_b) * global + w_b * local</c> for sample b
/// of the batch, with weights w [B] in [0, 1].
/// </summary>
public sealed class MixedDelta(ILinearDelta global, ILinearDelta local, Tensor weights) : ILinearDelta
{
    /// <inheritdoc/>
    public Tensor? Delta(string name, Tensor x)
    {
        var g = global.Delta(name, x);
        var l = local.Delta(name, x);
        if (g is null || l is null) return g ?? l;
        var w = weights.to_type(g.dtype).view([-1, .. Enumerable.Repeat(1L, (int)g.dim() - 1)]);
        return g * (1 - w) + l * w;
    }
}

/// <summary>
/// Several clients' LoRA factors (each client's live tensors named as <see cref="LoraSet.Parameters"/> names them)
/// applied per sample: sample b of the batch gets the delta of client <paramref name="client"/>[b], the factors
/// stacked and selected as <see cref="NanoAdapter.Stacked"/> selects adapters, so gradients reach each client's own.
/// </summary>
internal sealed class StackedLora(IReadOnlyList<IReadOnlyDictionary<string, Tensor>> clients, Tensor client,
    double scale) : ILinearDelta
{
    /// <inheritdoc/>
    public Tensor? Delta(string name, Tensor x)
    {
        if (!clients[0].ContainsKey(name + ".lora_A")) return null;
        Tensor Stack(string factor) => stack(clients.Select(c => c[name + factor]));
        return NanoAdapter.StackedProduct(x, Stack(".lora_A"), Stack(".lora_B"), client) * scale;
    }
}
