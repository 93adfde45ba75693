namespace FedNano.Tokenizers;

/// <summary>A text tokenizer as the models see it: text to ids and back, plus the special ids.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of ids.</summary>
    int VocabSize { get; }
    /// <summary>Beginning-of-sequence id.</summary>
    int BosId { get; }
    /// <summary>End-of-sequence id.</summary>
    int EosId { get; }
    /// <summary>Padding id.</summary>
    int PadId { get; }
    /// <summary>Ids of <paramref name="text"/>, without special tokens.</summary>
    IReadOnlyList<int> Encode(string text);
    /// <summary>Text of <paramref name="ids"/>, special tokens dropped.</summary>
    string Decode(IEnumerable<int> ids);
}
