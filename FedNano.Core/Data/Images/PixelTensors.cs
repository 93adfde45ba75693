using static TorchSharp.torch;

namespace FedNano.Data.Images;

/// <summary>In-memory images to the normalised tensor a vision tower takes.</summary>
internal static class PixelTensors
{
    /// <summary>[C, S, S] normalised with <paramref name="mean"/> and <paramref name="std"/>; the image must already be S x S.</summary>
    public static Tensor Normalised(SampleImage image, int size, float[] mean, float[] std)
    {
        if (image.Pixels is null) throw new ConfigException($"image {image.Path} must be decoded first");
        if (image.Height != size || image.Width != size) throw new ConfigException($"in-memory image is {image.Height}x{image.Width}, the encoder takes {size}x{size}");
        var t = tensor(image.Pixels, [3, size, size]);
        return (t - tensor(mean).view(3, 1, 1)) / tensor(std).view(3, 1, 1);
    }
}
