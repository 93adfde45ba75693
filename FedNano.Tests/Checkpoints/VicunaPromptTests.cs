using FedNano.Checkpoints;
using FedNano.Data.Prompts;
using FedNano.Tokenizers;
using NUnit.Framework;

namespace FedNano.Tests.Checkpoints;

public class VicunaPromptTests
{
    [Test]
    public void TemplateAndSentencePieceTokenizerGiveLlavasIds()
    {
        // reference.safetensors holds the question and the ids Python's sentencepiece + LLaVA's tokenizer_image_token gave
        var reference = SafetensorsFile.Open(Path.Combine(LlavaCheckpointTests.Root, "reference.safetensors"));
        var prompt = VicunaV1.Text(reference.Metadata["question"]);
        Assert.That(prompt, Is.EqualTo(reference.Metadata["prompt"]));
        Assert.That(prompt, Does.StartWith("A chat between a curious human").And.Contain(" USER: <image>\n").And.EndWith(" ASSISTANT:"));

        var tokenizer = LlamaSentencePieceTokenizer.Load(LlavaCheckpoint.Open(LlavaCheckpointTests.Converted).TokenizerPath!);
        Assert.That(tokenizer.VocabSize, Is.EqualTo(int.Parse(reference.Metadata["vocab_size"])));
        Assert.That((tokenizer.BosId, tokenizer.EosId, tokenizer.PadId), Is.EqualTo((1, 2, 0)));
        var (before, after) = VicunaV1.Encode(tokenizer, prompt);
        Assert.That(before, Is.EqualTo(reference.Read("input_ids_before_image").data<long>().Select(i => (int)i).ToArray()));
        Assert.That(after, Is.EqualTo(reference.Read("input_ids_after_image").data<long>().Select(i => (int)i).ToArray()));
        Assert.That(tokenizer.Decode(after), Is.EqualTo("\n" + reference.Metadata["question"] + " ASSISTANT:").Or.EqualTo(" \n" + reference.Metadata["question"] + " ASSISTANT:"));
    }
}
