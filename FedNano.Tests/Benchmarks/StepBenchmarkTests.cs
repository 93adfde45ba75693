using System.Reflection;
using NUnit.Framework;

namespace FedNano.Tests.Benchmarks;

/// <summary>
/// The benchmark program builds with the tests (referenced by this project) and its <c>step</c> command runs on the
/// tiny preset, so a change elsewhere (a config rule, say) cannot leave the README's measuring commands broken.
/// </summary>
[NonParallelizable]
public class StepBenchmarkTests
{
    [Category("Slow")]
    [Test]
    public void TheStepCommandMeasuresEveryPhase()
    {
        var entry = Assembly.Load("FedNano.Benchmarks").EntryPoint!;
        var (before, output) = (Console.Out, new StringWriter());
        Console.SetOut(output);
        int code;
        try
        {
            string[] args = ["step", "--preset", "tiny", "--device", "cpu", "--batch", "2", "--warmup", "1",
                "--iterations", "1"];
            code = (int)entry.Invoke(null, [args])!;
        }
        finally { Console.SetOut(before); }
        Assert.That(code, Is.Zero, output.ToString());
        foreach (var phase in new[] { "train", "fisher", "eval" })
            Assert.That(output.ToString(), Does.Match($@"(?m)^\| {phase} \| [\d,.]+ \|"), phase);
    }
}
