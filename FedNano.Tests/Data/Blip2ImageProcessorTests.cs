using FedNano.Data;
using FedNano.Data.Images;
using FedNano.Models;
using NUnit.Framework;

namespace FedNano.Tests.Data;

public class Blip2ImageProcessorTests
{
    private static readonly float[] Mean = [0.48145466f, 0.4578275f, 0.40821073f];
    private static readonly float[] Std = [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>A wide image of one colour (values exact in 8 bits).</summary>
    private static SampleImage Uniform(int h, int w, float r, float g, float b) => SampleImage.FromPixels(
        [.. Enumerable.Repeat(r, h * w), .. Enumerable.Repeat(g, h * w), .. Enumerable.Repeat(b, h * w)], h, w);

    [Test]
    public void NonSquareImageIsStretchedNotPadded()
    {
        var image = Uniform(4, 10, 1f, 0f, 51 / 255f);
        var blip = new Blip2ImageProcessor(8, Mean, Std).Process(image);
        var llava = new ImageProcessor(8, Mean, Std).Process(image);
        float[] rgb = [1f, 0f, 51 / 255f];
        Assert.Multiple(() =>
        {
            Assert.That(blip.shape, Is.EqualTo(new long[] { 3, 8, 8 }));
            // every pixel keeps the image's colour: no padding band
            for (int c = 0; c < 3; c++)
            {
                var expected = (rgb[c] - Mean[c]) / Std[c];
                Assert.That(blip[c].max().item<float>(), Is.EqualTo(expected).Within(1e-4), $"channel {c}");
                Assert.That(blip[c].min().item<float>(), Is.EqualTo(expected).Within(1e-4), $"channel {c}");
            }
            // LLaVA pads the same image with the mean colour (0 after normalising) above and below
            Assert.That(llava[0, 0].abs().max().item<float>(), Is.LessThan(0.02));
        });
    }

    [Test]
    public void SquareInMemoryPixelsAtTheTowerSizeKeepFullPrecision()
    {
        var config = new MiniGpt4Config { VisionConfig = new Blip2VisionConfig { ImageSize = 14, PatchSize = 7 } };
        var p = Blip2ImageProcessor.For(config);
        var image = Uniform(14, 14, 0.123456f, 0.5f, 0.9f);
        var t = p.Process(image);
        Assert.That(p.Size, Is.EqualTo(14));
        Assert.That(t[0, 3, 5].item<float>(), Is.EqualTo((0.123456f - Mean[0]) / Std[0]).Within(1e-6));
    }
}
