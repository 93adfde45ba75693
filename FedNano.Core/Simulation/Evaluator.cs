using FedNano.Edge;
using FedNano.Models;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>A prediction on one test sample.</summary>
/// <param name="Sample">The sample.</param>
/// <param name="Predicted">Index of the chosen option (multiple choice), else -1.</param>
/// <param name="PredictedText">The generated answer (free-form), else null.</param>
/// <param name="Correct">Whether it is right.</param>
/// <param name="Loss">Negative log-likelihood of the correct answer's first token.</param>
public sealed record Prediction(
    Data.MultimodalSample Sample, int Predicted, string? PredictedText, bool Correct, double Loss);

/// <summary>
/// How a client with a model of its own is evaluated (<see cref="Strategies.IClientAlgorithm.Evaluation"/>): how it
/// turns its test batches into what goes to the LLM: the input-embedding sequence of a batch, the embedding of
/// generated token ids [B, T], and optionally a correction inside the LLM for a batch given its sequence (FedDPA-F's
/// LoRA mixture). A client algorithm of your own gets one from <see cref="FederatedSimulation.EvaluationClient"/>.
/// </summary>
public sealed class EvalClient
{
    internal EvalClient(Func<EncodedBatch, Tensor> sequence, Func<Tensor, Tensor> embedTokens,
        Func<EncodedBatch, Tensor, ILinearDelta?>? delta = null) =>
        (Sequence, EmbedTokens, Delta) = (sequence, embedTokens, delta);

    /// <summary>
    /// A client whose <paramref name="transform"/> maps the frozen input sequence [B, T, d] and its image mask [B, T]
    /// to what it sends: applied to every test batch and to the embeddings of generated tokens (mask all false).
    /// </summary>
    internal static EvalClient Transforming(NanoEdge edge, Func<Tensor, Tensor, Tensor> transform) => new(
        batch =>
        {
            using var raw = edge.RawSequence(batch);
            return transform(raw, batch.IsImage);
        },
        ids =>
        {
            using var embedded = edge.Embed(ids);
            return transform(embedded, zeros(ids.shape, ScalarType.Bool, ids.device));
        });

    internal Func<EncodedBatch, Tensor> Sequence { get; }
    internal Func<Tensor, Tensor> EmbedTokens { get; }
    internal Func<EncodedBatch, Tensor, ILinearDelta?>? Delta { get; }
}

