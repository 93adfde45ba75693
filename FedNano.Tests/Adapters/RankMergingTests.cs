using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Adapters;

public class RankMergingTests
{
    private const int D = 12;

    // Two adapters as NanoEdge names them: down [r, d], up [d, r].
    private static AdapterState Adapters(int rank, int seed)
    {
        manual_seed(seed);
        return new(new()
        {
            ["adapter_i.down.weight"] = randn(rank, D), ["adapter_i.up.weight"] = randn(D, rank),
            ["adapter_t.down.weight"] = randn(rank, D), ["adapter_t.up.weight"] = randn(D, rank),
        });
    }

    private static AdapterState Fisher(AdapterState like, int seed)
    {
        manual_seed(seed);
        return like.Map(t => rand_like(t));
    }

    private static ClientUpdate Update(int client, int samples, int rank) =>
        new(client, samples, Adapters(rank, 10 + client), Fisher(Adapters(rank, 10 + client), 20 + client));

    private static Tensor Product(AdapterState s, string prefix) =>
        s[prefix + "up.weight"].matmul(s[prefix + "down.weight"]);

    private static void AssertIdentical(AdapterState got, AdapterState expected)
    {
        Assert.That(got.Tensors.Keys, Is.EquivalentTo(expected.Tensors.Keys));
        foreach (var (key, t) in expected.Tensors)
        {
            Assert.That(got[key].shape, Is.EqualTo(t.shape), key);
            Assert.That(got[key].equal(t).all().item<bool>(), Is.True, key);
        }
    }

    [Test]
    public void PaddedMergingOfEqualRanksIsPlainMergingExactly()
    {
        ClientUpdate[] updates = [Update(0, 10, 4), Update(1, 30, 4), Update(2, 7, 4)];
        var global = Adapters(4, 1);
        AssertIdentical(RankMerging.MergePadded(global, updates, FedAvg.WeightedMean),
            FedAvg.WeightedMean(global, updates));
        AssertIdentical(RankMerging.MergePadded(global, updates, (g, u) => FedNanoFisher.Merge(g, u, 1e-20)),
            FedNanoFisher.Merge(global, updates, 1e-20));
    }

    [Test]
    public void PaddingKeepsTheProductAndTruncationUndoesIt()
    {
        var s = Adapters(3, 2);
        var padded = RankMerging.Pad(s, 7);
        Assert.That(RankMerging.RankOf(padded), Is.EqualTo(7));
        Assert.That(padded["adapter_i.down.weight"].shape, Is.EqualTo(new long[] { 7, D }));
        Assert.That(padded["adapter_i.up.weight"].shape, Is.EqualTo(new long[] { D, 7 }));
        Assert.That(Product(padded, "adapter_t.").equal(Product(s, "adapter_t.")).all().item<bool>(), Is.True);
        AssertIdentical(RankMerging.Truncate(padded, 3), s);
        Assert.Throws<ArgumentException>(() => RankMerging.Pad(s, 2));
    }

    [Test]
    public void MixedRanksFisherLeavesTheExtraComponentsToTheClientsThatHaveThemSizeWeightingShrinksThem()
    {
        ClientUpdate[] updates = [Update(0, 10, 2), Update(1, 30, 4)];
        var global = Adapters(2, 1);
        var fisher = RankMerging.MergePadded(global, updates, (g, u) => FedNanoFisher.Merge(g, u, 1e-20));
        var mean = RankMerging.MergePadded(global, updates, FedAvg.WeightedMean);
        var big = updates[1].Parameters;
        foreach (var name in new[] { "adapter_i.", "adapter_t." })
        {
            Tensor down = fisher[name + "down.weight"], up = fisher[name + "up.weight"];
            Assert.That(down.shape, Is.EqualTo(new long[] { 4, D }));
            // components 2, 3: only client 1 has them (the padded Fisher of client 0 is zero there)
            Assert.That(down[2..].allclose(big[name + "down.weight"][2..], 1e-6, 1e-7), Is.True);
            Assert.That(up[.., 2..].allclose(big[name + "up.weight"][.., 2..], 1e-6, 1e-7), Is.True);
            // the size-weighted mean averages them with client 0's zeros: 30 / 40 of client 1's value
            var shrunk = big[name + "down.weight"][2..] * 0.75;
            Assert.That(mean[name + "down.weight"][2..].allclose(shrunk, 1e-6, 1e-7), Is.True);
        }
        // components 0, 1 are the plain merge of both clients' first two components
        var firstTwo = updates.Select(u => u with
        {
            Parameters = RankMerging.Truncate(u.Parameters, 2), Fisher = RankMerging.Truncate(u.Fisher!, 2),
        }).ToArray();
        AssertIdentical(RankMerging.Truncate(fisher, 2), FedNanoFisher.Merge(global, firstTwo, 1e-20));
    }

