using FedNano.Data;
using FedNano.Data.IconQa;
using FedNano.Data.Prompts;
using FedNano.Data.ScienceQa;
using NUnit.Framework;

namespace FedNano.Tests.Data;

public class PromptTests
{
    static IEnumerable<MultimodalSample> ScienceQaSamples() =>
        ScienceQaLoader.Load(DataFixtures.ScienceQa,
                new DatasetLoadOptions { MissingImages = MissingImagePolicy.Caption })
            .Splits.Values.SelectMany(x => x);

    [Test]
    public void ScienceQaPromptWithHintIsLlavasText()
    {
        var p = LlavaPrompt.Build(ScienceQaSamples().Single(s => s.Id == "53"));
        Assert.That(p.ToText(), Is.EqualTo(
            "Context: Select the best estimate.\n" +
            "How long is a guitar?\n" +
            "A. 1 centimeter\n" +
            "B. 1 meter\n" +
            "C. 1 kilometer\n" +
            "D. 1 millimeter\n" +
            "Answer with the option's letter from the given choices directly."));
        Assert.That(p.Target, Is.EqualTo("B"));
        Assert.That(p.Options, Is.EqualTo(new[] { "A", "B", "C", "D" }));
        Assert.That(p.Segments, Has.Count.EqualTo(1));
    }

    [Test]
    public void ScienceQaPromptWithCaptionInsteadOfImage()
    {
        var p = LlavaPrompt.Build(ScienceQaSamples().Single(s => s.Id == "1"));
        Assert.That(p.ToText(), Is.EqualTo(
            "Context: An aerial view of a painting of a forest.\n" +
            "Which of these states is farthest north?\n" +
            "A. West Virginia\nB. Louisiana\nC. Arizona\nD. Oklahoma\n" +
            "Answer with the option's letter from the given choices directly."));
        Assert.That(p.Target, Is.EqualTo("A"));
        Assert.That(p.ImageCount, Is.Zero);
    }

    [Test]
    public void NoContextLineWithoutHintAndImageComesFirst()
    {
        var img = SampleImage.FromPixels(new float[3 * 2 * 2], 2, 2);
        var s = new MultimodalSample
            { Id = "x", Question = "Q?", Choices = ["yes", "no"], AnswerIndex = 1, Image = img };
        var p = LlavaPrompt.Build(s);
        Assert.That(p.Segments[0], Is.EqualTo(new PromptSegment.Image(img)));
        Assert.That(p.ToText(),
            Is.EqualTo("<image>\nQ?\nA. yes\nB. no\nAnswer with the option's letter from the given choices directly."));
        Assert.That(p.Target, Is.EqualTo("B"));
    }

    [Test]
    public void ChooseImgPutsEachChoiceImageAfterItsLetter()
    {
        var s = IconQaLoader.Load(DataFixtures.IconQa).Split("test").First(x => x.Meta["task"] == "choose_img");
        var p = LlavaPrompt.Build(s);
        var expected = new List<PromptSegment> { new PromptSegment.Image(s.Image!) };
        string text = "\n" + s.Question;
        for (int i = 0; i < s.Choices.Count; i++)
        {
            expected.Add(new PromptSegment.Text(text + "\n" + (char)('A' + i) + ". "));
            expected.Add(new PromptSegment.Image(s.ChoiceImages![i]));
            text = "";
        }
        expected.Add(new PromptSegment.Text("\nAnswer with the option's letter from the given choices directly."));
        Assert.That(p.Segments, Is.EqualTo(expected));
        Assert.That(p.Target, Is.EqualTo(((char)('A' + s.AnswerIndex)).ToString()));
    }

    [Test]
    public void FillInBlankTargetsTheAnswerText()
    {
        var s = IconQaLoader.Load(DataFixtures.IconQa).Split("test")
            .First(x => x.Meta["task"] == "fill_in_blank" && x.Context is null);
        var p = LlavaPrompt.Build(s);
        Assert.That(p.ToText(),
            Is.EqualTo($"<image>\n{s.Question}\nAnswer the question using a single word or phrase."));
        Assert.That(p.Target, Is.EqualTo(s.AnswerText));
        Assert.That(p.IsMultipleChoice, Is.False);
    }

    [TestCase("B", 3, 1)]
    [TestCase("  B\n", 3, 1)]
    [TestCase("A", 2, 0)]
    [TestCase("C. 1 kilometer", 4, 2)]
    [TestCase("The answer is D.", 4, 3)]
    [TestCase("I think so. The answer is B, because", 4, 1)]
    [TestCase("The answer is C", 4, -1)]       // LLaVA's pattern needs a character after the letter
    [TestCase("The answer is A. The answer is B.", 4, -1)] // two matches: ambiguous
    [TestCase("E", 3, -1)]                     // a letter beyond the options
    [TestCase("The answer is E.", 3, -1)]
    [TestCase("b", 3, -1)]                     // lower case is not a letter option
    [TestCase("B.", 3, -1)]                    // needs ". " after the letter
    [TestCase("B)dog", 3, -1)]
    [TestCase("1 meter", 4, -1)]
    [TestCase("", 4, -1)]
    public void ParsesOptionLettersLikeLlavasScienceQaEval(string prediction, int choices, int expected) =>
        Assert.That(AnswerParser.ParseOptionIndex(prediction, choices), Is.EqualTo(expected));

    [TestCase("7", "7", true)]
    [TestCase(" 7. ", "7", true)]
    [TestCase("1,000", "1000", true)]
    [TestCase("12.0", "12", true)]
    [TestCase("Ten", "ten", true)]
    [TestCase("half  past   six", "half past six", true)]
    [TestCase("seven", "7", false)]
    [TestCase("17", "7", false)]
    [TestCase("7 cubes", "7", false)]
    public void FreeAnswersMatchAfterNormalising(string prediction, string answer, bool expected) =>
        Assert.That(AnswerParser.FreeAnswerMatches(prediction, answer), Is.EqualTo(expected));
}
