using FedNano.Checkpoints;
using FedNano.Experiments;
using FedNano.Simulation;
using FedNano.Tests.Experiments;
using FedNano.Tokenizers;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Models;

/// <summary>MiniGPT-4 through the whole pipeline: a checkpoint folder in the release formats, every method.</summary>
public class MiniGpt4RunTests
{
    private static readonly string Tokenizer =
        Path.Combine(TestContext.CurrentContext.TestDirectory,
            "Fixtures/llava-reference/original/llava-tiny/tokenizer.model");

    /// <summary>
    /// A random MiniGPT-4 of the tiny shape as a folder: blip2/, vicuna/ (with tokenizer.model), projection.
    /// </summary>
    private static string TinyCheckpoint()
    {
        string dir = TinyRuns.TempDir("minigpt4");
        var config = Backbones.MiniGpt4Tiny(LlamaSentencePieceTokenizer.Load(Tokenizer).VocabSize);
        manual_seed(3);
        using var model = MiniGpt4Checkpoint.Construct(config, CPU);
        MiniGpt4Checkpoint.Save(model, dir);
        File.Copy(Tokenizer, Path.Combine(dir, MiniGpt4Checkpoint.VicunaFolder, "tokenizer.model"));
        return dir;
    }

    [Test]
    public void EveryMethodRunsOnAMiniGpt4Checkpoint()
    {
        string model = TinyCheckpoint(), runs = TinyRuns.TempDir("minigpt4-run");
        var config = TinyRuns.Config("all") with
            { Backbone = "minigpt4-7b", ModelDir = model, Rounds = 1, SyntheticSamples = 40 };
        var outcome = RunFolder.Run(config, runs);
        var methods = outcome.Results.Select(r => r.Method).ToArray();
        Assert.That(methods, Is.EqualTo(new[] { "zero-shot" }.Concat(MethodCatalog.All)));
        foreach (var r in outcome.Results)
            Assert.That(r.ClientAccuracy.All(a => a >= 0 && a <= 1),
                $"{r.Method}: {string.Join(", ", r.ClientAccuracy)}");
        var sim = Experiment.Create(config);
        Assert.That(sim.Backbone.Model.TokensPerImage, Is.EqualTo(8), "NanoAdapter-I on the 8 projected query tokens");
        Assert.That(sim.EdgeFrozenParameters, Is.EqualTo(
            sim.Backbone.Model.VisualParameters().Sum(p => p.parameter.numel()) +
            sim.Backbone.Model.LanguageModel.Model.EmbedTokens.weight!.numel()),
            "the client holds ViT, Q-Former, projection, embedding");
        Assert.That(File.ReadAllText(Path.Combine(outcome.Directory, "summary.csv")), Does.Contain("feddpa-f"));
    }

    [Test]
    public void TheTinyTwinBackboneRuns()
    {
        var config = new SimulationConfig
        {
            Backbone = "minigpt4-tiny", SyntheticSamples = 40, Clients = 2, MinPartitionSize = 8,
            Rounds = 1, BatchSize = 8,
            Adapter = new FedNano.Adapters.AdapterConfig { Rank = 4 }, Methods = ["fednano"],
        };
        var sim = Experiment.Create(config);
        Assert.That(sim.Run("fednano").ClientAccuracy, Has.Length.EqualTo(2));
        var wrapped = sim.Backbone.Template(FedNano.Data.Prompts.LlavaPrompt.Build(sim.Data.Clients[0].Train[0]));
        Assert.That(
            string.Concat(wrapped.Segments.OfType<FedNano.Data.Prompts.PromptSegment.Text>().Select(t => t.Value)),
            Does.Contain("###Human:").And.Contain("###Assistant:"), "MiniGPT-4's conversation template");
    }
}
