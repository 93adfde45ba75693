using FedNano.Adapters;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Adapters;

public class NanoAdapterTests
{
    [Test]
    public void FreshAdapterIsExactlyTheIdentity()
    {
        manual_seed(3);
        var adapter = new NanoAdapter(16, new AdapterConfig { Rank = 4, Scale = 2.0 }, "a");
        var x = randn(2, 5, 16);
        Assert.That(adapter.forward(x).equal(x).all().item<bool>(), Is.True);
    }

    [Test]
    public void TrainedAdapterIsTheLowRankResidual()
    {
        manual_seed(4);
        var adapter = new NanoAdapter(8, new AdapterConfig { Rank = 2, Scale = 0.5 }, "a");
        var p = adapter.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        using (no_grad()) p["up.weight"].normal_();
        var x = randn(3, 8);
        var expected = x + 0.5 * x.matmul(p["down.weight"].t()).matmul(p["up.weight"].t());
        Assert.That(adapter.forward(x).allclose(expected, 1e-5, 1e-6), Is.True);
    }

    [Test]
    public void SquaredPerSampleGradientsEqualOneBackwardPerSample()
    {
        manual_seed(5);
        var adapter = new NanoAdapter(6, new AdapterConfig { Rank = 3, Scale = 1.5 }, "a");
        var ps = adapter.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        using (no_grad()) ps["up.weight"].normal_();
        var x = randn(4, 5, 6);
        var mask = rand(4, 5) > 0.3;
        var target = randn(4, 5, 6);
        // a per-sample loss that couples positions: sum over the masked positions of (y . target)^2
        Tensor Loss(Tensor xs, Tensor m, Tensor t)
            => ((adapter.forward(xs) * t).sum(-1).pow(2) * m.to_type(ScalarType.Float32)).sum();

        // reference: autograd, one sample at a time
        var expected = ps.ToDictionary(p => p.Key, p => zeros_like(p.Value));
        for (int b = 0; b < 4; b++)
        {
            adapter.zero_grad();
            Loss(x[b..(b + 1)], mask[b..(b + 1)], target[b..(b + 1)]).backward();
            foreach (var (name, p) in ps) expected[name] += p.grad!.pow(2);
        }
        // under test: one batched pass; the gradient w.r.t. the adapter's output (zero where masked out)
        var y = adapter.forward(x).detach().requires_grad_(true);
        ((y * target).sum(-1).pow(2) * mask.to_type(ScalarType.Float32)).sum().backward();
        var got = adapter.SquaredPerSampleGradients(x, y.grad!, mask);
        foreach (var name in ps.Keys)
            Assert.That(got[name].allclose(expected[name], 1e-4, 1e-5), Is.True, name);
    }
}
