using FedNano.Adapters;
using FedNano.Data;
using FedNano.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>
/// The client side of the FedNano split (the "NanoEdge"): the frozen vision tower, the frozen connector,
/// a frozen copy of the LLM's token embedding, and the two trainable NanoAdapters — NanoAdapter-I on the
/// visual tokens (connector output) and NanoAdapter-T on the text-token embeddings. Its output is the
/// input-embedding sequence handed to the server's LLM. The frozen parts are shared by reference with the
/// backbone they come from (one copy in memory for every simulated client); the adapters are per client,
/// swapped in and out as parameter dictionaries (<see cref="AdapterState"/>).
/// </summary>
public sealed class NanoEdge : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly NanoAdapter adapter_i, adapter_t;
    // the visual path is the backbone's own (shared, frozen): delegates and a list, so nothing registers twice
    private readonly Func<Tensor, Tensor> encode, features;
    private readonly (string name, Parameter parameter)[] visualParameters;
    private readonly Func<SampleImage, Tensor> pixels;
    private readonly VisualTokenCache visualCache, featureCache;

    /// <summary>Default bound of the visual-token cache in host memory: 4 GiB.</summary>
    public const long DefaultVisualCacheBytes = 4L << 30;

    /// <summary>
    /// The NanoEdge of <paramref name="backbone"/> with fresh (identity) adapters. <paramref name="pixels"/> turns
    /// an image into the normalised [C, S, S] tensor the vision tower takes. The frozen encoder and connector run once
    /// per image and their output is kept in host memory up to <paramref name="visualCacheBytes"/> (least recently
    /// used dropped past it, and recomputed when needed; 0: nothing kept).
    /// </summary>
    public NanoEdge(IMultimodalModel backbone, AdapterConfig adapters, Func<SampleImage, Tensor> pixels,
        long visualCacheBytes = DefaultVisualCacheBytes) : base("nano_edge")
    {
        embed_tokens = backbone.LanguageModel.Model.EmbedTokens;
        encode = backbone.Encode;
        features = backbone.Features;
        visualParameters = backbone.VisualParameters().ToArray();
        int d = backbone.LanguageModel.Config.HiddenSize;
        adapter_i = new NanoAdapter(d, adapters, "adapter_i");
        adapter_t = new NanoAdapter(d, adapters, "adapter_t");
        this.pixels = pixels;
        visualCache = new VisualTokenCache(visualCacheBytes);
        featureCache = new VisualTokenCache(visualCacheBytes);
        RegisterComponents();
        var device = embed_tokens.weight!.device;
        adapter_i.to(device); adapter_t.to(device);
        foreach (var (_, p) in FrozenParameters()) p.requires_grad = false;
    }

    /// <summary>NanoAdapter-I, on the visual tokens.</summary>
    public NanoAdapter AdapterI => adapter_i;
    /// <summary>NanoAdapter-T, on the text-token embeddings.</summary>
    public NanoAdapter AdapterT => adapter_t;
    /// <summary>The device the edge runs on.</summary>
    public Device Device => embed_tokens.weight!.device;
    /// <summary>Bytes of visual tokens and vision features held in host memory now.</summary>
    public long CachedBytes => visualCache.Bytes + featureCache.Bytes;

    /// <summary>The trainable parameters: the two adapters', named <c>adapter_i.down.weight</c> etc.</summary>
    public IEnumerable<(string name, Parameter parameter)> AdapterParameters() =>
        named_parameters().Where(p => p.name.StartsWith("adapter_"));

    /// <summary>The frozen parameters resident on the client: the visual path (e.g. vision tower and connector) and the
    /// token embedding.</summary>
    public IEnumerable<(string name, Parameter parameter)> FrozenParameters() =>
        visualParameters.Concat(named_parameters().Where(p => !p.name.StartsWith("adapter_")));

    /// <summary>A detached copy of the adapters' parameters.</summary>
    public AdapterState AdapterState() =>
        new(AdapterParameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()));

    /// <summary>Copies <paramref name="state"/> into the adapters.</summary>
    public void LoadAdapterState(AdapterState state)
    {
        using var _ = no_grad();
        foreach (var (name, p) in AdapterParameters()) p.copy_(state[name]);
    }

    private Tensor Pixels(SampleImage image) => pixels(image).to(Device).unsqueeze(0);

    /// <summary>Visual tokens [P, d] of one image (frozen encoder and connector; no gradient).</summary>
    internal Tensor VisualTokens(SampleImage image) => visualCache.Get(image, Device, () =>
    {
        using var _ = no_grad();
        return encode(Pixels(image))[0].to_type(embed_tokens.weight!.dtype);
    });

    /// <summary>
    /// The frozen features [P, d_features] of one image before the connector (cached as visual tokens are).
    /// </summary>
    internal Tensor VisionFeatures(SampleImage image) => featureCache.Get(image, Device, () =>
    {
        using var _ = no_grad();
        return features(Pixels(image))[0];
    });

    /// <summary>
    /// The frozen input sequence [B, T, d] of a batch before the adapters: token embeddings with the visual
    /// tokens of each image in its place.
    /// </summary>
    internal Tensor RawSequence(EncodedBatch batch)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var visual = batch.Images.Length > 0 ? cat(batch.Images.Select(VisualTokens).ToArray(), 0) : null;
        return Sequences.Assemble(embed_tokens, visual, batch).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The input sequence of a batch with the visual tokens from <paramref name="connector"/> (a client's own,
    /// trainable connector, or several clients' per image; gradients flow into it) on the frozen vision features of
    /// the batch's images, image after image ([images x tokens, width]), without the NanoAdapters.
    /// </summary>
    internal Tensor RawSequence(EncodedBatch batch, Func<Tensor, Tensor> connector)
    {
        using var scope = NewDisposeScope();
        Tensor? visual = null;
        if (batch.Images.Length > 0)
        {
            var feats = cat(batch.Images.Select(VisionFeatures).ToArray(), 0);
            visual = connector(feats).to_type(embed_tokens.weight!.dtype);
        }
        Tensor text;
        using (no_grad()) text = embed_tokens.forward(batch.Ids);
        var x = visual is null ? text : text.masked_scatter(batch.IsImage.unsqueeze(-1), visual);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The adapters applied to a raw sequence: NanoAdapter-I at image places, NanoAdapter-T elsewhere.
    /// </summary>
    internal Tensor Adapt(Tensor raw, Tensor isImage)
    {
        using var scope = NewDisposeScope();
        return where(isImage.unsqueeze(-1), adapter_i.forward(raw), adapter_t.forward(raw)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Several clients' adapters applied to one raw sequence: sample b through those of client
    /// <paramref name="client"/>[b], an index into <paramref name="adapters"/> (each client's live parameters named
    /// as <see cref="AdapterParameters"/> names them), stacked (see <see cref="NanoAdapter.Stacked"/>).
    /// </summary>
    internal Tensor Adapt(
        Tensor raw, Tensor isImage, Tensor client, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> adapters)
    {
        using var scope = NewDisposeScope();
        Tensor Stack(string name) => stack(adapters.Select(a => a[name]));
        Tensor Side(string side, double scale) =>
            NanoAdapter.Stacked(raw, Stack(side + ".down.weight"), Stack(side + ".up.weight"), client, scale);
        var image = Side("adapter_i", adapter_i.Scale);
        return where(isImage.unsqueeze(-1), image, Side("adapter_t", adapter_t.Scale)).MoveToOuterDisposeScope();
    }

    /// <summary>The client's output for a batch: the adapted input-embedding sequence for the server.</summary>
    internal Tensor Forward(EncodedBatch batch)
    {
        using var raw = RawSequence(batch);
        return Adapt(raw, batch.IsImage);
    }

    /// <summary>The frozen token embedding of <paramref name="ids"/> [B, T], without the adapters.</summary>
    internal Tensor Embed(Tensor ids)
    {
        using var _ = no_grad();
        return embed_tokens.forward(ids);
    }

    /// <summary>Text tokens <paramref name="ids"/> [B, T] embedded and through NanoAdapter-T (no images).</summary>
    public override Tensor forward(Tensor ids)
    {
        using var x = Embed(ids);
        return adapter_t.forward(x);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { visualCache.Dispose(); featureCache.Dispose(); }
        base.Dispose(disposing);
    }
}

/// <summary>
/// A detached set of adapter parameters (or of values shaped like them, such as Fisher information), by name.
/// </summary>
public sealed class AdapterState(Dictionary<string, Tensor> tensors) : IDisposable
{
    /// <summary>The tensors, by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => tensors;
    /// <summary>The tensor of parameter <paramref name="name"/>.</summary>
    public Tensor this[string name] => tensors[name];
    /// <summary>Number of scalar values.</summary>
    public long Count => tensors.Values.Sum(t => t.numel());

    /// <summary>A deep copy.</summary>
    public AdapterState Clone() => new(tensors.ToDictionary(p => p.Key, p => p.Value.clone()));

    /// <summary>A state of the same shapes with <paramref name="map"/> applied to each tensor.</summary>
    public AdapterState Map(Func<Tensor, Tensor> map) => new(tensors.ToDictionary(p => p.Key, p => map(p.Value)));

    /// <inheritdoc/>
    public void Dispose() { foreach (var t in tensors.Values) t.Dispose(); }
}
