using FedNano.Edge;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Strategies;

public class FisherMergingTests
{
    private static AdapterState State(params float[] values) => new(new() { ["w"] = tensor(values) });
    private static float[] Values(AdapterState s) => s["w"].data<float>().ToArray();

    [Test]
    public void EqualFishersReduceToTheSizeWeightedMean()
    {
        var updates = new[]
        {
            new ClientUpdate(0, 10, State(1, 2, 3), State(0.5f, 0.5f, 0.5f)),
            new ClientUpdate(1, 30, State(5, 6, 7), State(0.5f, 0.5f, 0.5f)),
        };
        var merged = FedNanoFisher.Merge(State(0, 0, 0), updates, 1e-20);
        var mean = FedAvg.WeightedMean(State(0, 0, 0), updates);
        Assert.That(Values(merged), Is.EqualTo(new[] { 4f, 5f, 6f }).Within(1e-6));
        Assert.That(Values(mean), Is.EqualTo(new[] { 4f, 5f, 6f }).Within(1e-6));
    }

    [Test]
    public void AZeroFisherTakesTheOtherClientsValue()
    {
        var updates = new[]
        {
            new ClientUpdate(0, 10, State(1, 2), State(0, 3)),
            new ClientUpdate(1, 10, State(5, 6), State(2, 0)),
        };
        Assert.That(Values(FedNanoFisher.Merge(State(0, 0), updates, 1e-20)),
            Is.EqualTo(new[] { 5f, 2f }).Within(1e-6));
    }

    [Test]
    public void GeneralCaseFollowsTheFormulaAndAllZeroFallsBackToTheMean()
    {
        // element 0: (2*1*1 + 3*4*5) / (2*1 + 3*4) = 62/14; element 1: both Fishers zero -> size-weighted mean
        // (2*2 + 3*6)/5
        var updates = new[]
        {
            new ClientUpdate(0, 2, State(1, 2), State(1, 0)),
            new ClientUpdate(1, 3, State(5, 6), State(4, 0)),
        };
        Assert.That(Values(FedNanoFisher.Merge(State(0, 0), updates, 1e-20)),
            Is.EqualTo(new[] { 62f / 14f, 22f / 5f }).Within(1e-5));
    }

    [Test]
    public void MissingFisherIsRefused() =>
        Assert.Throws<InvalidOperationException>(() =>
            FedNanoFisher.Merge(State(0), [new ClientUpdate(0, 1, State(1), null)], 1e-20));
}
