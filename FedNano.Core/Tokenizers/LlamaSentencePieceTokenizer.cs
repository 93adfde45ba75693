using Microsoft.ML.Tokenizers;

namespace FedNano.Tokenizers;

/// <summary>
/// LLaMA's SentencePiece tokenizer read from its <c>tokenizer.model</c> (the file shipped with LLaMA, Vicuna and
/// LLaVA checkpoints), through Microsoft.ML.Tokenizers' <see cref="LlamaTokenizer"/>. <see cref="Encode"/> adds no
/// BOS/EOS; LLaMA has no padding token, so <see cref="PadId"/> is the unknown token's id, as LLaVA-1.5 sets it.
/// </summary>
public sealed class LlamaSentencePieceTokenizer : ITextTokenizer
{
    readonly LlamaTokenizer _inner;

    LlamaSentencePieceTokenizer(LlamaTokenizer inner) => _inner = inner;

    /// <summary>Reads <paramref name="path"/>; a missing or unreadable file throws <see cref="ConfigException"/> naming it.</summary>
    public static LlamaSentencePieceTokenizer Load(string path)
    {
        if (!File.Exists(path))
            throw new ConfigException($"{path}: SentencePiece tokenizer.model not found (it ships beside a LLaMA/LLaVA checkpoint)");
        try
        {
            using var stream = File.OpenRead(path);
            return new(LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException($"{path}: not a readable SentencePiece BPE tokenizer.model ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>The wrapped Microsoft.ML.Tokenizers tokenizer.</summary>
    public LlamaTokenizer Inner => _inner;
    /// <inheritdoc/>
    public int VocabSize => _inner.Vocabulary.Count;
    /// <inheritdoc/>
    public int BosId => _inner.BeginningOfSentenceId;
    /// <inheritdoc/>
    public int EosId => _inner.EndOfSentenceId;
    /// <inheritdoc/>
    public int PadId => _inner.UnknownId;
    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text) => _inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) => _inner.Decode(ids, considerSpecialTokens: false);
}