    [Test]
    public void FactorisingARankRProductAtRankRReproducesIt()
    {
        var s = Adapters(5, 3);
        var product = Product(s, "adapter_i.");
        var (up, down) = RankMerging.Factorise(product, 5);
        Assert.That(up.shape, Is.EqualTo(new long[] { D, 5 }));
        Assert.That(down.shape, Is.EqualTo(new long[] { 5, D }));
        Assert.That(up.matmul(down).allclose(product, rtol: 1e-5, atol: 1e-5), Is.True);
    }

    [Test]
    public void FactorisingAtLowerRankIsTheBestApproximationEckartYoung()
    {
        // A = U diag(s) V^T with known singular values
        manual_seed(4);
        var (u, _) = linalg.qr(randn(D, D, dtype: ScalarType.Float64));
        var (v, _) = linalg.qr(randn(D, D, dtype: ScalarType.Float64));
        double[] s = [.. Enumerable.Range(0, D).Select(i => 10.0 / (1 + i))];
        var a = u.matmul(diag(tensor(s))).matmul(v.t());
        foreach (var k in new[] { 1, 3, 7 })
        {
            var (up, down) = RankMerging.Factorise(a, k);
            var residual = a - up.matmul(down);
            double tail = Math.Sqrt(s.Skip(k).Sum(x => x * x));
            Assert.That(linalg.matrix_norm(residual).item<double>(), Is.EqualTo(tail).Within(1e-9).Percent, $"k={k}");
            Assert.That(linalg.svdvals(residual)[0].item<double>(), Is.EqualTo(s[k]).Within(1e-9).Percent, $"k={k}");
            // sqrt(S) on both sides: up^T up = down down^T = diag(s_1..s_k)
            var expected = diag(tensor(s.Take(k).ToArray()));
            Assert.That(up.t().matmul(up).allclose(expected, 1e-9, 1e-9), Is.True);
            Assert.That(down.matmul(down.t()).allclose(expected, 1e-9, 1e-9), Is.True);
        }
    }

    [Test]
    public void ProductMergingIsTheSizeWeightedProductRefactorisedPerRank()
    {
        ClientUpdate[] updates = [Update(0, 10, 2), Update(1, 30, 3)];
        var weighted = RankMerging.WeightedProducts(updates);
        var expected = Product(updates[0].Parameters, "adapter_t.") * 0.25
            + Product(updates[1].Parameters, "adapter_t.") * 0.75;
        Assert.That(weighted["adapter_t."].allclose(expected, 1e-6, 1e-6), Is.True);
        var merged = RankMerging.MergeProducts(updates, [2, 3, 5, 8]);
        Assert.That(RankMerging.RankOf(merged[2]), Is.EqualTo(2));
        Assert.That(RankMerging.RankOf(merged[3]), Is.EqualTo(3));
        // the weighted product has rank <= 2 + 3, so rank 5 reproduces it, and rank 8 adds zero components
        Assert.That(Product(merged[5], "adapter_t.").allclose(expected, 1e-4, 1e-5), Is.True);
        Assert.That(Product(merged[8], "adapter_t.").allclose(expected, 1e-4, 1e-5), Is.True);
        Assert.That(merged[8]["adapter_t.down.weight"][5..].abs().max().item<float>(), Is.EqualTo(0));
        // through the thin QRs (2 + 3 < d) it is the direct truncated SVD of the mean product
        var (up, down) = RankMerging.Factorise(weighted["adapter_i."], 2);
        Assert.That(Product(merged[2], "adapter_i.").allclose(up.matmul(down), 1e-5, 1e-6), Is.True);
    }

    [Test]
    public void ProductMergingWithRanksSummingPastTheWidthTakesTheDirectSvd()
    {
        ClientUpdate[] updates = [Update(0, 10, 6), Update(1, 30, 7)];  // 6 + 7 >= d = 12
        var weighted = RankMerging.WeightedProducts(updates)["adapter_i."];
        var merged = RankMerging.MergeProducts(updates, [6, 12]);
        var (up, down) = RankMerging.Factorise(weighted, 6);
        Assert.That(Product(merged[6], "adapter_i.").allclose(up.matmul(down), 1e-5, 1e-6), Is.True);
        Assert.That(Product(merged[12], "adapter_i.").allclose(weighted, 1e-4, 1e-5), Is.True);
    }
}
