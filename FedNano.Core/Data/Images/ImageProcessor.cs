using FedNano.Models;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Data.Images;

/// <summary>
/// Turns a <see cref="SampleImage"/> into the vision encoder's input as LLaVA-1.5 does with
/// <c>image_aspect_ratio = pad</c>: decode to RGB (alpha dropped, like PIL's <c>convert('RGB')</c>), pad to a square
/// with the background <c>int(mean * 255)</c> per channel, the image centred (<c>expand2square</c>), resize to the
/// encoder's size with a bicubic filter, scale to [0, 1] and normalise with the encoder's mean and std.
/// </summary>
/// <remarks>
/// Resizing uses ImageSharp's <see cref="KnownResamplers.Bicubic"/>: the same cubic convolution kernel
/// (a = -0.5) as PIL's BICUBIC used by CLIPImageProcessor, widened by the scale factor when shrinking as PIL does,
/// on 8-bit pixels. PIL computes in fixed point and rounds between its two passes, so individual pixels can differ by
/// a step or two of 1/255 (the tests bound it against a plain PIL-style implementation).
/// In-memory pixels already square and at the encoder's size skip padding and resizing and keep full precision.
/// </remarks>
public sealed class ImageProcessor
{
    /// <summary>Side of the square the encoder takes.</summary>
    public int Size { get; }
    /// <summary>Per-channel mean (RGB).</summary>
    public IReadOnlyList<float> Mean { get; }
    /// <summary>Per-channel standard deviation (RGB).</summary>
    public IReadOnlyList<float> Std { get; }
    /// <summary>The padding colour: <c>int(x * 255)</c> of each mean, as LLaVA computes it.</summary>
    public Rgb24 PadColor { get; }

    /// <summary>A processor for an encoder taking <paramref name="size"/>-pixel squares.</summary>
    public ImageProcessor(int size, IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ConfigException.Positive(size, "image size");
        if (mean.Count != 3 || std.Count != 3)
            throw new ConfigException(
                $"image_mean and image_std must have 3 values (got {mean.Count} and {std.Count})");
        if (std.Any(s => !(s > 0)))
            throw new ConfigException($"image_std values must be > 0 (got {string.Join(", ", std)})");
        Size = size; Mean = mean.ToArray(); Std = std.ToArray();
        PadColor = new Rgb24((byte)(int)(mean[0] * 255.0), (byte)(int)(mean[1] * 255.0), (byte)(int)(mean[2] * 255.0));
    }

    /// <summary>The processor for <paramref name="config"/>'s vision tower and normalisation.</summary>
    public static ImageProcessor For(LlavaConfig config) =>
        new(config.VisionConfig.ImageSize, config.ImageMean, config.ImageStd);

    /// <summary>
    /// The normalised float tensor [3, Size, Size] of <paramref name="image"/> on <paramref name="device"/> (CPU by
    /// default). A file that cannot be read throws <see cref="ConfigException"/> naming it and
    /// <paramref name="sampleId"/>.
    /// </summary>
    public Tensor Process(SampleImage image, string? sampleId = null, Device? device = null)
    {
        float[] chw = image.Pixels is { } px && image.Height == Size && image.Width == Size
            ? px
            : ToChw(Prepare(image, sampleId));
        using var scope = NewDisposeScope();
        device ??= CPU;
        var t = tensor(chw, [3, Size, Size], ScalarType.Float32, device);
        var mean = tensor(Mean.ToArray(), device: device).view(3, 1, 1);
        var std = tensor(Std.ToArray(), device: device).view(3, 1, 1);
        return ((t - mean) / std).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The RGB image padded to a square and resized to <see cref="Size"/>, before scaling and normalising.
    /// </summary>
    internal Image<Rgb24> Prepare(SampleImage image, string? sampleId)
    {
        using var decoded = Decode(image, sampleId);
        var square = ExpandToSquare(decoded, PadColor);
        if (square.Width != Size) square.Mutate(c => c.Resize(Size, Size, KnownResamplers.Bicubic));
        return square;
    }

    /// <summary>Most pixels of an image padded to its square (8192 x 8192, 200 MB as RGB).</summary>
    public const long MaxSquarePixels = 8192L * 8192;

    /// <summary>
    /// Decodes a file (any format ImageSharp reads, to RGB) or converts in-memory pixels (rounded to 8 bits).
    /// </summary>
    internal static Image<Rgb24> Decode(SampleImage image, string? sampleId)
    {
        if (image.Pixels is { } px)
        {
            int h = image.Height, w = image.Width, plane = h * w;
            var rgb = new Rgb24[plane];
            static byte B(float v) => (byte)Math.Clamp(MathF.Round(v * 255f), 0f, 255f);
            for (int i = 0; i < plane; i++) rgb[i] = new Rgb24(B(px[i]), B(px[plane + i]), B(px[2 * plane + i]));
            return Image.LoadPixelData<Rgb24>(rgb, w, h);
        }
        string path = image.Path ?? throw new ArgumentException("SampleImage has neither a path nor pixels");
        string who = sampleId is null ? "" : $" (sample {sampleId})";
        if (!File.Exists(path)) throw new ConfigException($"{path}: image file not found{who}");
        try
        {
            // padded to a square before resizing: bound the square's size from the header, before anything is decoded
            var info = Image.Identify(path)
                ?? throw new UnknownImageFormatException("not an image format ImageSharp can read");
            long side = Math.Max(info.Width, info.Height);
            if (side * side > MaxSquarePixels)
                throw new ConfigException($"{path}: image of {info.Width} x {info.Height} pixels{who} " +
                                          $"would pad to {side} x {side}, " +
                                          $"more than the {MaxSquarePixels:N0} pixels accepted; shrink it first");
            return Image.Load<Rgb24>(path);
        }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException
                                      or InvalidImageContentException or IOException or InvalidDataException
                                      or NotSupportedException)
        {
            throw new ConfigException($"{path}: cannot decode image{who}: {e.Message}", e);
        }
    }

    /// <summary>
    /// LLaVA's <c>expand2square</c>: a new square image of side max(w, h), background filled, the image centred
    /// (offset floored).
    /// </summary>
    internal static Image<Rgb24> ExpandToSquare(Image<Rgb24> img, Rgb24 background)
    {
        int w = img.Width, h = img.Height, side = Math.Max(w, h);
        var square = new Image<Rgb24>(side, side, background);
        int ox = (side - w) / 2, oy = (side - h) / 2;
        var src = new Rgb24[w * h];
        img.CopyPixelDataTo(src);
        square.ProcessPixelRows(acc =>
        {
            for (int y = 0; y < h; y++)
                src.AsSpan(y * w, w).CopyTo(acc.GetRowSpan(y + oy).Slice(ox, w));
        });
        return square;
    }

    /// <summary>Channel-major floats in [0, 1] (value / 255) of <paramref name="img"/>; disposes it.</summary>
    static float[] ToChw(Image<Rgb24> img)
    {
        using (img)
        {
            int plane = img.Width * img.Height;
            var px = new Rgb24[plane];
            img.CopyPixelDataTo(px);
            var chw = new float[3 * plane];
            for (int i = 0; i < plane; i++)
            {
                chw[i] = px[i].R / 255f;
                chw[plane + i] = px[i].G / 255f;
                chw[2 * plane + i] = px[i].B / 255f;
            }
            return chw;
        }
    }
}
