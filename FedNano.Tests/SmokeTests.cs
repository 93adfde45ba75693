using NUnit.Framework;
using TorchSharp;

namespace FedNano.Tests;

public class SmokeTests
{
    [Test]
    public void LibTorchLoads() => Assert.That(torch.ones(2, 2).sum().item<float>(), Is.EqualTo(4f));
}
