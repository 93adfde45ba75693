using System.Text;
using FedNano.Tokenizers;
using NUnit.Framework;

namespace FedNano.Tests.Data;

/// <summary>
/// No real LLaMA tokenizer.model is available offline (no NuGet package ships one), so the tests write a tiny
/// SentencePiece BPE model in the same protobuf format (sentencepiece_model.proto) and check the wrapper on it.
/// </summary>
public class LlamaSentencePieceTokenizerTests
{
    // id: piece, score, type (1 normal, 2 unknown, 3 control)
    static readonly (string Piece, float Score, int Type)[] Vocab =
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        ("▁", -10, 1), ("h", -10, 1), ("e", -10, 1), ("l", -10, 1), ("o", -10, 1),
        ("▁h", -1, 1), ("he", -2, 1), ("ll", -3, 1), ("w", -10, 1), ("r", -10, 1), ("d", -10, 1),
    ];

    static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        do { byte x = (byte)(v & 0x7F); v >>= 7; b.Add(v != 0 ? (byte)(x | 0x80) : x); } while (v != 0);
        return [.. b];
    }
    static byte[] Tag(int field, int wire) => Varint((ulong)((field << 3) | wire));
    static byte[] VarintField(int field, long v) => [.. Tag(field, 0), .. Varint((ulong)v)];
    static byte[] BytesField(int field, byte[] v) => [.. Tag(field, 2), .. Varint((ulong)v.Length), .. v];
    static byte[] FloatField(int field, float v) => [.. Tag(field, 5), .. BitConverter.GetBytes(v)];

    static string WriteModel()
    {
        var model = new List<byte>();
        foreach (var (piece, score, type) in Vocab)
            model.AddRange(BytesField(1,
                [.. BytesField(1, Encoding.UTF8.GetBytes(piece)), .. FloatField(2, score), .. VarintField(3, type)]));
        // trainer_spec: model_type BPE (2), byte_fallback false, unk/bos/eos/pad ids
        model.AddRange(BytesField(2, [.. VarintField(3, 2), .. VarintField(35, 0), .. VarintField(40, 0),
            .. VarintField(41, 1), .. VarintField(42, 2), .. VarintField(43, -1)]));
        // normalizer_spec: identity, add dummy prefix, remove extra whitespaces, escape whitespaces
        model.AddRange(BytesField(3, [.. BytesField(1, "identity"u8.ToArray()), .. VarintField(3, 1),
            .. VarintField(4, 1), .. VarintField(5, 1)]));
        string path = Path.Combine(Path.GetTempPath(), $"fednano-sp-{Guid.NewGuid():N}.model");
        File.WriteAllBytes(path, [.. model]);
        return path;
    }

    [Test]
    public void EncodesWithBpeMergesByScoreAndDecodesBack()
    {
        string path = WriteModel();
        try
        {
            var tok = LlamaSentencePieceTokenizer.Load(path);
            int Id(string piece) => Array.FindIndex(Vocab, v => v.Piece == piece);
            Assert.That((tok.VocabSize, tok.BosId, tok.EosId, tok.PadId), Is.EqualTo((Vocab.Length, 1, 2, 0)));
            // "hello" -> "▁hello": merge ▁h (score -1) first, then ll (-3); "▁he" is not a piece
            var ids = tok.Encode("hello");
            Assert.That(ids, Is.EqualTo(new[] { Id("▁h"), Id("e"), Id("ll"), Id("o") }));
            Assert.That(tok.Decode(ids), Is.EqualTo("hello"));
            Assert.That(tok.Decode([1, .. ids, 2]), Is.EqualTo("hello"));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void MissingOrGarbageModelNamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"fednano-sp-{Guid.NewGuid():N}.model");
        Assert.That(() => LlamaSentencePieceTokenizer.Load(path),
            Throws.TypeOf<ConfigException>().With.Message.Contain(path).And.Message.Contain("not found"));
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0x01, 0x02]);
        try
        {
            Assert.That(() => LlamaSentencePieceTokenizer.Load(path),
                Throws.TypeOf<ConfigException>().With.Message.Contain(path));
        }
        finally { File.Delete(path); }
    }
}
