using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using FedNano.Checkpoints;
using FedNano.Data.Prompts;
using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tokenizers;
using static TorchSharp.torch;

namespace FedNano.Benchmarks;

/// <summary>
/// One local training step (client NanoEdge forward, server LLM forward and backward, gradient back into the
/// adapters, AdamW step) and one evaluation batch (multiple-choice letter scoring) on the CPU, for the tiny and
/// mid presets with random weights (the speed does not depend on the values). Visual tokens are cached as in a
/// simulation, so the frozen vision tower runs only in the setup. BenchmarkDotNet's short-run job (3 warm-ups,
/// 3 iterations, 1 launch), in process: a separately built benchmark program would miss the libLibTorchSharp load fix.
/// </summary>
[Config(typeof(ShortInProcess))]
public class RoundBenchmarks
{
    /// <summary>Samples per batch.</summary>
    public const int BatchSize = 4;

    [Params("tiny", "mid")] public string Preset { get; set; } = "tiny";

    private Backbone backbone = null!;
    private NanoEdge edge = null!;
    private ClientTrainer trainer = null!;
    private Evaluator evaluator = null!;
    private EncodedSample[] samples = null!;

    [GlobalSetup]
    public void Setup()
    {
        var tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400);
        var config = Preset == "tiny" ? TinyBackbone.Config(tokenizer.VocabSize) : Backbones.Mid;
        manual_seed(1);
        backbone = Backbones.Random(Preset, config, tokenizer, DeviceChoice.Resolve("cpu"));
        var sim = new SimulationConfig { BatchSize = BatchSize, LocalEpochs = 1 };
        edge = new NanoEdge(backbone.Model, sim.Adapter, backbone.Pixels);
        var server = new SplitServer(backbone.Model.LanguageModel);
        trainer = new ClientTrainer(edge, server, sim);
        samples = SyntheticBenchmark.Generate(BatchSize, 3, SyntheticDialect.Client, config.VisionConfig.ImageSize)
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), tokenizer, config.ImageTokens)).ToArray();
        evaluator = new Evaluator(edge, server, tokenizer, batchTokens: BatchSize * samples.Max(s => s.PromptIds.Length));
        Console.WriteLine($"// {Preset}: {backbone.Model.parameters().Sum(p => p.numel()):N0} frozen parameters, " +
                          $"{edge.AdapterParameters().Sum(p => p.parameter.numel()):N0} adapter parameters, " +
                          $"prompt lengths {string.Join(",", samples.Select(s => s.PromptIds.Length))} tokens, torch threads {get_num_threads()}");
        using (no_grad()) foreach (var s in samples) edge.VisualTokens(s.Images[0]); // fill the visual-token cache
    }

    /// <summary>One local training step on a batch.</summary>
    [Benchmark]
    public double TrainStep() => trainer.Train(samples, new FitInstructions(), null, new Random(0)).loss;

    /// <summary>Scoring one evaluation batch.</summary>
    [Benchmark]
    public int EvaluateBatch() => evaluator.Predict(samples).Count(p => p.Correct);

    [GlobalCleanup]
    public void Cleanup() { edge.Dispose(); backbone.Model.Dispose(); }

    private sealed class ShortInProcess : ManualConfig
    {
        public ShortInProcess() => AddJob(Job.ShortRun.WithToolchain(new InProcessEmitToolchain(TimeSpan.FromHours(1), logOutput: true)));
    }
}
