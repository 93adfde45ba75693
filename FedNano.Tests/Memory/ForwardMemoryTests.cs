using FedNano.Adapters;
using FedNano.Checkpoints;
using FedNano.Data.Prompts;
using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tokenizers;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Memory;

/// <summary>
/// Peak memory of an evaluation batch and a training step on the mid preset (0.25 B parameters, LLaVA-1.5's 576
/// visual tokens) is set by one block's activations, not by all blocks' at once: measured as the rise of this
/// process's peak resident memory (libtorch's CPU allocator returns large blocks to the system when freed), against
/// the rise of one block's forward (and backward) measured the same way.
/// </summary>
[Category("Slow")]
public class ForwardMemoryTests
{
    private const int Batch = 4;
    private static readonly LlavaConfig Mid = Backbones.Mid;
    private Backbone backbone = null!;
    private EncodedSample[] samples = null!;
    private NanoEdge edge = null!;
    private long oneBlockEval, oneBlockTrain, oneBlockSaved, oneVisionBlock, sequenceBytes, sequenceTokens;

    [OneTimeSetUp]
    public void SetUp()
    {
        if (!ProcessMemory.Available) Assert.Ignore("needs Linux /proc");
        FedNano.Simulation.HostMemory.ReturnLargeBlocksToTheSystem(); // as a run does
        var tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400);
        manual_seed(1);
        backbone = Backbones.Random("mid", Mid, tokenizer, DeviceChoice.Resolve("cpu"));
        samples = SyntheticBenchmark.Generate(Batch, 3, SyntheticDialect.Client, Mid.VisionConfig.ImageSize)
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), tokenizer, Mid.ImageTokens)).ToArray();
        edge = new NanoEdge(backbone.Model, new AdapterConfig(), backbone.Pixels);
        long t = sequenceTokens = samples.Max(s => s.PromptIds.Length + s.TargetIds.Length);
        sequenceBytes = Batch * t * Mid.TextConfig.HiddenSize * sizeof(float);

        // one block of each kind, alone, on inputs of the batch's shape
        using var block = new LlamaDecoderLayer(Mid.TextConfig, 0);
        using var vision = new ClipEncoderLayer(Mid.VisionConfig);
        foreach (var (_, p) in block.named_parameters()) p.requires_grad = false;
        using var x = randn(Batch, t, Mid.TextConfig.HiddenSize);
        var rope = Rope.For(arange(t).unsqueeze(0), Mid.TextConfig.HeadDim, Mid.TextConfig.RopeTheta);
        using var pixels = randn(1, Mid.VisionConfig.NumPatches + 1, Mid.VisionConfig.HiddenSize);
        long start = 0;
        oneBlockEval = ProcessMemory.PeakRise(() =>
            { using var _ = no_grad(); block.forward(new DecoderLayerInput(x, rope)).Dispose(); });
        oneVisionBlock = ProcessMemory.PeakRise(() => { using var _ = no_grad(); vision.forward(pixels).Dispose(); });
        ProcessMemory.ResetPeak();
        start = ProcessMemory.Current;
        oneBlockTrain = ProcessMemory.PeakRise(() =>
        {
            using var scope = NewDisposeScope();
            var input = x.detach().requires_grad_(true);
            var output = block.forward(new DecoderLayerInput(input, rope));
            oneBlockSaved = ProcessMemory.Current - start; // what autograd keeps for the backward, with the output
            output.sum().backward();
        });
        TestContext.Out.WriteLine($"one LLM block: {oneBlockEval >> 20} MiB forward, " +
                                  $"{oneBlockTrain >> 20} MiB forward + backward " +
                                  $"({oneBlockSaved >> 20} MiB kept for the backward); " +
                                  $"one vision block {oneVisionBlock >> 20} MiB; sequence {sequenceBytes >> 20} MiB");
    }

    [Test]
    public void EvaluationBatchPeaksAtAboutOneBlock()
    {
        var evaluator = new Evaluator(edge, new SplitServer(backbone.Model.LanguageModel), backbone.Tokenizer, 100_000);
        evaluator.Predict(samples); // warm-up: the visual-token cache fills
        long rise = ProcessMemory.PeakRise(() => evaluator.Predict(samples));
        long cold = ProcessMemory.PeakRise(() => new Evaluator(
            new NanoEdge(backbone.Model, new AdapterConfig(), backbone.Pixels),
            new SplitServer(backbone.Model.LanguageModel), backbone.Tokenizer, 100_000).Predict(samples));
        long bound = 2 * oneBlockEval + 4 * sequenceBytes + (32L << 20);
        TestContext.Out.WriteLine($"evaluation batch of {Batch}: {rise >> 20} MiB, " +
                                  $"with the vision tower {cold >> 20} MiB; bound {bound >> 20} MiB");
        Assert.That(rise, Is.LessThan(bound), "8 LLM blocks; all of them alive at once would be about 8 blocks' worth");
        Assert.That(cold, Is.LessThan(bound + 2 * oneVisionBlock + Batch * sequenceBytes));
    }

    [Test]
    public void TrainingStepPeaksAtWhatBackwardNeeds()
    {
        var config = new SimulationConfig { BatchSize = Batch, LocalEpochs = 1 };
        long Step(bool checkpoint, int tokens = int.MaxValue)
        {
            var server = new SplitServer(backbone.Model.LanguageModel, checkpoint, tokens);
            var trainer = new ClientTrainer(edge, server, config);
            return ProcessMemory.PeakRise(() =>
                trainer.Train(samples, new FitInstructions(), null, new Random(0), steps: 1));
        }
        using (no_grad()) foreach (var image in samples.SelectMany(s => s.Images)) edge.VisualTokens(image).Dispose();
        long plain = Step(false), checkpointed = Step(true);
        long micro = Step(false, (int)sequenceTokens); // train_batch_tokens of one sample: micro-batches of one
        int layers = Mid.TextConfig.NumHiddenLayers;
        long plainBound = layers * oneBlockSaved + oneBlockTrain + 4 * sequenceBytes + (128L << 20);
        long microBound = layers * oneBlockSaved / Batch + oneBlockTrain + 4 * sequenceBytes + (128L << 20);
        long checkpointBound = layers * sequenceBytes + 2 * oneBlockTrain + 4 * sequenceBytes + (64L << 20);
        TestContext.Out.WriteLine($"training step of {Batch}: {plain >> 20} MiB (bound {plainBound >> 20}), " +
                                  $"checkpointed {checkpointed >> 20} MiB (bound {checkpointBound >> 20}), " +
                                  $"micro-batches of 1 {micro >> 20} MiB (bound {microBound >> 20})");
        Assert.That(plain, Is.LessThan(plainBound), "each block keeps what its backward needs, the rest is freed");
        Assert.That(oneBlockSaved, Is.LessThan(oneBlockTrain),
            "a block keeps less than its whole forward and backward");
        Assert.That(checkpointed, Is.LessThan(checkpointBound), "block inputs plus one block's activations");
        Assert.That(checkpointed, Is.LessThan(plain));
        Assert.That(micro, Is.LessThan(microBound), "one sample's blocks kept at a time");
    }
}
