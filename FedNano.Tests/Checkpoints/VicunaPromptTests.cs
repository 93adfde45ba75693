using FedNano.Checkpoints;
using FedNano.Data;
using FedNano.Edge;
using FedNano.Data.Prompts;
using FedNano.Tokenizers;
using NUnit.Framework;

namespace FedNano.Tests.Checkpoints;

public class VicunaPromptTests
{
    [Test]
    public void TemplateAndSentencePieceTokenizerGiveLlavasIds()
    {
        // reference.safetensors holds the question and the ids Python's sentencepiece + LLaVA's
        // tokenizer_image_token gave
        var reference = SafetensorsFile.Open(Path.Combine(LlavaCheckpointTests.Root, "reference.safetensors"));
        var prompt = VicunaV1.Text(reference.Metadata["question"]);
        Assert.That(prompt, Is.EqualTo(reference.Metadata["prompt"]));
        Assert.That(prompt, Does.StartWith("A chat between a curious human").And.Contain(" USER: <image>\n")
            .And.EndWith(" ASSISTANT:"));

        var tokenizer =
            LlamaSentencePieceTokenizer.Load(LlavaCheckpoint.Open(LlavaCheckpointTests.Converted).TokenizerPath!);
        Assert.That(tokenizer.VocabSize, Is.EqualTo(int.Parse(reference.Metadata["vocab_size"])));
        Assert.That((tokenizer.BosId, tokenizer.EosId, tokenizer.PadId), Is.EqualTo((1, 2, 0)));
        var (before, after) = VicunaV1.Encode(tokenizer, prompt);
        Assert.That(before,
            Is.EqualTo(reference.Read("input_ids_before_image").data<long>().Select(i => (int)i).ToArray()));
        Assert.That(after,
            Is.EqualTo(reference.Read("input_ids_after_image").data<long>().Select(i => (int)i).ToArray()));
        Assert.That(tokenizer.Decode(after),
            Is.EqualTo("\n" + reference.Metadata["question"] + " ASSISTANT:")
                .Or.EqualTo(" \n" + reference.Metadata["question"] + " ASSISTANT:"));
    }

    [Test]
    public void WrappedPromptsEncodeToLlavasIdsWithThePlaceholdersBetween()
    {
        var reference = SafetensorsFile.Open(Path.Combine(LlavaCheckpointTests.Root, "reference.safetensors"));
        var question = reference.Metadata["question"];
        var tokenizer =
            LlamaSentencePieceTokenizer.Load(LlavaCheckpoint.Open(LlavaCheckpointTests.Converted).TokenizerPath!);
        var image = new SampleImage { Pixels = new float[3 * 28 * 28], Height = 28, Width = 28 };
        // the shape LlavaPrompt.Build gives a question with an image: the image, then "\n" and the text
        var prompt = VicunaV1.Wrap(
            new Prompt([new PromptSegment.Image(image), new PromptSegment.Text("\n" + question)], "A"));
        Assert.That(prompt.ToText(), Is.EqualTo(VicunaV1.Text(question)));
        var sample = new MultimodalSample
            { Id = "q", Question = question, Image = image, Choices = ["x", "y"], AnswerIndex = 0 };
        const int imageTokens = 16;
        var encoded = EncodedSample.Encode(sample, prompt, tokenizer, imageTokens);
        var (before, after) = VicunaV1.Encode(tokenizer, VicunaV1.Text(question));
        int[] expected = [.. before, .. Enumerable.Repeat(EncodedSample.ImagePlaceholder, imageTokens), .. after];
        Assert.That(encoded.PromptIds, Is.EqualTo(expected));
        Assert.That(before,
            Is.EqualTo(reference.Read("input_ids_before_image").data<long>().Select(i => (int)i).ToArray()));
        Assert.That(encoded.Images, Is.EqualTo(new[] { image }));
        Assert.That(encoded.TargetIds, Is.EqualTo(tokenizer.Encode("A").Append(tokenizer.EosId).ToArray()));
    }

    [Test]
    public void WrapJoinsTextAroundEveryImage()
    {
        var a = new SampleImage { Path = "a.png" };
        var b = new SampleImage { Path = "b.png" };
        var p = VicunaV1.Wrap(new Prompt([new PromptSegment.Image(a), new PromptSegment.Text("\nQ\nA. "),
            new PromptSegment.Image(b), new PromptSegment.Text("\nAnswer.")], "A") { Options = ["A"] });
        Assert.That(p.Segments.Select(s => s is PromptSegment.Text t ? t.Value : "<img>"),
            Is.EqualTo(new[] { VicunaV1.System + " USER: ", "<img>", "\nQ\nA. ", "<img>", "\nAnswer. ASSISTANT:" }));
        Assert.That(p.Options, Is.EqualTo(new[] { "A" }));
    }
}
