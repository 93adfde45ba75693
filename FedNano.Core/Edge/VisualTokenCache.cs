using FedNano.Data;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>
/// A least-recently-used cache of per-image tensors (visual tokens or vision features) in host memory, bounded in
/// bytes: an image's tensor is computed once, kept on the CPU, and moved to the device for each batch that needs
/// it; past the bound the least recently used are dropped (and recomputed when needed again). Never holds the whole
/// data set on the device.
/// </summary>
internal sealed class VisualTokenCache(long maxBytes) : IDisposable
{
    private readonly Dictionary<SampleImage, LinkedListNode<(SampleImage image, Tensor value)>> index =
        new(ReferenceEqualityComparer.Instance);
    private readonly LinkedList<(SampleImage image, Tensor value)> order = new();

    /// <summary>Bytes held now.</summary>
    public long Bytes { get; private set; }
    /// <summary>Images held now.</summary>
    public int Count => index.Count;

    /// <summary>
    /// The tensor of <paramref name="image"/> on <paramref name="device"/> (owned by the caller's dispose scope),
    /// from the cache or from <paramref name="compute"/> (which may return it on any device).
    /// </summary>
    public Tensor Get(SampleImage image, Device device, Func<Tensor> compute)
    {
        if (index.TryGetValue(image, out var node))
        {
            order.Remove(node);
            order.AddFirst(node);
            return node.Value.value.to(device, copy: true);
        }
        var computed = compute();
        long bytes = computed.numel() * computed.ElementSize;
        if (bytes > maxBytes) return computed.to(device);
        var host = computed.to(CPU, copy: true).DetachFromDisposeScope();
        index[image] = order.AddFirst((image, host));
        Bytes += bytes;
        while (Bytes > maxBytes) Evict(order.Last!);
        return computed.to(device);
    }

    private void Evict(LinkedListNode<(SampleImage image, Tensor value)> node)
    {
        order.Remove(node);
        index.Remove(node.Value.image);
        Bytes -= node.Value.value.numel() * node.Value.value.ElementSize;
        node.Value.value.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        while (order.Last is { } last) Evict(last);
    }
}
