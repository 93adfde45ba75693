using FedNano.Ledgers;
using FedNano.Models;
using NUnit.Framework;

namespace FedNano.Tests.Ledgers;

public class ParameterLedgerTests
{
    private static MethodParameters Row(ArchitectureParameters arch, int rank, string method) =>
        ParameterLedger.Compute(arch, rank).Single(r => r.Method == method);

    [Test]
    public void FedNanoUploadsTheFourAdapterMatricesAtRank64()
    {
        // NanoAdapter-I and -T each hold a 4096x64 down and a 64x4096 up matrix: four 64-wide slabs of 4096.
        long expected = 4 * 64 * 4096;
        var row = Row(ArchitectureParameters.Llava15_7B, 64, "FedNano");
        Assert.Multiple(() =>
        {
            Assert.That(expected, Is.EqualTo(1_048_576));
            Assert.That(row.Uploaded, Is.EqualTo(expected));
            Assert.That(row.Trainable, Is.EqualTo(expected));
            Assert.That(row.FisherUploaded, Is.EqualTo(expected), "one Fisher value per adapter parameter");
        });
    }

    [Test]
    public void FedDpaUploadsGlobalLoraOnAllSevenLinearsPlusTheProjector()
    {
        // Per Vicuna block, LoRA A is r x in and B is out x r; written per input/output width instead of per linear:
        // inputs: six linears read 4096 (q,k,v,o,gate,up), down reads 11008; outputs: q,k,v,o,down write 4096,
        // gate/up write 11008.
        long perBlock = 64L * (6 * 4096 + 11008) + 64L * (5 * 4096 + 2 * 11008);
        long projector = 1024L * 4096 + 4096 + 4096L * 4096 + 4096;
        long expected = 32 * perBlock + projector;
        var row = Row(ArchitectureParameters.Llava15_7B, 64, "FedDPA-F");
        Assert.Multiple(() =>
        {
            Assert.That(expected, Is.EqualTo(180_887_552));
            Assert.That(row.Uploaded, Is.EqualTo(expected));
            Assert.That(row.Trainable, Is.EqualTo(expected + 32 * perBlock), "global LoRA + projector + local LoRA");
            Assert.That(row.ClientResident, Is.EqualTo(ArchitectureParameters.Llava15_7B.Total + 2 * 32 * perBlock));
        });
    }

    [Test]
    public void Llava15TotalsMatchPublishedCounts()
    {
        var a = ArchitectureParameters.Llava15_7B;
        // Vicuna-7B (LLaMA-7B layout): 6,738,415,616 as published for LlamaForCausalLM with vocab 32000.
        Assert.That(a.LanguageModel, Is.EqualTo(6_738_415_616L));
        // CLIP ViT-L/14-336 vision model: ~303.5M (HF CLIPVisionModel).
        Assert.That(a.VisionEncoder, Is.InRange(303_400_000L, 303_600_000L));
        // Total = vision + projector + LLM; the HF llava-1.5-7b-hf checkpoint (vocab padded to 32064) holds
        // 7,063,427,072, i.e. 64 more rows in both the embedding and the LM head than the 32000-vocab model
        // counted here.
        Assert.That(a.Total + 2L * 64 * 4096, Is.EqualTo(7_063_427_072L));
    }

    [Test]
    public void NanoEdgeIsVisionConnectorAndEmbedding()
    {
        var a = ArchitectureParameters.Llava15_7B;
        var row = Row(a, 64, "FedNano");
        long expected = a.Total - a.Decoder - a.LmHead + 1_048_576;
        Assert.Multiple(() =>
        {
            Assert.That(row.ClientResident, Is.EqualTo(expected));
            Assert.That(row.UploadShare, Is.EqualTo(1_048_576.0 / a.Total).Within(1e-15));
            Assert.That(row.StorageSaving, Is.EqualTo(1 - (double)expected / a.Total).Within(1e-15));
            Assert.That(row.StorageSaving, Is.GreaterThan(0.9).And.LessThan(1.0));
        });
    }

