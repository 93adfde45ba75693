using FedNano.Checkpoints;
using FedNano.Data;
using FedNano.Data.IconQa;
using FedNano.Data.Prompts;
using FedNano.Data.ScienceQa;
using FedNano.Edge;
using FedNano.Tests.Checkpoints;
using FedNano.Tokenizers;
using NUnit.Framework;

namespace FedNano.Tests.Data;

public class MiniGpt4PromptTests
{
    private const string McInstruction = "Answer with the option's letter from the given choices directly.";

    private static IEnumerable<MultimodalSample> ScienceQaSamples() => ScienceQaLoader
        .Load(DataFixtures.ScienceQa, new DatasetLoadOptions { MissingImages = MissingImagePolicy.Caption })
        .Splits.Values.SelectMany(x => x);

    private static string Texts(Prompt p) =>
        string.Join("|", p.Segments.Select(s => s is PromptSegment.Text t ? t.Value : "<img>"));

    [Test]
    public void TextIsMiniGpt4sTemplate()
    {
        Assert.That(MiniGpt4Prompt.Text("What is it?"),
            Is.EqualTo("###Human: <Img><ImageHere></Img> What is it? ###Assistant:"));
        Assert.That(MiniGpt4Prompt.Text("What is it?", withImage: false),
            Is.EqualTo("###Human: What is it? ###Assistant:"));
    }

    [Test]
    public void ScienceQaQuestionWithImageIsTheTemplateAroundLlavasQuestionText()
    {
        // the fixture holds no image files: give a question with a hint one
        var sample = ScienceQaSamples().First(s => !string.IsNullOrEmpty(s.Context))
            with { Image = SampleImage.FromPixels(new float[12], 2, 2) };
        var llava = LlavaPrompt.Build(sample);
        var p = MiniGpt4Prompt.Wrap(llava);
        // LLaVA's text after "<image>\n" is the question part of MiniGPT-4's template
        string question = llava.ToText()["<image>\n".Length..];
        Assert.Multiple(() =>
        {
            Assert.That(p.ToText(MiniGpt4Prompt.ImagePlaceholder), Is.EqualTo(MiniGpt4Prompt.Text(question)));
            Assert.That(question, Does.StartWith("Context: ").And.EndWith(McInstruction));
            Assert.That(p.Segments, Has.Count.EqualTo(3));
            Assert.That(p.Segments[1], Is.EqualTo(new PromptSegment.Image(sample.Image!)));
            Assert.That((p.Target, p.Options), Is.EqualTo((llava.Target, llava.Options)));
        });
    }

    [Test]
    public void ScienceQaQuestionWithoutImageHasNoImageTags()
    {
        var sample = ScienceQaSamples().First(s => s.Image is null);
        var llava = LlavaPrompt.Build(sample);
        var p = MiniGpt4Prompt.Wrap(llava);
        Assert.That(p.ToText(), Is.EqualTo(MiniGpt4Prompt.Text(llava.ToText(), withImage: false)));
        Assert.That(p.Segments, Has.Count.EqualTo(1));
    }

    [Test]
    public void IconQaChoiceImagesAreEachWrappedInImgTags()
    {
        var s = IconQaLoader.Load(DataFixtures.IconQa).Split("test").First(x => x.Meta["task"] == "choose_img");
        var p = MiniGpt4Prompt.Wrap(LlavaPrompt.Build(s));
        Assert.That(p.ImageCount, Is.EqualTo(1 + s.Choices.Count));
        var expected = "###Human: <Img>|<img>|</Img> " + s.Question + "\nA. <Img>|<img>|</Img>\nB. <Img>|<img>|</Img>";
        for (int i = 2; i < s.Choices.Count; i++) expected += $"\n{LlavaPrompt.Letter(i)}. <Img>|<img>|</Img>";
        Assert.That(Texts(p), Is.EqualTo(expected + "\n" + McInstruction + " ###Assistant:"));
    }

    [Test]
    public void IconQaFillInTheBlankTargetsTheAnswerText()
    {
        var s = IconQaLoader.Load(DataFixtures.IconQa).Split("test").First(x => x.Meta["task"] == "fill_in_blank");
        var p = MiniGpt4Prompt.Wrap(LlavaPrompt.Build(s));
        Assert.That(p.ToText(MiniGpt4Prompt.ImagePlaceholder),
            Is.EqualTo(MiniGpt4Prompt.Text(s.Question + "\n" + LlavaPrompt.ShortAnswerInstruction)));
        Assert.That(p.Target, Is.EqualTo(s.AnswerText));
        Assert.That(p.IsMultipleChoice, Is.False);
    }

    [Test]
    public void EncodedSampleIsBosBeforeQueryTokensAfterAsPromptWrapTokenizesIt()
    {
        // LLaMA's SentencePiece tokenizer of the LLaVA fixture stands in for Vicuna's
        var tokenizer =
            LlamaSentencePieceTokenizer.Load(Path.Combine(LlavaCheckpointTests.Converted, "tokenizer.model"));
        var image = SampleImage.FromPixels(new float[3 * 2 * 2], 2, 2);
        var sample = new MultimodalSample
        {
            Id = "q", Question = "Which is north?", Choices = ["Ohio", "Texas"], AnswerIndex = 0, Image = image,
        };
        var prompt = MiniGpt4Prompt.Wrap(LlavaPrompt.Build(sample));
        const int queries = 32;
        var encoded = EncodedSample.Encode(sample, prompt, tokenizer, queries);
        var (before, after) = MiniGpt4Prompt.Encode(tokenizer, prompt.ToText(MiniGpt4Prompt.ImagePlaceholder));
        Assert.Multiple(() =>
        {
            int[] expected = [.. before, .. Enumerable.Repeat(EncodedSample.ImagePlaceholder, queries), .. after];
            Assert.That(encoded.PromptIds, Is.EqualTo(expected));
            Assert.That(before, Is.EqualTo(new[] { tokenizer.BosId }.Concat(tokenizer.Encode("###Human: <Img>"))));
            Assert.That(tokenizer.Decode(after).TrimStart(),
                Does.StartWith("</Img> Which is north?\nA. Ohio\nB. Texas\n").And.EndWith(" ###Assistant:"));
            Assert.That(encoded.TargetIds, Is.EqualTo(tokenizer.Encode("A").Append(tokenizer.EosId).ToArray()));
        });
        Assert.Throws<ArgumentException>(() => MiniGpt4Prompt.Encode(tokenizer, "no image"));
    }
}