/// <summary>
/// Scores the current adapters on test samples through the split. Multiple choice: the option whose letter
/// the LLM finds most likely as the next token (likelihood scoring over the offered letters, as LLaVA's
/// ScienceQA evaluation reads a single letter); free-form: batched greedy generation with a key/value cache up to
/// <paramref name="maxNewTokens"/> tokens, exact match after
/// <see cref="Data.Prompts.AnswerParser.NormalizeFreeAnswer"/>.
/// Batches are sized by tokens: a batch's samples times its longest sequence (every image's visual tokens counted)
/// stays within <paramref name="batchTokens"/>; a longer sample runs alone. What crosses the split counts in
/// <see cref="Traffic"/>: the sequences up (for free-form answers the prompt once, then each generated token's
/// embedding), and back the scores of the offered letters (multiple choice) or the generated token ids.
/// </summary>
internal sealed class Evaluator(NanoEdge edge, SplitServer server, Tokenizers.ITextTokenizer tokenizer,
    int batchTokens = Evaluator.DefaultBatchTokens, int maxNewTokens = 8, SplitTraffic? traffic = null)
{
    /// <summary>Default token budget of an evaluation batch.</summary>
    public const int DefaultBatchTokens = 8192;

    /// <summary>What each client moved across the split.</summary>
    public SplitTraffic Traffic { get; } = traffic ?? new();

    /// <summary>
    /// Predictions of the edge's current adapters, or of <paramref name="client"/>'s own model; traffic counts to
    /// client <paramref name="index"/>.
    /// </summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<EncodedSample> samples, EvalClient? client = null,
        int index = 0)
    {
        client ??= new EvalClient(edge.Forward, edge.forward);
        return PredictClients([index], [samples], (_, _) => client)[0];
    }

    /// <summary>Batches of the free-form samples of <paramref name="samples"/>, room left for the answer.</summary>
    private IEnumerable<EncodedSample[]> FreeBatches(IEnumerable<EncodedSample> samples) =>
        Batches(samples.Where(s => s.ChoiceIds.Length == 0), s => s.PromptIds.Length + maxNewTokens, batchTokens);

    /// <summary>
    /// The messages of generating <paramref name="produced"/>[b] tokens for each sample of a batch: the prompts up
    /// (padded to the longest), then at each step a token id down per sample still going and, unless it was the
    /// last step, its embedding up. Each sample's steps depend on it alone.
    /// </summary>
    private long Generation(EncodedSample[] group, int[] produced, long tokenBytes) =>
        group.Length * group.Max(s => s.PromptIds.Length) * tokenBytes + produced.Sum(p =>
            SplitTraffic.TokenIds(Math.Min(p + 1, maxNewTokens)) + Math.Min(p, maxNewTokens - 1) * tokenBytes);

    /// <summary>
    /// The predictions of several clients, each on its own samples, batched across clients: a batch mixing clients'
    /// samples goes to the LLM as <paramref name="mixed"/> makes it for the clients present (their indices from
    /// <paramref name="indices"/>) and each sample's row among them (a [B] tensor), e.g. adapters stacked per sample
    /// as in training. The same as <see cref="Predict"/> client by client. Each client's traffic counts to its index
    /// as if it had run alone (<see cref="Predict"/>'s batches of its samples).
    /// </summary>
    public List<Prediction>[] PredictClients(IReadOnlyList<int> indices,
        IReadOnlyList<IReadOnlyList<EncodedSample>> clients, Func<int[], Tensor, EvalClient> mixed)
    {
        using var _ = no_grad();
        var predictions = clients.Select(_ => new List<Prediction>()).ToArray();
        var owner = new Dictionary<EncodedSample, int>(ReferenceEqualityComparer.Instance);
        for (int k = 0; k < clients.Count; k++) foreach (var s in clients[k]) owner[s] = k;
        // the evaluation client of a group: its clients present (only theirs) and each sample's row among them
        EvalClient Mixed(EncodedSample[] group)
        {
            var present = group.Select(s => owner[s]).Distinct().ToArray();
            var row = group.Select(s => (long)Array.IndexOf(present, owner[s])).ToArray();
            return mixed(present.Select(j => indices[j]).ToArray(), tensor(row, device: edge.Device));
        }
        IEnumerable<EncodedSample> Choices(IEnumerable<EncodedSample> c) => c.Where(s => s.ChoiceIds.Length > 0);
        long tokenBytes = 0;
        foreach (var group in Batches(clients.SelectMany(Choices), s => s.PromptIds.Length, batchTokens))
        {
            using var scope = NewDisposeScope();
            using var batch = EncodedBatch.Create(group, false, tokenizer.PadId, edge.Device);
            var client = Mixed(group);
            var sequence = client.Sequence(batch);
            tokenBytes = SplitTraffic.TokenBytes(sequence);
            var delta = client.Delta?.Invoke(batch, sequence);
            var logProbs = server.NextTokenLogProbs(sequence, batch.AnswerPositions, delta).cpu();
            for (int b = 0; b < batch.Count; b++) predictions[owner[group[b]]].Add(Score(group[b], logProbs, b));
        }
        var produced = new Dictionary<EncodedSample, int>(ReferenceEqualityComparer.Instance);
        foreach (var group in FreeBatches(clients.SelectMany(c => c)))
        {
            using var scope = NewDisposeScope();
            var (free, counts, bytes) = Generate(group, Mixed(group));
            tokenBytes = bytes;
            for (int b = 0; b < group.Length; b++)
            {
                predictions[owner[group[b]]].Add(free[b]);
                produced[group[b]] = counts[b];
            }
        }
        for (int k = 0; k < clients.Count; k++)
        {
            foreach (var g in Batches(Choices(clients[k]), s => s.PromptIds.Length, batchTokens))
                Traffic.Add(indices[k], SplitTraffic.Scoring(g, tokenBytes));
            foreach (var g in FreeBatches(clients[k]))
                Traffic.Add(indices[k], Generation(g, g.Select(s => produced[s]).ToArray(), tokenBytes));
        }
        return predictions;
    }

    /// <summary>The prediction on multiple-choice sample <paramref name="s"/> from row <paramref name="b"/>.</summary>
    private static Prediction Score(EncodedSample s, Tensor logProbs, int b)
    {
        var scores = s.ChoiceIds.Select(id => logProbs[b, id].item<float>()).ToArray();
        int best = Array.IndexOf(scores, scores.Max());
        float loss = -logProbs[b, s.TargetIds[0]].item<float>();
        return new Prediction(s.Sample, best, null, best == s.Sample.AnswerIndex, loss);
    }

    /// <summary>
    /// Consecutive groups of <paramref name="samples"/> whose size times their longest <paramref name="length"/> is at
    /// most <paramref name="budget"/> (a sample longer than the budget alone).
    /// </summary>
    internal static IEnumerable<EncodedSample[]> Batches(
        IEnumerable<EncodedSample> samples, Func<EncodedSample, int> length, long budget)
    {
        var batch = new List<EncodedSample>();
        long longest = 0;
        foreach (var s in samples)
        {
            long l = Math.Max(longest, length(s));
            if (batch.Count > 0 && l * (batch.Count + 1) > budget)
            {
                yield return batch.ToArray();
                batch.Clear();
                l = length(s);
            }
            batch.Add(s);
            longest = l;
        }
        if (batch.Count > 0) yield return batch.ToArray();
    }

    /// <summary>
    /// Greedy decoding of a batch: the prompts go through the LLM once, filling a key/value cache; then each step
    /// sends only the new tokens' embeddings, at each sample's next position, attending to its own prompt (padding
    /// masked) and the tokens generated so far. The same tokens as re-running the whole prefix at every step.
    /// Returns the predictions, the tokens generated for each sample (its end-of-sequence not counted) and the
    /// bytes of one token's embedding (for <see cref="Generation"/>).
    /// </summary>
    private (Prediction[] predictions, int[] produced, long tokenBytes) Generate(EncodedSample[] group,
        EvalClient client)
    {
        using var scope = NewDisposeScope();
        using var batch = EncodedBatch.Create(group, false, tokenizer.PadId, edge.Device);
        using var cache = new KvCache(server.Llm.Config.NumHiddenLayers);
        var device = edge.Device;
        var sequence = client.Sequence(batch);
        var delta = client.Delta?.Invoke(batch, sequence);
        var logProbs = server.NextTokenLogProbs(sequence, batch.AnswerPositions, delta, cache);
        var lengths = group.Select(s => (long)s.PromptIds.Length).ToArray();
        var keyMask = arange(sequence.shape[1], device: device).unsqueeze(0)
            .lt(tensor(lengths, device: device).unsqueeze(1)); // prompt keys, not padding
        var loss = group.Select((s, b) => -logProbs[b, s.TargetIds[0]].item<float>()).ToArray();
        var produced = group.Select(_ => new List<int>()).ToArray();
        var done = new bool[group.Length];
        var atFirst = new long[group.Length];
        for (int step = 0; ; step++)
        {
            var next = logProbs.argmax(-1).cpu().data<long>().ToArray();
            for (int b = 0; b < group.Length; b++)
            {
                if (done[b]) continue;
                if (next[b] == tokenizer.EosId) done[b] = true;
                else produced[b].Add((int)next[b]);
            }
            if (step == maxNewTokens - 1 || done.All(d => d)) break;
            var embedded = client.EmbedTokens(tensor(next, [group.Length, 1], device: device));
            var positions = tensor(lengths.Select(l => l + step).ToArray(), [group.Length, 1], device: device);
            keyMask = cat([keyMask, ones(group.Length, 1, ScalarType.Bool, device)], 1);
            logProbs = server.NextTokenLogProbs(embedded, atFirst, delta, cache, positions, keyMask);
        }
        var predictions = group.Select((s, b) =>
        {
            string text = tokenizer.Decode(produced[b]).Trim();
            bool correct = s.Sample.AnswerText is { } answer
                && Data.Prompts.AnswerParser.FreeAnswerMatches(text, answer);
            return new Prediction(s.Sample, -1, text, correct, loss[b]);
        }).ToArray();
        return (predictions, produced.Select(p => p.Count).ToArray(), SplitTraffic.TokenBytes(sequence));
    }
}
