using FedNano.Data;

namespace FedNano.Evaluation;

/// <summary>One scored prediction: the sample, what the model answered, and whether it was right.</summary>
/// <param name="Sample">The question.</param>
/// <param name="PredictedIndex">The option index predicted (-1 when unparsable or for a free answer).</param>
/// <param name="PredictedText">The generated text, if any (the free answer, or the raw multiple-choice output).</param>
/// <param name="Correct">Whether the prediction is right.</param>
public sealed record PredictionRecord(MultimodalSample Sample, int PredictedIndex, string? PredictedText, bool Correct)
{
    /// <summary>Scores a multiple-choice prediction by index.</summary>
    public static PredictionRecord ForChoice(MultimodalSample sample, int predictedIndex, string? text = null) =>
        new(sample, predictedIndex, text, predictedIndex >= 0 && predictedIndex == sample.AnswerIndex);

    /// <summary>
    /// Scores a multiple-choice prediction made by option likelihood: the option whose letter the model finds most
    /// likely after the prompt (highest of <paramref name="optionScores"/>, one per option; ties go to the first).
    /// </summary>
    public static PredictionRecord FromOptionScores(MultimodalSample sample, IReadOnlyList<float> optionScores)
    {
        if (optionScores.Count != sample.Choices.Count)
            throw new ArgumentException(
                $"sample {sample.Id}: {optionScores.Count} scores for {sample.Choices.Count} options");
        int best = 0;
        for (int i = 1; i < optionScores.Count; i++) if (optionScores[i] > optionScores[best]) best = i;
        return ForChoice(sample, best, Data.Prompts.LlavaPrompt.Letter(best));
    }

    /// <summary>
    /// Scores generated text: option letter parsing for multiple choice, normalised exact match for free answers.
    /// </summary>
    public static PredictionRecord FromGeneration(MultimodalSample sample, string generated)
    {
        if (sample.IsMultipleChoice)
            return ForChoice(
                sample, Data.Prompts.AnswerParser.ParseOptionIndex(generated, sample.Choices.Count), generated);
        bool ok = sample.AnswerText is { } a && Data.Prompts.AnswerParser.FreeAnswerMatches(generated, a);
        return new(sample, -1, generated, ok);
    }
}

/// <summary>Accuracy of one group of predictions.</summary>
/// <param name="Group">
/// The breakdown the row belongs to (e.g. <c>subject</c>, <c>context</c>, <c>grade</c>, <c>task</c>, <c>skill</c>,
/// <c>all</c>).
/// </param>
/// <param name="Category">The category (e.g. <c>NAT</c>, <c>G1-6</c>, <c>choose_img</c>, <c>Avg</c>).</param>
/// <param name="Count">Predictions in the category.</param>
/// <param name="Correct">Correct predictions among them.</param>
public sealed record CategoryAccuracy(string Group, string Category, int Count, int Correct)
{
    /// <summary>Accuracy in percent; NaN for an empty category (ScienceQA's script would divide by zero).</summary>
    public double Accuracy => Count == 0 ? double.NaN : 100.0 * Correct / Count;
}
