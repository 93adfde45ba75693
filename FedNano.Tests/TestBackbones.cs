using FedNano.Data.Synthetic;
using FedNano.Models;
using FedNano.Tokenizers;
using TorchSharp;
using TorchSharp.PyBridge;

namespace FedNano.Tests;

/// <summary>Small random backbones for tests that must not depend on the shipped backbone's training.</summary>
internal static class TestBackbones
{
    private static readonly Lazy<string> Vocab = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), "fednano-test-vocab-" + Environment.ProcessId,
            TinyTokenizer.FileName);
        TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400, path);
        return path;
    });

    /// <summary>A random tiny backbone (the shipped architecture, narrower LLM), deterministic for a seed.</summary>
    public static Backbone Random(int seed = 1)
    {
        var tokenizer = TinyTokenizer.Load(Vocab.Value);
        var c = TinyBackbone.Config(tokenizer.VocabSize);
        c = c with { TextConfig = c.TextConfig with { HiddenSize = 64, IntermediateSize = 96, NumHiddenLayers = 2 } };
        torch.manual_seed(seed);
        var model = new LlavaModel(c);
        model.eval();
        return new Backbone("test", model, tokenizer, TinyBackbone.PixelsFor(c));
    }

    /// <summary>
    /// Writes a random backbone as a model folder (config.json, model.safetensors, vocab.txt) and returns the folder.
    /// </summary>
    public static string SaveRandom(string dir, int seed = 1)
    {
        var b = Random(seed);
        Directory.CreateDirectory(dir);
        b.Llava().Config.Save(Path.Combine(dir, "config.json"));
        b.Llava().save_safetensors(Path.Combine(dir, "model.safetensors"));
        File.Copy(Vocab.Value, Path.Combine(dir, TinyTokenizer.FileName), true);
        return dir;
    }
}

/// <summary>The LLaVA model of a LLaVA backbone (tests of its configuration and weights).</summary>
internal static class BackboneExtensions
{
    public static LlavaModel Llava(this Backbone backbone) => (LlavaModel)backbone.Model;
}
