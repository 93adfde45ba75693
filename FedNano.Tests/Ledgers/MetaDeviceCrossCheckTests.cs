using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Ledgers;
using FedNano.Models;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Ledgers;

/// <summary>
/// The ledger's arithmetic against the real model classes, built on the meta device (shapes only, no memory):
/// every parameter of <see cref="LlavaModel"/> and the NanoEdge is counted and attributed to a part by its
/// checkpoint name.
/// </summary>
[NonParallelizable] // switches the process-wide default device while it builds
public class MetaDeviceCrossCheckTests
{
    private static IEnumerable<TestCaseData> Architectures()
    {
        yield return new TestCaseData(new LlavaConfig()).SetName("LLaVA-1.5-7B");
        yield return new TestCaseData(TinyConfig()).SetName("tiny");
        yield return new TestCaseData(TinyConfig() with
        {
            TextConfig = TinyConfig().TextConfig with { NumKeyValueHeads = 2 },
        }).SetName("tiny, grouped-query attention");
    }

    /// <summary>
    /// The tiny backbone's config from data/ when the repository has it, otherwise a tiny LLaVA config.
    /// </summary>
    private static LlavaConfig TinyConfig()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "data", "tiny-backbone", "config.json");
            if (File.Exists(path)) return LlavaConfig.Load(path);
        }
        return new LlavaConfig
        {
            TextConfig = new LlamaConfig { HiddenSize = 64, IntermediateSize = 172, NumHiddenLayers = 2,
                NumAttentionHeads = 4, VocabSize = 300, MaxPositionEmbeddings = 256 },
            VisionConfig = new ClipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3,
                NumAttentionHeads = 2, ImageSize = 56, PatchSize = 14 },
        };
    }

    private static T OnMeta<T>(Func<T> build)
    {
        var previous = get_default_device();
        set_default_device(new Device(DeviceType.META));
        try { return build(); }
        finally { set_default_device(previous); }
    }

    private static ModelPart PartOf(string name) => name switch
    {
        _ when name.StartsWith("vision_tower.") => ModelPart.VisionEncoder,
        _ when name.StartsWith("multi_modal_projector.") => ModelPart.Connector,
        _ when name.StartsWith("language_model.model.embed_tokens.") => ModelPart.TokenEmbedding,
        _ when name.StartsWith("language_model.lm_head.") => ModelPart.LmHead,
        _ when name.StartsWith("language_model.model.") => ModelPart.Decoder,
        _ => throw new AssertionException($"parameter {name} belongs to no part"),
    };

    [TestCaseSource(nameof(Architectures))]
    public void LedgerMatchesTheModelClasses(LlavaConfig config)
    {
        var ledger = ArchitectureParameters.Llava(config, "cross-check");
        const int rank = 16;
        using var model = OnMeta(() => new LlavaModel(config));
        using var edge = OnMeta(() =>
            new NanoEdge(model, new AdapterConfig { Rank = rank }, _ => throw new NotSupportedException()));

        // (Untied heads only: TorchSharp lists a tied LM head as a parameter of its own, under a different handle.)
        var byPart = model.named_parameters()
            .GroupBy(p => PartOf(p.name))
            .ToDictionary(g => g.Key, g => g.Sum(p => p.parameter.numel()));
        Assert.Multiple(() =>
        {
            Assert.That(model.parameters().First().device_type, Is.EqualTo(DeviceType.META));
            foreach (var part in Enum.GetValues<ModelPart>())
                Assert.That(byPart.GetValueOrDefault(part), Is.EqualTo(ledger.Sum(part)), part.ToString());
            Assert.That(byPart.Values.Sum(), Is.EqualTo(ledger.Total));
            Assert.That(edge.AdapterParameters().Sum(p => p.parameter.numel()), Is.EqualTo(ledger.NanoAdapters(rank)));
            Assert.That(edge.FrozenParameters().Sum(p => p.parameter.numel()), Is.EqualTo(ledger.NanoEdgeFrozen));
        });
    }
}
