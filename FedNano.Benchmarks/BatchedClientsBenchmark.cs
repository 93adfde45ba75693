using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using FedNano.Checkpoints;
using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tokenizers;
using static TorchSharp.torch;

namespace FedNano.Benchmarks;

/// <summary>
/// The local training of one round of 50 clients (FedAvg, the quickstart's 2 local epochs of batches of 16), on the
/// tiny preset with random weights on the CPU: <c>execution: sequential</c> (client after client) against
/// <c>batched</c> (each step's mini-batches of every client in one pass through the frozen LLM). Evaluation is not
/// included. One warm-up (it also fills the visual-token cache) and 3 iterations, in process.
/// </summary>
[Config(typeof(OneRound))]
public class BatchedClientsBenchmark
{
    /// <summary>Clients in the round.</summary>
    public const int Clients = 50;

    [Params("sequential", "batched")] public string Execution { get; set; } = "batched";

    private Backbone backbone = null!;
    private FederatedSimulation sim = null!;
    private int[] clients = null!;
    private FitInstructions[] fits = null!;
    private AdapterState[] starts = null!;

    [GlobalSetup]
    public void Setup()
    {
        var tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400);
        var arch = TinyBackbone.Config(tokenizer.VocabSize);
        manual_seed(1);
        backbone = Backbones.Random("tiny", arch, tokenizer, DeviceChoice.Resolve("cpu"));
        var config = new SimulationConfig
        {
            SyntheticSamples = 2000, Clients = Clients, MinPartitionSize = 10, LocalEpochs = 2, BatchSize = 16,
            LearningRate = 5e-3, Methods = ["fedavg"], Execution = Execution,
        };
        int size = arch.VisionConfig.ImageSize;
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, 3, SyntheticDialect.Client, size);
        sim = new FederatedSimulation(config, backbone, FederatedData.Partition(samples, config));
        clients = Enumerable.Range(0, Clients).ToArray();
        fits = clients.Select(_ => new FitInstructions()).ToArray();
        starts = clients.Select(_ => sim.Initial).ToArray();
        var steps = sim.Train.Select(t => sim.Trainer.StepsFor(t.Length)).ToArray();
        var sizes = sim.Train.Select(t => t.Length).ToArray();
        Console.WriteLine($"// {Execution}: {Clients} clients, {sizes.Sum()} training samples " +
                          $"({sizes.Min()}-{sizes.Max()} per client), {steps.Sum()} local steps " +
                          $"({steps.Min()}-{steps.Max()} per client), " +
                          $"torch threads {get_num_threads()}");
    }

    /// <summary>Local training of every client of round 1 from the initial adapters.</summary>
    [Benchmark]
    public double Round()
    {
        var outcomes = sim.TrainClients(1, clients, fits, starts, sim.Initial);
        double loss = outcomes.Average(o => o.Loss);
        foreach (var o in outcomes) o.Trained.Dispose();
        return loss;
    }

    [GlobalCleanup]
    public void Cleanup() { sim.Edge.Dispose(); backbone.Model.Dispose(); }

    private sealed class OneRound : ManualConfig
    {
        public OneRound() => AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring)
            .WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1)
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromHours(1), logOutput: true)));
    }
}
