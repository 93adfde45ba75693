using FedNano.Fisher;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Fisher;

public class ModelSampledLabelsTests
{
    private static readonly double[][] Probabilities =
    [
        [0.7, 0.2, 0.1, 0],        // 3 options offered
        [0.25, 0.25, 0.25, 0.25],
        [0.01, 0.99, 0, 0],        // 2 options offered
    ];

    // log-probabilities as a model gives them over its whole vocabulary: the options' mass sums to less than one
    // (here 0.3, 0.8, 0.05 of it), so the draw must renormalise; absent options are -inf.
    private static Tensor LogProbs()
    {
        double[] mass = [0.3, 0.8, 0.05];
        var rows = Probabilities.Select((p, b) =>
            p.Select(x => x == 0 ? double.NegativeInfinity : Math.Log(x * mass[b])).ToArray());
        return tensor(rows.SelectMany(r => r).ToArray(), [3, 4]).to_type(ScalarType.Float32);
    }

    [Test]
    public void DrawsFollowTheModelsDistributionOverTheOfferedOptions()
    {
        const int n = 40_000;
        var labels = ModelSampledLabels.Draw(LogProbs(), new Generator(7), n);
        Assert.That(labels.shape, Is.EqualTo(new long[] { 3, n }));
        Assert.That(labels.dtype, Is.EqualTo(ScalarType.Int64));
        for (int b = 0; b < 3; b++)
            for (int o = 0; o < 4; o++)
            {
                double p = Probabilities[b][o];
                double freq = (labels[b] == o).to_type(ScalarType.Float64).mean().item<double>();
                if (p == 0) Assert.That(freq, Is.EqualTo(0), $"sample {b} has no option {o}");
                else Assert.That(freq, Is.EqualTo(p).Within(4.5 * Math.Sqrt(p * (1 - p) / n)), $"sample {b}, {o}");
            }
    }

    [Test]
    public void ASeededGeneratorGivesTheSameDraw()
    {
        var a = ModelSampledLabels.Draw(LogProbs(), new Generator(1), 50);
        Assert.That(ModelSampledLabels.Draw(LogProbs(), new Generator(1), 50).equal(a).all().item<bool>(), Is.True);
        Assert.That(ModelSampledLabels.Draw(LogProbs(), new Generator(2), 50).equal(a).all().item<bool>(), Is.False);
    }

    [Test]
    public void ASampleWithoutAnyOptionIsRefused()
    {
        var logProbs = LogProbs();
        logProbs[1] = tensor(double.NegativeInfinity);
        var e = Assert.Throws<ArgumentException>(() => ModelSampledLabels.Draw(logProbs, new Generator(0)));
        Assert.That(e!.Message, Does.Contain("at least one option"));
    }
}
