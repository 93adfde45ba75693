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

namespace FedNano.Tests.Simulation;

public class PrecisionTests
{
    [Test]
    public void ATrainingStepOnABfloat16BackboneMovesOnlyTheFloat32Adapters()
    {
        var tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400);
        manual_seed(11);
        var backbone = Backbones.Random("tiny", TinyBackbone.Config(tokenizer.VocabSize), tokenizer,
            DeviceChoice.Resolve("cpu", "bfloat16"));
        using var model = backbone.Llava();
        var config = new SimulationConfig
            { BatchSize = 8, LocalEpochs = 1, LearningRate = 1e-2, Adapter = new AdapterConfig { Rank = 4 } };
        using var edge = new NanoEdge(model, config.Adapter, backbone.Pixels);
        var server = new SplitServer(model.LanguageModel);
        var samples = SyntheticBenchmark.Generate(8, 5, SyntheticDialect.Client, model.Config.VisionConfig.ImageSize)
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), tokenizer, model.Config.ImageTokens)).ToArray();

        Assert.That(model.parameters().All(p => p.dtype == ScalarType.BFloat16), Is.True);
        Assert.That(edge.AdapterParameters().All(p => p.parameter.dtype == ScalarType.Float32
            && p.parameter.requires_grad), Is.True);
        using (no_grad())
        using (var batch = EncodedBatch.Create(samples, true, tokenizer.PadId, edge.Device))
        using (var sent = edge.Forward(batch))
            Assert.That(sent.dtype, Is.EqualTo(ScalarType.BFloat16), "the LLM receives its own dtype");
        using (var batch = EncodedBatch.Create(samples, true, tokenizer.PadId, edge.Device))
        {
            // a float32 sequence is cast on the server; its gradient comes back in float32
            var received = rand(batch.Labels.shape[0], batch.Labels.shape[1], model.Config.TextConfig.HiddenSize);
            var (_, grad) = server.LossAndGradient(received, batch.Labels, sum: true);
            Assert.That(grad.dtype, Is.EqualTo(ScalarType.Float32));
            Assert.That(grad.abs().sum().item<float>(), Is.GreaterThan(0f));
        }

        var frozen = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.bytes.ToArray());
        using var before = edge.AdapterState();
        // 8 samples, batch 8: one step
        var (loss, _) = new ClientTrainer(edge, server, config)
            .Train(samples, new FitInstructions(), null, new Random(0));
        using var after = edge.AdapterState();

        Assert.That(double.IsFinite(loss) && loss > 0, Is.True, $"loss {loss}");
        Assert.That(after.Tensors.Values.All(t => t.dtype == ScalarType.Float32), Is.True);
        // up starts at zero, so the first step moves up (down's gradient is zero until up is not)
        foreach (var name in new[] { "adapter_i.up.weight", "adapter_t.up.weight" })
            Assert.That(after[name].ne(before[name]).any().item<bool>(), Is.True, $"{name} did not move");
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.That(p.dtype, Is.EqualTo(ScalarType.BFloat16), name);
            Assert.That(p.bytes.ToArray(), Is.EqualTo(frozen[name]), $"frozen {name} changed");
        }
    }
}
