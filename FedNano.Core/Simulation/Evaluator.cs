using FedNano.Edge;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>A prediction on one test sample.</summary>
/// <param name="Sample">The sample.</param>
/// <param name="Predicted">Index of the chosen option (multiple choice), else -1.</param>
/// <param name="PredictedText">The generated answer (free-form), else null.</param>
/// <param name="Correct">Whether it is right.</param>
/// <param name="Loss">Negative log-likelihood of the correct answer's first token.</param>
public sealed record Prediction(Data.MultimodalSample Sample, int Predicted, string? PredictedText, bool Correct, double Loss);

/// <summary>
/// Scores the current adapters on test samples through the split. Multiple choice: the option whose letter
/// the LLM finds most likely as the next token (likelihood scoring over the offered letters, as LLaVA's
/// ScienceQA evaluation reads a single letter); free-form: greedy generation up to a few tokens,
/// exact match after <see cref="Data.Prompts.AnswerParser.NormalizeFreeAnswer"/>.
/// </summary>
internal sealed class Evaluator(NanoEdge edge, SplitServer server, Tokenizers.ITextTokenizer tokenizer, int batchSize = 64, int maxNewTokens = 8)
{
    /// <summary>
    /// Bytes that crossed the split since creation: the input-embedding sequences up, and back the scores of the
    /// offered letters (multiple choice) or the generated token ids (free-form, 4 bytes each).
    /// </summary>
    public long SplitBytes { get; private set; }

    /// <summary>
    /// Predictions of the edge's current adapters, or of a client's own model: <paramref name="client"/> gives, for a
    /// batch, the input-embedding sequence and the delta inside the LLM (FedDPA-F's LoRA), instead of the NanoEdge.
    /// </summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<EncodedSample> samples, Func<EncodedBatch, (Tensor sequence, Models.ILinearDelta? delta)>? client = null)
    {
        client ??= b => (edge.Forward(b), null);
        using var _ = no_grad();
        var result = new List<Prediction>(samples.Count);
        var mc = samples.Where(s => s.ChoiceIds.Length > 0).ToArray();
        for (int i = 0; i < mc.Length; i += batchSize)
        {
            using var scope = NewDisposeScope();
            using var batch = EncodedBatch.Create(mc[i..Math.Min(i + batchSize, mc.Length)], false, tokenizer.PadId, edge.Device);
            var (sequence, delta) = client(batch);
            SplitBytes += sequence.numel() * sequence.ElementSize + batch.Samples.Sum(x => x.ChoiceIds.Length) * sizeof(float);
            var logProbs = server.NextTokenLogProbs(sequence, batch.AnswerPositions, delta).cpu();
            for (int b = 0; b < batch.Count; b++)
            {
                var s = batch.Samples[b];
                var scores = s.ChoiceIds.Select(id => logProbs[b, id].item<float>()).ToArray();
                int best = Array.IndexOf(scores, scores.Max());
                result.Add(new Prediction(s.Sample, best, null, best == s.Sample.AnswerIndex, -logProbs[b, s.TargetIds[0]].item<float>()));
            }
        }
        foreach (var s in samples.Where(s => s.ChoiceIds.Length == 0)) result.Add(Generate(s, client));
        return result;
    }

    private Prediction Generate(EncodedSample s, Func<EncodedBatch, (Tensor sequence, Models.ILinearDelta? delta)> client)
    {
        var produced = new List<int>();
        double loss = double.NaN;
        for (int step = 0; step < maxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            var prompt = s with { PromptIds = s.PromptIds.Concat(produced).ToArray() };
            using var batch = EncodedBatch.Create([prompt], false, tokenizer.PadId, edge.Device);
            var (sequence, delta) = client(batch);
            SplitBytes += sequence.numel() * sequence.ElementSize + sizeof(int);
            var logProbs = server.NextTokenLogProbs(sequence, batch.AnswerPositions, delta)[0];
            if (step == 0) loss = -logProbs[s.TargetIds[0]].item<float>();
            int next = (int)logProbs.argmax().item<long>();
            if (next == tokenizer.EosId) break;
            produced.Add(next);
        }
        string text = tokenizer.Decode(produced).Trim();
        bool correct = s.Sample.AnswerText is { } answer && Data.Prompts.AnswerParser.FreeAnswerMatches(text, answer);
        return new Prediction(s.Sample, -1, text, correct, loss);
    }
}