    [Test]
    public void OnlyFederatedMethodsUploadAndOnlyCentralizedHasNoClients()
    {
        var rows = ParameterLedger.Compute(ArchitectureParameters.Llava15_7B, 8);
        Assert.Multiple(() =>
        {
            Assert.That(rows.Select(r => r.Method), Is.EqualTo(ParameterLedger.Methods));
            Assert.That(rows.Where(r => r.Uploaded == 0).Select(r => r.Method),
                Is.EquivalentTo(new[] { "Local", "Centralized" }));
            Assert.That(rows.Where(r => r.FisherUploaded > 0).Select(r => r.Method),
                Is.EquivalentTo(new[] { "FedNano", "FedNano-EF" }));
            Assert.That(rows.Where(r => r.ClientResident is null).Select(r => r.Method),
                Is.EquivalentTo(new[] { "Centralized" }));
        });
    }

    [Test]
    public void MiniGpt4CountsFollowTheLavisModules()
    {
        var a = ArchitectureParameters.MiniGpt4_7B;
        // EVA ViT-g/14, 39 blocks at 1408 wide, MLP int(1408 * 4.3637) = 6144, 16x16 patches + cls.
        long evaBlock = 4 * 1408 /* two layer norms */ + 3L * 1408 * 1408 + 2 * 1408 /* qkv, q/v bias */
                        + 1408L * 1408 + 1408 /* proj */ + 2L * 1408 * 6144 + 6144 + 1408 /* fc1, fc2 */;
        long eva = 39 * evaBlock + 1408L * 3 * 14 * 14 + 1408 /* patch conv */ + 1408 /* cls */ + 257L * 1408 /* pos */;
        long llamaProj = 768L * 4096 + 4096;
        Assert.Multiple(() =>
        {
            Assert.That(a.VisionEncoder, Is.EqualTo(eva));
            Assert.That(a.TunableConnector, Is.EqualTo(llamaProj));
            Assert.That(a.LanguageModel, Is.EqualTo(6_738_415_616L));
            Assert.That(Row(a, 64, "FedNano").Uploaded, Is.EqualTo(1_048_576),
                "adapters act on the 4096-wide LLM input either way");
        });
    }

    [Test]
    public void QFormerWithRemovedPartsRestoredIsBlip2s188M()
    {
        // MiniGPT-4 drops the Q-Former's word/position embeddings and text FFNs; BLIP-2 reports its full Q-Former as
        // 188M (that figure also holds ~1M of pretraining heads, not restored here). Restore the dropped parts and
        // compare loosely.
        long pruned = ArchitectureParameters.QFormer(768, 12, 3072, 1408, 2);
        long restored = pruned + 30522L * 768 + 512L * 768
            + 12 * (768L * 3072 + 3072 + 3072L * 768 + 768 + 2 * 768) + 32 * 768;
        Assert.That(restored, Is.EqualTo(188_000_000).Within(1.5).Percent);
    }

    [Test]
    public void LoraUsesTheKeyValueWidthUnderGroupedQueryAttention()
    {
        var cfg = new LlavaConfig
        {
            TextConfig = new LlamaConfig { HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2,
                NumAttentionHeads = 4, NumKeyValueHeads = 2, VocabSize = 50 },
            VisionConfig = new ClipVisionConfig { HiddenSize = 8, IntermediateSize = 12, NumHiddenLayers = 2,
                NumAttentionHeads = 2, ImageSize = 28, PatchSize = 14 },
        };
        var a = ArchitectureParameters.Llava(cfg, "gqa");
        // k/v write 2 heads x 4 = 8 wide: q (16+16) + k (16+8) + v (16+8) + o (16+16) + gate/up (16+24)x2
        // + down (24+16).
        Assert.That(a.Lora(3), Is.EqualTo(2 * 3 * (32 + 24 + 24 + 32 + 80 + 40)));
        // Decoder: linears 16*16*2 + 16*8*2 + 3*16*24, two RMSNorms of 16 per block, final norm 16.
        Assert.That(a.Decoder, Is.EqualTo(2 * (512 + 256 + 1152 + 32) + 16));
        // CLIP: cls 8, conv 3*14*14*8, pos (4+1)*8, pre/post LN 16+16, two blocks of 4*(64+8) + (96+12) + (96+8)
        // + 2*16.
        Assert.That(a.VisionEncoder, Is.EqualTo(8 + 4704 + 40 + 32 + 2 * (288 + 108 + 104 + 32)));
    }

    [Test]
    public void NonPositiveRankIsAConfigError()
    {
        Assert.Throws<ConfigException>(() => ParameterLedger.Compute(ArchitectureParameters.Llava15_7B, 0));
        Assert.Throws<ConfigException>(() => ArchitectureParameters.Preset("gpt-5"));
    }
}
