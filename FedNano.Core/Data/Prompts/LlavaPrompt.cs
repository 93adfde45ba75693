namespace FedNano.Data.Prompts;

/// <summary>A piece of a prompt: text, or an image whose visual tokens stand at that place.</summary>
public abstract record PromptSegment
{
    /// <summary>Text.</summary>
    public sealed record Text(string Value) : PromptSegment;
    /// <summary>An image.</summary>
    public sealed record Image(SampleImage Value) : PromptSegment;
}

/// <summary>A prompt as segments in order, and the target text the model must produce.</summary>
public sealed record Prompt(IReadOnlyList<PromptSegment> Segments, string Target);

/// <summary>
/// Prompts as LLaVA-1.5 builds them for ScienceQA: the image first, then an optional <c>Context: {hint}</c>,
/// the question, the options as <c>A. ...</c> lines, and the instruction to answer with the letter; the
/// target is the letter.
/// </summary>
public static class LlavaPrompt
{
    /// <summary>The instruction that closes a multiple-choice prompt.</summary>
    public const string MultipleChoiceInstruction = "Answer with the option's letter from the given choices directly.";

    /// <summary>Letter of option <paramref name="index"/> (A, B, ...).</summary>
    public static string Letter(int index) => ((char)('A' + index)).ToString();

    /// <summary>The prompt of <paramref name="sample"/>.</summary>
    public static Prompt Build(MultimodalSample sample)
    {
        var segments = new List<PromptSegment>();
        if (sample.Image is { } image) segments.Add(new PromptSegment.Image(image));
        var text = new System.Text.StringBuilder();
        if (!string.IsNullOrWhiteSpace(sample.Context)) text.Append("Context: ").Append(sample.Context).Append('\n');
        text.Append(sample.Question).Append('\n');
        for (int i = 0; i < sample.Choices.Count; i++)
            text.Append(Letter(i)).Append(". ").Append(sample.Choices[i]).Append('\n');
        text.Append(MultipleChoiceInstruction);
        segments.Add(new PromptSegment.Text(text.ToString()));
        return new Prompt(segments, sample.IsMultipleChoice ? Letter(sample.AnswerIndex) : sample.AnswerText ?? "");
    }
}
