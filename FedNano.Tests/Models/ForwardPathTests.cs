using FedNano.Adapters;
using FedNano.Data.Prompts;
using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Models;

/// <summary>
/// The LLM's forward paths against plain references: checkpointed backward, KV-cache decoding, token batches.
/// </summary>
public class ForwardPathTests
{
    private static (Backbone backbone, EncodedSample[] samples) Setup(int count, bool freeForm, int seed = 3)
    {
        var backbone = TestBackbones.Random(5);
        var samples = SyntheticBenchmark.Generate(count, seed, SyntheticDialect.Client, 32)
            .Select((s, i) => !freeForm ? s : s with
            {
                Choices = [], AnswerIndex = -1, AnswerText = s.Choices[s.AnswerIndex],
                Image = i % 3 == 2 ? null : s.Image,                       // text-only prompts: other lengths
                Question = s.Question + string.Concat(Enumerable.Repeat(" ?", i % 4)),
            })
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), backbone.Tokenizer,
                backbone.Llava().Config.ImageTokens))
            .ToArray();
        return (backbone, samples);
    }

    /// <summary>The LLM, a training batch, its sequences and a LoRA delta with an effect.</summary>
    private sealed record LoraCase(LlamaForCausalLM Llm, EncodedBatch Batch, Tensor Sent, LoraSet Lora) : IDisposable
    {
        public void Dispose() { Batch.Dispose(); Sent.Dispose(); Lora.Dispose(); }
    }

    private static LoraCase SentWithLora(int count)
    {
        var (backbone, samples) = Setup(count, false);
        var edge = new NanoEdge(backbone.Model, new AdapterConfig { Rank = 4 }, backbone.Pixels); // shares the backbone
        var batch = EncodedBatch.Create(samples, true, backbone.Tokenizer.PadId, CPU);
        var sent = edge.Forward(batch).detach();
        manual_seed(2);
        var lora = new LoraSet(backbone.Model.LanguageModel.Config, 2);
        using (no_grad()) foreach (var (_, p) in lora.Parameters()) p.normal_(0, 0.1);
        return new LoraCase(backbone.Model.LanguageModel, batch, sent, lora);
    }

    [Test]
    public void CheckpointedBackwardEqualsThePlainOne()
    {
        using var c = SentWithLora(6);
        var (llm, batch, sent, lora) = (c.Llm, c.Batch, c.Sent, c.Lora);
        foreach (var sum in new[] { false, true })
        {
            var (nllPlain, gradPlain) = llm.TargetNllBackward(sent, batch.Labels, sum, lora);
            var loraPlain = lora.Parameters().Select(p => p.parameter.grad!.clone()).ToArray();
            foreach (var (_, p) in lora.Parameters()) p.grad!.zero_();
            var (nllCk, gradCk) = llm.TargetNllBackward(sent, batch.Labels, sum, lora, checkpoint: true);
            var loraCk = lora.Parameters().Select(p => p.parameter.grad!.clone()).ToArray();
            foreach (var (_, p) in lora.Parameters()) p.grad!.zero_();

            Assert.That(gradPlain.abs().max().item<float>(), Is.GreaterThan(0f));
            Assert.That(nllCk.allclose(nllPlain, rtol: 0, atol: 1e-6), $"nll, sum={sum}");
            Assert.That((gradCk - gradPlain).abs().max().item<float>(), Is.LessThan(1e-5f),
                $"input gradient, sum={sum}");
            Assert.That(gradCk.dtype, Is.EqualTo(sent.dtype));
            for (int i = 0; i < loraPlain.Length; i++)
                Assert.That((loraCk[i] - loraPlain[i]).abs().max().item<float>(), Is.LessThan(1e-5f),
                    $"LoRA gradient {i}");
        }
    }

    [Test]
    public void MicroBatchedStepEqualsTheWholeBatch([Values] bool checkpoint)
    {
        using var c = SentWithLora(7);
        var (llm, batch, sent, lora) = (c.Llm, c.Batch, c.Sent, c.Lora);
        var whole = new SplitServer(llm, checkpoint, int.MaxValue);
        var micro = new SplitServer(llm, checkpoint, 2 * (int)sent.shape[1] + 1); // 2, 2, 2 and 1 samples
        foreach (var sum in new[] { false, true })
        {
            (Tensor nll, Tensor grad, Tensor[] lora) Step(SplitServer server)
            {
                var (nll, grad) = server.LossAndGradient(sent, batch.Labels, sum, lora);
                var g = lora.Parameters().Select(p => p.parameter.grad!.clone()).ToArray();
                foreach (var (_, p) in lora.Parameters()) p.grad!.zero_();
                return (nll, grad, g);
            }
            var (nllWhole, gradWhole, loraWhole) = Step(whole);
            var (nllMicro, gradMicro, loraMicro) = Step(micro);
            Assert.That(gradWhole.abs().max().item<float>(), Is.GreaterThan(0f));
            Assert.That(nllMicro.allclose(nllWhole, rtol: 0, atol: 1e-6), $"nll, sum={sum}");
            Assert.That((gradMicro - gradWhole).abs().max().item<float>(), Is.LessThan(1e-6f), $"gradient, sum={sum}");
            for (int i = 0; i < loraWhole.Length; i++)
                Assert.That((loraMicro[i] - loraWhole[i]).abs().max().item<float>(), Is.LessThan(1e-5f), $"LoRA {i}");
        }
    }

    [Test]
    public void CheckpointedTrainingMovesTheAdaptersAsThePlainOne()
    {
        var (backbone, samples) = Setup(8, false);
        var config = new SimulationConfig
            { BatchSize = 4, LocalEpochs = 1, LearningRate = 1e-2, Adapter = new AdapterConfig { Rank = 4 } };
        AdapterState Train(bool checkpoint)
        {
            manual_seed(1);
            // not disposed: shares the backbone
            var edge = new NanoEdge(backbone.Model, config.Adapter, backbone.Pixels);
            var trainer = new ClientTrainer(edge, new SplitServer(backbone.Model.LanguageModel, checkpoint), config);
            trainer.Train(samples, new FedNano.Strategies.FitInstructions(), null, new Random(0));
            return edge.AdapterState();
        }
        using var plain = Train(false);
        using var checkpointed = Train(true);
        foreach (var (name, t) in plain.Tensors)
            Assert.That((checkpointed[name] - t).abs().max().item<float>(), Is.LessThan(1e-5f), name);
    }

    /// <summary>
    /// Greedy decoding the plain way: the whole prefix through the LLM again for every token, one sample at a time.
    /// </summary>
    private static List<int> FullPrefixDecode(NanoEdge edge, SplitServer server, Backbone backbone, EncodedSample s,
        int maxNew)
    {
        using var _ = no_grad();
        var produced = new List<int>();
        for (int step = 0; step < maxNew; step++)
        {
            using var scope = NewDisposeScope();
            using var batch =
                EncodedBatch.Create([s with { PromptIds = [.. s.PromptIds, .. produced] }], false, 0, CPU);
            int next = (int)server.NextTokenLogProbs(edge.Forward(batch), batch.AnswerPositions)[0]
                .argmax().item<long>();
            if (next == backbone.Tokenizer.EosId) break;
            produced.Add(next);
        }
        return produced;
    }

    [Test]
    public void KvCacheDecodingGivesTheTokensOfFullPrefixDecoding()
    {
        var (backbone, samples) = Setup(9, true);
        Assert.That(samples.Select(s => s.PromptIds.Length).Distinct().Count(), Is.GreaterThan(3),
            "prompts of different lengths");
        manual_seed(4);
        using var edge = new NanoEdge(backbone.Model, new AdapterConfig { Rank = 4 }, backbone.Pixels);
        using (no_grad()) foreach (var (_, p) in edge.AdapterParameters()) p.normal_(0, 0.05); // adapters that act
        var server = new SplitServer(backbone.Model.LanguageModel);
        var tokens = samples.Select(s => FullPrefixDecode(edge, server, backbone, s, 8)).ToArray();
        Assert.That(tokens.Max(t => t.Count), Is.GreaterThanOrEqualTo(3),
            "several tokens generated: the cache is used");
        var expected = tokens.Select(t => backbone.Tokenizer.Decode(t).Trim()).ToArray();
        foreach (int budget in new[] { 1, 200, 100_000 }) // one sample per batch, a few, all in one
        {
            var got = new Evaluator(edge, server, backbone.Tokenizer, budget).Predict(samples);
            Assert.That(got.Select(p => p.PredictedText), Is.EqualTo(expected), $"eval_batch_tokens {budget}");
        }
    }

    [Test]
    public void EvaluationBatchesStayWithinTheTokenBudget()
    {
        var (_, samples) = Setup(40, false);
        var lengths = samples.Select(s => s.PromptIds.Length).ToArray();
        foreach (int budget in new[] { 1, lengths.Max(), 3 * lengths.Max(), 1000 })
        {
            var batches = Evaluator.Batches(samples, s => s.PromptIds.Length, budget).ToArray();
            Assert.That(batches.SelectMany(b => b), Is.EqualTo(samples), "every sample once, in order");
            foreach (var b in batches)
                Assert.That(b.Length == 1 || b.Length * b.Max(s => s.PromptIds.Length) <= budget, $"budget {budget}");
            if (budget >= 3 * lengths.Max()) Assert.That(batches.Max(b => b.Length), Is.GreaterThanOrEqualTo(3));
        }
    }

    [Test]
    public void VisualTokenCacheIsBoundedAndRecomputesWhatItDropped()
    {
        var (backbone, samples) = Setup(12, false);
        var images = samples.SelectMany(s => s.Images).ToArray();
        long perImage = backbone.Llava().Config.ImageTokens * (long)backbone.Llava().Config.TextConfig.HiddenSize
            * sizeof(float);
        using var unbounded = new NanoEdge(backbone.Model, new AdapterConfig { Rank = 4 }, backbone.Pixels);
        using var bounded = new NanoEdge(backbone.Model, new AdapterConfig { Rank = 4 }, backbone.Pixels, 3 * perImage);
        using var none = new NanoEdge(backbone.Model, new AdapterConfig { Rank = 4 }, backbone.Pixels, 0);
        for (int pass = 0; pass < 2; pass++)
            foreach (var image in images)
            {
                using var scope = NewDisposeScope();
                var reference = unbounded.VisualTokens(image);
                Assert.That(bounded.VisualTokens(image).equal(reference).all().item<bool>());
                Assert.That(none.VisualTokens(image).equal(reference).all().item<bool>());
                Assert.That(bounded.CachedBytes, Is.LessThanOrEqualTo(3 * perImage));
            }
        Assert.That(unbounded.CachedBytes, Is.EqualTo(images.Length * perImage));
        Assert.That(bounded.CachedBytes, Is.EqualTo(3 * perImage));
        Assert.That(none.CachedBytes, Is.Zero);
    }
}
