using System.Text.Json;
using System.Text.Json.Serialization;
using FedNano.Adapters;
using FedNano.Privacy;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Privacy;

public class DpSgdTests
{
    // Two "parameters" of 8 samples whose total norms range from well below to well above C = 1.
    private static Dictionary<string, Tensor> PerSample(int seed)
    {
        manual_seed(seed);
        var scales = tensor(new[] { 0.01f, 0.1f, 0.3f, 1f, 3f, 10f, 0.05f, 30f }).view(-1, 1);
        return new()
        {
            ["a.down.weight"] = (randn(8, 12) * scales).view(8, 3, 4),
            ["a.up.weight"] = randn(8, 5) * scales,
        };
    }

    [Test]
    public void EveryClippedSampleHasNormMinOfItsNormAndC()
    {
        var g = PerSample(1);
        var before = DpSgd.PerSampleNorms(g);
        var after = DpSgd.PerSampleNorms(DpSgd.ClipPerSample(g, 1.0));
        var expected = before.clamp(max: 1.0);
        Assert.That(after.allclose(expected, rtol: 1e-6, atol: 0), Is.True);
        Assert.That((after <= 1.0 + 1e-6).all().item<bool>(), Is.True);
        Assert.That((before < 1).sum().item<long>(), Is.InRange(2, 6), "the inputs straddle C");
        // a sample within C is left exactly as it is; one above keeps its direction
        var clipped = DpSgd.ClipPerSample(g, 1.0);
        Assert.That(clipped["a.up.weight"][0].equal(g["a.up.weight"][0]).all().item<bool>(), Is.True);
        var cos = nn.functional.cosine_similarity(clipped["a.up.weight"][7], g["a.up.weight"][7], dim: 0);
        Assert.That(cos.item<float>(), Is.EqualTo(1).Within(1e-6));
    }

    [Test]
    public void WithoutNoiseItIsTheMeanOfTheClippedGradients()
    {
        var g = PerSample(2);
        var clipped = DpSgd.ClipPerSample(g, 0.5);
        var noisy = DpSgd.NoisyMeanGradient(g, 0.5, 0, new Generator(0));
        foreach (var key in g.Keys)
        {
            Assert.That(noisy[key].shape, Is.EqualTo(g[key].shape[1..]));
            Assert.That(noisy[key].allclose(clipped[key].mean([0]), rtol: 1e-6, atol: 1e-7), Is.True, key);
        }
        var byTen = DpSgd.NoisyMeanGradient(g, 0.5, 0, new Generator(0), batchSize: 10);
        var sumOverTen = clipped["a.up.weight"].sum(dim: 0) / 10;
        Assert.That(byTen["a.up.weight"].allclose(sumOverTen, rtol: 1e-6, atol: 1e-7), Is.True);
    }

    [Test]
    public void NoiseIsGaussianWithStdSigmaCOverBatchAndSeeded()
    {
        // zero gradients: what comes out is the noise alone, N(0, (sigma C / n)^2) per coordinate
        var g = new Dictionary<string, Tensor> { ["w"] = zeros(4, 100_000), ["v"] = zeros(4, 300, 200) };
        const double sigma = 1.5, c = 2.0; const int n = 8;
        var noisy = DpSgd.NoisyMeanGradient(g, c, sigma, new Generator(42), batchSize: n);
        var all = cat([noisy["w"].flatten(), noisy["v"].flatten()]).to_type(ScalarType.Float64);
        double std = sigma * c / n, count = all.numel();
        Assert.That(all.mean().item<double>(), Is.EqualTo(0).Within(4 * std / Math.Sqrt(count)));
        Assert.That(all.std().item<double>(), Is.EqualTo(std).Within(1).Percent);
        double withinOneStd = (all.abs() < std).to_type(ScalarType.Float64).mean().item<double>();
        Assert.That(withinOneStd, Is.EqualTo(0.6827).Within(0.005), "Gaussian: 68.3 % within one std");

        var again = DpSgd.NoisyMeanGradient(g, c, sigma, new Generator(42), batchSize: n);
        var other = DpSgd.NoisyMeanGradient(g, c, sigma, new Generator(43), batchSize: n);
        Assert.That(again["w"].equal(noisy["w"]).all().item<bool>(), Is.True, "same seed, same noise");
        Assert.That(other["w"].equal(noisy["w"]).all().item<bool>(), Is.False);
    }

