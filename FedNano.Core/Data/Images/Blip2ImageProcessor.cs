using FedNano.Models;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using static TorchSharp.torch;

namespace FedNano.Data.Images;

/// <summary>
/// Turns a <see cref="SampleImage"/> into the EVA tower's input as MiniGPT-4's <c>Blip2ImageEvalProcessor</c> does:
/// decode to RGB, bicubic resize straight to <c>size x size</c> (the aspect ratio is not kept and nothing is padded,
/// unlike LLaVA's <see cref="ImageProcessor"/>), scale to [0, 1], normalise with the mean and std.
/// </summary>
public sealed class Blip2ImageProcessor
{
    private readonly ImageProcessor normalise;

    /// <summary>A processor for a tower taking <paramref name="size"/>-pixel squares.</summary>
    public Blip2ImageProcessor(int size, IReadOnlyList<float> mean, IReadOnlyList<float> std) =>
        normalise = new(size, mean, std);

    /// <summary>The processor for <paramref name="config"/>'s vision tower and normalisation.</summary>
    public static Blip2ImageProcessor For(MiniGpt4Config config) =>
        new(config.VisionConfig.ImageSize, config.ImageMean, config.ImageStd);

    /// <summary>Side of the square the tower takes.</summary>
    public int Size => normalise.Size;

    /// <summary>
    /// The normalised tensor [3, Size, Size] of <paramref name="image"/> on <paramref name="device"/> (default CPU).
    /// </summary>
    public Tensor Process(SampleImage image, string? sampleId = null, Device? device = null)
    {
        if (image.Pixels is not null && image.Height == Size && image.Width == Size)
            return normalise.Process(image, sampleId, device);
        using var img = ImageProcessor.Decode(image, sampleId);
        img.Mutate(c => c.Resize(Size, Size, KnownResamplers.Bicubic));
        int plane = Size * Size;
        var px = new Rgb24[plane];
        img.CopyPixelDataTo(px);
        var chw = new float[3 * plane];
        for (int i = 0; i < plane; i++)
        {
            chw[i] = px[i].R / 255f;
            chw[plane + i] = px[i].G / 255f;
            chw[2 * plane + i] = px[i].B / 255f;
        }
        return normalise.Process(SampleImage.FromPixels(chw, Size, Size), sampleId, device);
    }
}
