using System.Text;

namespace FedNano.Data.Prompts;

/// <summary>A piece of a prompt: text, or an image whose visual tokens stand at that place.</summary>
public abstract record PromptSegment
{
    /// <summary>Text, to be tokenized.</summary>
    public sealed record Text(string Value) : PromptSegment;
    /// <summary>An image, to be encoded into visual tokens at this place.</summary>
    public sealed record Image(SampleImage Value) : PromptSegment;
}

/// <summary>
/// A prompt as a model consumes it: text pieces and images in order (tokenize the texts, encode each image into
/// visual tokens where it stands), the expected answer, and for multiple choice the option letters a
/// likelihood scorer compares.
/// </summary>
/// <param name="Segments">Text and image segments, in order.</param>
/// <param name="Target">
/// The expected answer text: the option letter (<c>A</c>, <c>B</c>, ...) or the free answer.
/// </param>
public sealed record Prompt(IReadOnlyList<PromptSegment> Segments, string Target)
{
    /// <summary>
    /// The option letters of a multiple-choice prompt (<c>A</c>, <c>B</c>, ...), empty for a free answer.
    /// </summary>
    public IReadOnlyList<string> Options { get; init; } = [];

    /// <summary>True when the answer is one of <see cref="Options"/>.</summary>
    public bool IsMultipleChoice => Options.Count > 0;

    /// <summary>Number of image segments.</summary>
    public int ImageCount => Segments.Count(s => s is PromptSegment.Image);

    /// <summary>
    /// The prompt as one string with <paramref name="imageToken"/> where each image goes (as LLaVA writes it).
    /// </summary>
    public string ToText(string imageToken = "<image>")
    {
        var sb = new StringBuilder();
        foreach (var s in Segments) sb.Append(s is PromptSegment.Text t ? t.Value : imageToken);
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
        void Flush() { if (text.Length > 0) { segs.Add(new PromptSegment.Text(text.ToString())); text.Clear(); } }

        if (sample.Image is not null) { segs.Add(new PromptSegment.Image(sample.Image)); text.Append('\n'); }
        if (!string.IsNullOrEmpty(sample.Context)) text.Append("Context: ").Append(sample.Context).Append('\n');
        text.Append(sample.Question);
        if (!sample.IsMultipleChoice)
        {
            text.Append('\n').Append(ShortAnswerInstruction);
            Flush();
            return new Prompt(segs, sample.AnswerText
                ?? throw new ConfigException($"sample {sample.Id} has neither choices nor an answer text"));
        }
        if (sample.ChoiceImages is { } imgs && imgs.Count != sample.Choices.Count)
            throw new ConfigException(
                $"sample {sample.Id}: {imgs.Count} choice images for {sample.Choices.Count} choices");
        if (sample.AnswerIndex < 0 || sample.AnswerIndex >= sample.Choices.Count)
            throw new ConfigException($"sample {sample.Id}: answer index {sample.AnswerIndex} is out of range " +
                                      $"for its {sample.Choices.Count} choices");
        var letters = new List<string>();
        for (int i = 0; i < sample.Choices.Count; i++)
        {
            letters.Add(Letter(i));
            text.Append('\n').Append(Letter(i)).Append(". ");
            if (sample.ChoiceImages is { } ci) { Flush(); segs.Add(new PromptSegment.Image(ci[i])); }
            else text.Append(sample.Choices[i]);
        }
        text.Append('\n').Append(MultipleChoiceInstruction);
        Flush();
        return new Prompt(segs, letters[sample.AnswerIndex]) { Options = letters };
    }
}
