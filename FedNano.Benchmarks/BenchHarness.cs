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
/// A one-client simulation built as <c>fednano run</c> builds one (<see cref="Experiment"/>,
/// <see cref="FederatedSimulation"/>) and one batch of its client's synthetic training samples, with the three
/// operations a round repeats: a local training step, a Fisher pass, an evaluation batch. The only place the
/// benchmarks call into the simulation.
/// </summary>
internal sealed class BenchHarness : IDisposable
{
    private readonly FederatedSimulation sim;

    private BenchHarness(FederatedSimulation sim, EncodedSample[] batch, DeviceChoice where)
    {
        this.sim = sim; Batch = batch; Where = where;
    }

    /// <summary>The batch every operation runs on.</summary>
    public EncodedSample[] Batch { get; }
    /// <summary>Device and precision of the frozen backbone.</summary>
    public DeviceChoice Where { get; }
    /// <summary>The backbone's architecture.</summary>
    public LlavaConfig Config => ((LlavaModel)sim.Backbone.Model).Config;
    /// <summary>Frozen parameters of the backbone.</summary>
    public long FrozenParameters => sim.Backbone.Model.parameters().Sum(p => p.numel());
    /// <summary>Trainable adapter parameters.</summary>
    public long AdapterParameters => sim.AdapterParameterCount;

    /// <summary>
    /// <paramref name="preset"/> <c>tiny</c> (the shipped backbone), <c>mid</c> (random), or <c>llava-1.5-7b</c>:
    /// the checkpoint in <paramref name="modelDir"/>, or without one random weights built in memory (with the
    /// synthetic benchmark's word-level tokenizer). <paramref name="checkpointing"/>: recompute the frozen LLM's
    /// blocks in the backward (<c>activation_checkpointing</c>).
    /// </summary>
    public static BenchHarness Create(string preset, string? modelDir, string device, string precision, int batch,
                                      bool checkpointing = false)
    {
        var config = new SimulationConfig
        {
            Backbone = preset, ModelDir = modelDir, Device = device, Precision = precision,
            Clients = 1, SyntheticSamples = 2 * batch + 10, BatchSize = batch, LocalEpochs = 1,
            EvalBatchTokens = 100_000_000, // the most allowed: the evaluation batch is the whole batch
            ActivationCheckpointing = checkpointing,
        };
        config.Validate();
        var where = DeviceChoice.Resolve(device, precision);
        var backbone = preset == "llava-1.5-7b" && modelDir is null
            ? RandomLlava7B(where)
            : Experiment.LoadBackbone(config);
        var data = FederatedData.Partition(Experiment.LoadSamples(config, backbone), config);
        var sim = new FederatedSimulation(config, backbone, data);
        return new BenchHarness(sim, sim.Train[0].Take(batch).ToArray(), where);
    }

    private static Backbone RandomLlava7B(DeviceChoice where)
    {
        manual_seed(1);
        return Backbones.Random("llava-1.5-7b", Backbones.Llava15_7B,
                                TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400), where);
    }

    /// <summary>One local training step on the batch (forward, backward across the split, AdamW step).</summary>
    public double TrainStep() =>
        sim.Trainer.Train(Batch, new FitInstructions(), null, new Random(0), steps: 1).loss;

    /// <summary>The exact empirical Fisher of the adapters on the batch.</summary>
    public void FisherPass()
    {
        using var fisher = sim.Trainer.Fisher(Batch);
        Synchronize(fisher.Tensors.Values.First());
    }

    /// <summary>Scores the batch as test samples (multiple choice).</summary>
    public int EvaluateBatch() => sim.Evaluator.Predict(Batch).Count(p => p.Correct);

    private static void Synchronize(Tensor t) => _ = t.sum().item<float>();

    public void Dispose() { sim.Edge.Dispose(); sim.Backbone.Model.Dispose(); }
}
