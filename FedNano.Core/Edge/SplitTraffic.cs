using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>
/// The messages that cross the client/server split, sized in one place, and the bytes each client has moved since it
/// was last read. Up: input-embedding sequences (training, Fisher pass, scoring, a prompt to continue) and generated
/// tokens' embeddings; down: the gradient with respect to a sequence (its size), the scores of the offered letters,
/// generated token ids. A client's sequences are counted padded to its own longest one, as if it ran alone, whatever
/// other clients' samples shared the pass.
/// </summary>
internal sealed class SplitTraffic
{
    private readonly Dictionary<int, long> moved = [];

    /// <summary>Bytes of <paramref name="samples"/> sequences of <paramref name="length"/> tokens as wide as
    /// <paramref name="like"/> (its last dimension and element type).</summary>
    public static long Sequences(long samples, long length, Tensor like) => samples * length * TokenBytes(like);

    /// <summary>Bytes of one token's embedding as wide as <paramref name="like"/>.</summary>
    public static long TokenBytes(Tensor like) => like.shape[^1] * like.ElementSize;

    /// <summary>Bytes of <paramref name="count"/> scores (float32).</summary>
    public static long Scores(long count) => count * sizeof(float);

    /// <summary>Bytes of <paramref name="count"/> token ids (int32).</summary>
    public static long TokenIds(long count) => count * sizeof(int);

    /// <summary>A multiple-choice batch's messages: its prompts up (<paramref name="tokenBytes"/> a token), the
    /// offered letters' scores down.</summary>
    public static long Scoring(IReadOnlyCollection<EncodedSample> group, long tokenBytes) =>
        group.Count * group.Max(s => s.PromptIds.Length) * tokenBytes + Scores(group.Sum(s => s.ChoiceIds.Length));

    /// <summary>
    /// A training (or Fisher) step of <paramref name="samples"/>: their sequences up, the gradient down.
    /// </summary>
    public void Step(int client, IReadOnlyCollection<EncodedSample> samples, Tensor like) =>
        Add(client, 2 * Sequences(samples.Count, samples.Max(s => s.PromptIds.Length + s.TargetIds.Length), like));

    /// <summary>Counts <paramref name="bytes"/> to <paramref name="client"/>.</summary>
    public void Add(int client, long bytes) => moved[client] = moved.GetValueOrDefault(client) + bytes;

    /// <summary>The bytes <paramref name="client"/> moved since the last call for it (0 if none).</summary>
    public long Take(int client) => moved.Remove(client, out long bytes) ? bytes : 0;
}
