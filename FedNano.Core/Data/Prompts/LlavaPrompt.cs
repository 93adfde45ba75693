using System.Text;

namespace FedNano.Data.Prompts;

/// <summary>What a <see cref="PromptSegment"/> holds.</summary>
public enum PromptSegmentKind
{
    /// <summary>A piece of text, to be tokenized.</summary>
    Text,
    /// <summary>An image, to be encoded into visual tokens at this position.</summary>
    Image,
}

/// <summary>A piece of a prompt: text or an image, in sequence order.</summary>
public sealed record PromptSegment
{
    /// <summary>Text or image.</summary>
    public required PromptSegmentKind Kind { get; init; }
    /// <summary>The text of a <see cref="PromptSegmentKind.Text"/> segment; empty for an image.</summary>
    public string Text { get; init; } = "";
    /// <summary>The image of a <see cref="PromptSegmentKind.Image"/> segment; null for text.</summary>
    public SampleImage? Image { get; init; }

    /// <summary>A text segment.</summary>
    public static PromptSegment OfText(string text) => new() { Kind = PromptSegmentKind.Text, Text = text };
    /// <summary>An image segment.</summary>
    public static PromptSegment OfImage(SampleImage image) => new() { Kind = PromptSegmentKind.Image, Image = image };
}

/// <summary>
/// A prompt as a model consumes it: text pieces and images in order (tokenize the texts, encode each image into
/// visual tokens where it stands), the expected answer, and for multiple choice the option letters a
/// likelihood scorer compares.
/// </summary>
/// <param name="Segments">Text and image segments, in order.</param>
/// <param name="Target">The expected answer text: the option letter (<c>A</c>, <c>B</c>, ...) or the free answer.</param>
/// <param name="Options">The option letters of a multiple-choice prompt (<c>A</c>..), empty for a free answer.</param>
public sealed record Prompt(IReadOnlyList<PromptSegment> Segments, string Target, IReadOnlyList<string> Options)
{
    /// <summary>True when the answer is one of <see cref="Options"/>.</summary>
    public bool IsMultipleChoice => Options.Count > 0;

    /// <summary>Number of image segments.</summary>
    public int ImageCount => Segments.Count(s => s.Kind == PromptSegmentKind.Image);

    /// <summary>The prompt as one string with <paramref name="imageToken"/> where each image goes (as LLaVA writes it).</summary>
    public string ToText(string imageToken = "<image>")
    {
        var sb = new StringBuilder();
        foreach (var s in Segments) sb.Append(s.Kind == PromptSegmentKind.Image ? imageToken : s.Text);
        return sb.ToString();
    }
}

/// <summary>
/// Builds prompts the way LLaVA-1.5 evaluates ScienceQA (<c>llava_test_CQM-A.json</c> with
/// <c>--single-pred-prompt</c>): the question's image first (LLaVA's <c>&lt;image&gt;\n</c>), an optional
/// <c>Context: {hint}</c> line, the question, the options as <c>A. ...</c> lines, then
/// <c>Answer with the option's letter from the given choices directly.</c>; the target is the letter. IconQA
/// <c>choose_img</c> puts each choice image right after its letter; free answers (IconQA <c>fill_in_blank</c>) end
/// with LLaVA-1.5's short-answer instruction and target the answer text. The conversation template (system line,
/// <c>USER:</c>/<c>ASSISTANT:</c>) is the model's business and is not added here.
/// </summary>
public static class LlavaPrompt
{
    /// <summary>LLaVA-1.5's instruction for multiple choice.</summary>
    public const string MultipleChoiceInstruction = "Answer with the option's letter from the given choices directly.";
    /// <summary>LLaVA-1.5's instruction for a short free answer.</summary>
    public const string ShortAnswerInstruction = "Answer the question using a single word or phrase.";

    /// <summary>The option letter of index <paramref name="i"/> (0 -> A).</summary>
    public static string Letter(int i) => ((char)('A' + i)).ToString();

    /// <summary>Builds the prompt and target of <paramref name="sample"/>.</summary>
    public static Prompt Build(MultimodalSample sample)
    {
        var segs = new List<PromptSegment>();
        var text = new StringBuilder();
        void Flush() { if (text.Length > 0) { segs.Add(PromptSegment.OfText(text.ToString())); text.Clear(); } }

        if (sample.Image is not null) { segs.Add(PromptSegment.OfImage(sample.Image)); text.Append('\n'); }
        if (!string.IsNullOrEmpty(sample.Context)) text.Append("Context: ").Append(sample.Context).Append('\n');
        text.Append(sample.Question);
        if (!sample.IsMultipleChoice)
        {
            text.Append('\n').Append(ShortAnswerInstruction);
            Flush();
            return new Prompt(segs, sample.AnswerText ?? throw new ConfigException($"sample {sample.Id} has neither choices nor an answer text"), []);
        }
        if (sample.ChoiceImages is { } imgs && imgs.Count != sample.Choices.Count)
            throw new ConfigException($"sample {sample.Id}: {imgs.Count} choice images for {sample.Choices.Count} choices");
        if (sample.AnswerIndex < 0 || sample.AnswerIndex >= sample.Choices.Count)
            throw new ConfigException($"sample {sample.Id}: answer index {sample.AnswerIndex} is out of range for its {sample.Choices.Count} choices");
        var letters = new List<string>();
        for (int i = 0; i < sample.Choices.Count; i++)
        {
            letters.Add(Letter(i));
            text.Append('\n').Append(Letter(i)).Append(". ");
            if (sample.ChoiceImages is { } ci) { Flush(); segs.Add(PromptSegment.OfImage(ci[i])); }
            else text.Append(sample.Choices[i]);
        }
        text.Append('\n').Append(MultipleChoiceInstruction);
        Flush();
        return new Prompt(segs, letters[sample.AnswerIndex], letters);
    }
}
