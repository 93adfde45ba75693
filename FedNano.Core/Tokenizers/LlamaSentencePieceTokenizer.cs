using Microsoft.ML.Tokenizers;

namespace FedNano.Tokenizers;

/// <summary>
/// LLaMA's SentencePiece BPE tokenizer read from a checkpoint's <c>tokenizer.model</c> (Microsoft.ML.Tokenizers'
/// <see cref="LlamaTokenizer"/>): a dummy-prefix space, byte fallback, BOS id 1, EOS id 2. There is no padding
/// token; as LLaVA does, padding uses the unknown token (id 0).
/// </summary>
public sealed class LlamaSentencePieceTokenizer : ITextTokenizer
{
    private readonly LlamaTokenizer inner;

    private LlamaSentencePieceTokenizer(LlamaTokenizer inner) => this.inner = inner;

    /// <summary>Reads <paramref name="path"/> (a SentencePiece <c>tokenizer.model</c>).</summary>
    public static LlamaSentencePieceTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigException($"{path}: tokenizer.model not found");
        try
        {
            using var stream = File.OpenRead(path);
            return new LlamaSentencePieceTokenizer(
                LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException($"{path}: not a readable SentencePiece model ({e.Message})", e);
        }
    }

    /// <inheritdoc/>
    public int VocabSize => inner.Vocabulary.Count;
    /// <inheritdoc/>
    public int BosId => inner.BeginningOfSentenceId;
    /// <inheritdoc/>
    public int EosId => inner.EndOfSentenceId;
    /// <inheritdoc/>
    public int PadId => inner.UnknownId;

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text) =>
        inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) =>
        inner.Decode(ids.Where(i => i != BosId && i != EosId && i != PadId)) ?? "";
}