    [Test]
    public void NoisyFisherHasSensitivityCSquaredAndIsTheClippedSquaredMeanWithoutNoise()
    {
        var g = PerSample(3);
        var squared = DpSgd.ClipPerSample(g, 0.5).ToDictionary(p => p.Key, p => p.Value.pow(2));
        Assert.That((DpSgd.PerSampleNorms(squared) <= 0.25 + 1e-7).all().item<bool>(), Is.True, "||g_b^2|| <= C^2");
        var fisher = DpSgd.NoisyFisher(g, 0.5, 0, new Generator(0));
        foreach (var key in g.Keys)
            Assert.That(fisher[key].allclose(squared[key].mean([0]), rtol: 1e-6, atol: 1e-9), Is.True, key);

        // zero gradients: max(0, N(0, s^2)) with s = sigma C^2 / n, whose mean is s / sqrt(2 pi)
        var zero = new Dictionary<string, Tensor> { ["w"] = zeros(4, 200_000) };
        var noisy = DpSgd.NoisyFisher(zero, 2.0, 1.5, new Generator(5), samples: 8)["w"].to_type(ScalarType.Float64);
        double s = 1.5 * 4 / 8;
        Assert.That(noisy.min().item<double>(), Is.EqualTo(0));
        Assert.That(noisy.mean().item<double>(), Is.EqualTo(s / Math.Sqrt(2 * Math.PI)).Within(1).Percent);
    }

    [Test]
    public void NanoAdapterPerSampleGradientsEqualOneBackwardPerSample()
    {
        manual_seed(5);
        var adapter = new NanoAdapter(6, new AdapterConfig { Rank = 3, Scale = 1.5 }, "a");
        var ps = adapter.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        using (no_grad()) ps["up.weight"].normal_();
        var x = randn(4, 5, 6);
        var mask = rand(4, 5) > 0.3;
        var target = randn(4, 5, 6);
        var y = adapter.forward(x).detach().requires_grad_(true);
        ((y * target).sum(-1).pow(2) * mask.to_type(ScalarType.Float32)).sum().backward();
        var got = adapter.PerSampleGradients(x, y.grad!, mask);
        for (int b = 0; b < 4; b++)
        {
            adapter.zero_grad();
            var yb = adapter.forward(x[b..(b + 1)]);
            ((yb * target[b..(b + 1)]).sum(-1).pow(2) * mask[b..(b + 1)].to_type(ScalarType.Float32)).sum().backward();
            foreach (var (name, p) in ps)
                Assert.That(got[name][b].allclose(p.grad!, 1e-4, 1e-5), Is.True, $"{name}, sample {b}");
        }
    }

    private static readonly JsonSerializerOptions Strict =
        new() { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    [Test]
    public void DpConfigReadsSnakeCaseRefusesUnknownFieldsAndValidates()
    {
        const string json = """{"noise_multiplier": 1.1, "max_grad_norm": 0.5, "delta": 1e-6}""";
        var dp = JsonSerializer.Deserialize<DpConfig>(json, Strict)!;
        Assert.That(dp, Is.EqualTo(new DpConfig { NoiseMultiplier = 1.1, MaxGradNorm = 0.5, Delta = 1e-6 }));
        dp.Validate();
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<DpConfig>("""{"epsilon": 3}""", Strict));
        Assert.That(Assert.Throws<ConfigException>(() => new DpConfig { MaxGradNorm = 0 }.Validate())!.Message,
            Does.StartWith("dp.max_grad_norm"));
        Assert.That(Assert.Throws<ConfigException>(() => new DpConfig { Delta = 1 }.Validate())!.Message,
            Does.StartWith("dp.delta"));
        Assert.That(Assert.Throws<ConfigException>(() => new DpConfig { NoiseMultiplier = -1 }.Validate())!.Message,
            Does.StartWith("dp.noise_multiplier"));
        new DpConfig { NoiseMultiplier = 0 }.Validate();
    }
}
