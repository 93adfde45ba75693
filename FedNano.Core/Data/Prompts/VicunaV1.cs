using FedNano.Tokenizers;

namespace FedNano.Data.Prompts;

/// <summary>
/// LLaVA-1.5's <c>vicuna_v1</c> conversation template (used for its ScienceQA evaluation) for one user turn with
/// the image first, and LLaVA's <c>tokenizer_image_token</c>: the prompt is tokenized in pieces around
/// <c>&lt;image&gt;</c>, BOS only at the very start; the visual tokens go between the pieces.
/// </summary>
public static class VicunaV1
{
    /// <summary>The system line.</summary>
    public const string System = "A chat between a curious human and an artificial intelligence assistant. " +
                                 "The assistant gives helpful, detailed, and polite answers to the human's questions.";
    /// <summary>The placeholder where the image's visual tokens go.</summary>
    public const string ImagePlaceholder = "<image>";

    /// <summary>
    /// The prompt text: <c>{System} USER: &lt;image&gt;\n{user} ASSISTANT:</c> (without the image when
    /// <paramref name="withImage"/> is false).
    /// </summary>
    public static string Text(string user, bool withImage = true) =>
        $"{System} USER: {(withImage ? ImagePlaceholder + "\n" : "")}{user} ASSISTANT:";

    /// <summary>
    /// A data set's prompt (<see cref="LlavaPrompt.Build"/>) in the conversation: <c>{System} USER: </c>, its
    /// segments, <c> ASSISTANT:</c>, adjacent texts joined so each text between images is tokenized in one piece as
    /// <see cref="Encode"/> does. For a prompt starting with its image this is exactly <see cref="Text"/> of the user
    /// text.
    /// </summary>
    public static Prompt Wrap(Prompt prompt)
    {
        var segments = new List<PromptSegment>();
        foreach (var s in prompt.Segments.Prepend(new PromptSegment.Text($"{System} USER: "))
                     .Append(new PromptSegment.Text(" ASSISTANT:")))
            if (s is PromptSegment.Text t && segments.Count > 0 && segments[^1] is PromptSegment.Text last)
                segments[^1] = new PromptSegment.Text(last.Value + t.Value);
            else
                segments.Add(s);
        return prompt with { Segments = segments };
    }

    /// <summary>
    /// Token ids before and after the image: <c>[BOS] + tok(before)</c> and <c>tok(after)</c>, each piece encoded on
    /// its own as LLaVA does (so the text after the image starts with the tokenizer's dummy-prefix space).
    /// </summary>
    public static (IReadOnlyList<int> BeforeImage, IReadOnlyList<int> AfterImage) Encode(
        ITextTokenizer tokenizer, string prompt)
    {
        var parts = prompt.Split(ImagePlaceholder);
        if (parts.Length != 2)
            throw new ArgumentException($"the prompt must hold exactly one {ImagePlaceholder}", nameof(prompt));
        return ([tokenizer.BosId, .. tokenizer.Encode(parts[0])], tokenizer.Encode(parts[1]));
    }
}
