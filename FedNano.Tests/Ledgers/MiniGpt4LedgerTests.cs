using System.CommandLine;
using FedNano.Checkpoints;
using FedNano.Cli.Commands;
using FedNano.Ledgers;
using FedNano.Models;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Ledgers;

/// <summary>
/// The full-size MiniGPT-4 built on the meta device (shapes only): its parameter names and shapes are the checkpoint
/// layout, and the ledger counted from it agrees with LAVIS' module arithmetic and the published counts.
/// </summary>
[NonParallelizable] // switches the process-wide default device while it builds
public class MiniGpt4LedgerTests
{
    [Test]
    public void FullSizeModelOnTheMetaDeviceHasTheCheckpointsNamesAndShapes()
    {
        var config = new MiniGpt4Config();
        using var model = MiniGpt4Checkpoint.Construct(config, new Device(DeviceType.META));
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var expected = MiniGpt4Checkpoint.ExpectedParameters(config);
        Assert.Multiple(() =>
        {
            Assert.That(model.parameters().First().device_type, Is.EqualTo(DeviceType.META));
            Assert.That(actual.Keys, Is.EquivalentTo(expected.Select(p => p.Name)));
            // 513 in the tower, 255 in the Q-Former with its queries, 2 in the projection, 291 in Vicuna
            Assert.That(actual, Has.Count.EqualTo(1061));
            foreach (var (name, shape) in expected)
                Assert.That(actual.GetValueOrDefault(name), Is.EqualTo(shape), name);
            Assert.That(actual["vision_model.embeddings.position_embedding"], Is.EqualTo(new long[] { 1, 257, 1408 }));
            Assert.That(actual["vision_model.encoder.layers.38.mlp.fc1.weight"], Is.EqualTo(new long[] { 6144, 1408 }));
            Assert.That(actual["qformer.encoder.layer.10.crossattention.attention.key.weight"],
                Is.EqualTo(new long[] { 768, 1408 }));
            Assert.That(actual.ContainsKey("qformer.encoder.layer.11.crossattention.attention.key.weight"), Is.False);
            Assert.That(actual["query_tokens"], Is.EqualTo(new long[] { 1, 32, 768 }));
            Assert.That(actual["language_projection.weight"], Is.EqualTo(new long[] { 4096, 768 }));
            Assert.That(actual["language_model.model.layers.31.mlp.down_proj.weight"],
                Is.EqualTo(new long[] { 4096, 11008 }));
            Assert.That(model.TokensPerImage, Is.EqualTo(32));
        });
    }

    [Test]
    public void LedgerCountedFromTheModulesMatchesLavisArithmeticAndPublishedCounts()
    {
        var a = ArchitectureParameters.MiniGpt4_7B;
        long eva = ArchitectureParameters.EvaVit(width: 1408, layers: 39, mlp: 6144, imageSize: 224, patch: 14);
        long qformer = ArchitectureParameters.LayerNorm(1408) + ArchitectureParameters.QFormer(768, 12, 3072, 1408, 2)
                       + 32 * 768;
        long projection = ArchitectureParameters.Linear(768, 4096);
        Assert.Multiple(() =>
        {
            Assert.That(a.VisionEncoder, Is.EqualTo(eva).And.EqualTo(985_894_528L));
            Assert.That(a.Connector, Is.EqualTo(qformer + projection).And.EqualTo(105_165_056L + 3_149_824L));
            Assert.That(a.TunableConnector, Is.EqualTo(projection));
            Assert.That(a.LanguageModel, Is.EqualTo(6_738_415_616L), "Vicuna-7B as published for LlamaForCausalLM");
            Assert.That(a.Total, Is.EqualTo(7_832_625_024L));
            Assert.That(a.Groups.Select(g => g.Part), Is.EqualTo(new[]
            {
                ModelPart.VisionEncoder, ModelPart.Connector, ModelPart.Connector,
                ModelPart.TokenEmbedding, ModelPart.Decoder, ModelPart.LmHead,
            }));
            Assert.That(a.NanoEdgeFrozen, Is.EqualTo(a.Total - a.Decoder - a.LmHead));
        });
    }

    [Test]
    public void LedgerOfATinyConfigCountsEveryParameterOfTheModel()
    {
        var config = MiniGpt4Checkpoint.Open(Checkpoints.MiniGpt4CheckpointTests.Folder).Config;
        var a = ArchitectureParameters.MiniGpt4(config, "tiny-minigpt4");
        using var model = MiniGpt4Checkpoint.Construct(config, CPU);
        long visual = model.VisualParameters().Sum(p => p.parameter.numel());
        Assert.Multiple(() =>
        {
            Assert.That(a.Total, Is.EqualTo(model.parameters().Sum(p => p.numel())));
            Assert.That(a.VisionEncoder + a.Connector, Is.EqualTo(visual));
            Assert.That(a.TokenEmbedding, Is.EqualTo(64 * 20));
            Assert.That(a.LmHead, Is.EqualTo(64 * 20));
            Assert.That(a.TunableConnector, Is.EqualTo(12 * 20 + 20));
            Assert.That(a.NanoAdapters(4), Is.EqualTo(2 * 2 * 20 * 4));
        });
    }

    [Test]
    public void ParamsCommandPrintsTheCountsForMiniGpt4()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ParamsCommand.Build().Parse(["--model", "minigpt4-7b", "--rank", "64"])
            .Invoke(new InvocationConfiguration { Output = output, Error = error });
        var text = output.ToString();
        string Row(string method) => string.Join(" ", // the table comes in parts that fit 80 columns, a row in each
            text.Split('\n').Where(l => l.Split('│', '|').Select(c => c.Trim()).Contains(method)));
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), error.ToString());
            Assert.That(text, Does.Contain("7,832,625,024").And.Contain("985,894,528"));
            Assert.That(Row("FedNano"), Does.Contain("1,048,576").And.Contain("1,226,329,984"));
            Assert.That(Row("FedDPA-F"), Does.Contain("163,057,664"));
        });
    }
}
