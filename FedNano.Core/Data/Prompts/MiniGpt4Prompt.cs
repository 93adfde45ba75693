using FedNano.Tokenizers;

namespace FedNano.Data.Prompts;

/// <summary>
/// MiniGPT-4's conversation template for one question (its stage-2 <c>prompt_template</c>
/// <c>###Human: {} ###Assistant:</c> with <c>&lt;Img&gt;&lt;ImageHere&gt;&lt;/Img&gt;</c> for the image) and its
/// <c>prompt_wrap</c>: the text before and after the image are tokenized each on its own without special tokens,
/// BOS goes first, the image's query tokens between the pieces.
/// </summary>
public static class MiniGpt4Prompt
{
    /// <summary>The placeholder where an image's visual tokens go.</summary>
    public const string ImagePlaceholder = "<ImageHere>";
    /// <summary>Opens the user turn.</summary>
    public const string Human = "###Human: ";
    /// <summary>Closes the user turn and opens the answer.</summary>
    public const string Assistant = " ###Assistant:";

    /// <summary>
    /// The prompt text: <c>###Human: &lt;Img&gt;&lt;ImageHere&gt;&lt;/Img&gt; {question} ###Assistant:</c> (without
    /// the image when <paramref name="withImage"/> is false).
    /// </summary>
    public static string Text(string question, bool withImage = true) =>
        $"{Human}{(withImage ? $"<Img>{ImagePlaceholder}</Img> " : "")}{question}{Assistant}";

    /// <summary>
    /// A data set's prompt (<see cref="LlavaPrompt.Build"/>) in MiniGPT-4's conversation: every image between
    /// <c>&lt;Img&gt;</c> and <c>&lt;/Img&gt;</c>, the line break after the leading question image a space (as in
    /// <see cref="Text"/>), adjacent texts joined so each text between images is tokenized in one piece. For a prompt
    /// starting with its image this is exactly <see cref="Text"/> of the question text.
    /// </summary>
    public static Prompt Wrap(Prompt prompt)
    {
        var segments = new List<PromptSegment>();
        void Add(string text)
        {
            if (segments.Count > 0 && segments[^1] is PromptSegment.Text last)
                segments[^1] = new PromptSegment.Text(last.Value + text);
            else
                segments.Add(new PromptSegment.Text(text));
        }
        Add(Human);
        for (int i = 0; i < prompt.Segments.Count; i++)
            switch (prompt.Segments[i])
            {
                case PromptSegment.Image image:
                    Add("<Img>");
                    segments.Add(image);
                    Add("</Img>");
                    break;
                case PromptSegment.Text t:
                    bool afterQuestionImage = i == 1 && prompt.Segments[0] is PromptSegment.Image;
                    Add(afterQuestionImage && t.Value.StartsWith('\n') ? " " + t.Value[1..] : t.Value);
                    break;
            }
        Add(Assistant);
        return prompt with { Segments = segments };
    }

    /// <summary>
    /// Token ids before and after the image: <c>[BOS] + tok(before)</c> and <c>tok(after)</c>, as MiniGPT-4's
    /// <c>prompt_wrap</c>.
    /// </summary>
    public static (IReadOnlyList<int> BeforeImage, IReadOnlyList<int> AfterImage) Encode(ITextTokenizer tokenizer,
                                                                                          string prompt)
    {
        var parts = prompt.Split(ImagePlaceholder);
        if (parts.Length != 2)
            throw new ArgumentException($"the prompt must hold exactly one {ImagePlaceholder}", nameof(prompt));
        return ([tokenizer.BosId, .. tokenizer.Encode(parts[0])], tokenizer.Encode(parts[1]));
    }
}
