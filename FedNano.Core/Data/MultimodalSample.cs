namespace FedNano.Data;

/// <summary>
/// One visual question: what every data set (synthetic, ScienceQA, IconQA) is read into and what
/// prompts, partitions, training and scoring work on.
/// </summary>
public sealed record MultimodalSample
{
    /// <summary>Identifier in its data set (problem id, question id).</summary>
    public required string Id { get; init; }
    /// <summary>The question text.</summary>
    public required string Question { get; init; }
    /// <summary>Option texts, in order; empty for a free-form answer.</summary>
    public IReadOnlyList<string> Choices { get; init; } = [];
    /// <summary>One image per option where the options are images (IconQA choose_img), else null.</summary>
    public IReadOnlyList<SampleImage>? ChoiceImages { get; init; }
    /// <summary>Index of the correct option; -1 for a free-form answer.</summary>
    public int AnswerIndex { get; init; } = -1;
    /// <summary>The correct free-form answer (IconQA fill_in_blank), else null.</summary>
    public string? AnswerText { get; init; }
    /// <summary>
    /// Extra context shown before the question (ScienceQA hint, or a caption); null or empty for none.
    /// </summary>
    public string? Context { get; init; }
    /// <summary>The question's image, if any.</summary>
    public SampleImage? Image { get; init; }
    /// <summary>
    /// Metadata used for partitioning and per-category metrics, e.g. <c>category</c>, <c>grade</c>,
    /// <c>subject</c>, <c>task</c>, <c>skill</c>, <c>split</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Meta { get; init; } = new Dictionary<string, string>();

    /// <summary>True for a multiple-choice question.</summary>
    public bool IsMultipleChoice => Choices.Count > 0;

    /// <summary>
    /// The metadata value of <paramref name="key"/>, or a <see cref="ConfigException"/> naming the sample.
    /// </summary>
    public string MetaValue(string key) =>
        Meta.TryGetValue(key, out var v)
            ? v
            : throw new ConfigException($"sample {Id} has no '{key}' field (known: {string.Join(", ", Meta.Keys)})");
}

/// <summary>
/// An image of a sample: pixels already at hand (the synthetic benchmark draws them) or a file that is
/// decoded when needed. Pixels are channel-major (C, H, W) in [0, 1].
/// </summary>
public sealed record SampleImage
{
    /// <summary>Path of the image file, or null for in-memory pixels.</summary>
    public string? Path { get; init; }
    /// <summary>In-memory pixels, channel-major, in [0, 1]; null when <see cref="Path"/> is set.</summary>
    public float[]? Pixels { get; init; }
    /// <summary>Height of <see cref="Pixels"/>.</summary>
    public int Height { get; init; }
    /// <summary>Width of <see cref="Pixels"/>.</summary>
    public int Width { get; init; }

    /// <summary>An image file on disk.</summary>
    public static SampleImage FromFile(string path) => new() { Path = path };

    /// <summary>In-memory RGB pixels, channel-major, in [0, 1].</summary>
    public static SampleImage FromPixels(float[] chw, int height, int width)
    {
        if (chw.Length != 3 * height * width)
            throw new ArgumentException(
                $"expected {3 * height * width} values for 3x{height}x{width}, got {chw.Length}");
        return new() { Pixels = chw, Height = height, Width = width };
    }
}
