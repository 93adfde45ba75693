using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using static TorchSharp.torch;

namespace FedNano.Benchmarks;

/// <summary>
/// One local training step (client NanoEdge forward, server LLM forward and backward, gradient back into the
/// adapters, AdamW step) and one evaluation batch (multiple-choice letter scoring) on the CPU, for the tiny (shipped)
/// and mid (random) presets (<see cref="BenchHarness"/>). Visual tokens are cached as in a simulation, so the frozen
/// vision tower runs only in the setup. BenchmarkDotNet's short-run job (3 warm-ups, 3 iterations, 1 launch), in
/// process: a separately built benchmark program would miss the libLibTorchSharp load fix.
/// </summary>
[Config(typeof(ShortInProcess))]
public class RoundBenchmarks
{
    /// <summary>Samples per batch.</summary>
    public const int BatchSize = 4;

    [Params("tiny", "mid")] public string Preset { get; set; } = "tiny";

    private BenchHarness harness = null!;

    [GlobalSetup]
    public void Setup()
    {
        harness = BenchHarness.Create(Preset, null, "cpu", "float32", BatchSize);
        var lengths = string.Join(",", harness.Batch.Select(s => s.PromptIds.Length));
        Console.WriteLine($"// {Preset}: {harness.FrozenParameters:N0} frozen parameters, " +
                          $"{harness.AdapterParameters:N0} adapter parameters, prompt lengths {lengths} tokens, " +
                          $"torch threads {get_num_threads()}");
        harness.EvaluateBatch(); // fills the visual-token cache
    }

    /// <summary>One local training step on a batch.</summary>
    [Benchmark]
    public double TrainStep() => harness.TrainStep();

    /// <summary>Scoring one evaluation batch.</summary>
    [Benchmark]
    public int EvaluateBatch() => harness.EvaluateBatch();

    [GlobalCleanup]
    public void Cleanup() => harness.Dispose();

    private sealed class ShortInProcess : ManualConfig
    {
        public ShortInProcess() =>
            AddJob(Job.ShortRun.WithToolchain(new InProcessEmitToolchain(TimeSpan.FromHours(1), logOutput: true)));
    }
}
