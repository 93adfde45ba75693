using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace FedNano.Tokenizers;

/// <summary>
/// The tiny backbone's own tokenizer: a lower-cased WordPiece vocabulary (Microsoft.ML.Tokenizers'
/// <see cref="WordPieceTokenizer"/>) built from the words of its training data, with every ASCII letter,
/// digit and punctuation mark as a piece, so any text encodes without unknown tokens. Saved as
/// <c>vocab.txt</c> (one token a line, id = line number) beside the checkpoint.
/// </summary>
public sealed partial class TinyTokenizer : ITextTokenizer
{
    /// <summary>Special tokens, in id order.</summary>
    public static readonly string[] Specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"];
    /// <summary>File name of the vocabulary beside a checkpoint.</summary>
    public const string FileName = "vocab.txt";

    private readonly WordPieceTokenizer inner;

    private TinyTokenizer(WordPieceTokenizer inner, int vocabSize) { this.inner = inner; VocabSize = vocabSize; }

    /// <inheritdoc/>
    public int VocabSize { get; }
    /// <inheritdoc/>
    public int PadId => 0;
    /// <inheritdoc/>
    public int BosId => 2;
    /// <inheritdoc/>
    public int EosId => 3;

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text) =>
        inner.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true);

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) =>
        inner.Decode(ids.Where(i => i >= Specials.Length), skipSpecialTokens: true);

    /// <summary>Loads a <c>vocab.txt</c>.</summary>
    public static TinyTokenizer Load(string vocabPath)
    {
        if (!File.Exists(vocabPath)) throw new ConfigException($"tokenizer vocabulary {vocabPath} not found");
        return FromVocabulary(File.ReadAllLines(vocabPath));
    }

    /// <summary>A tokenizer of the given vocabulary (one token per id, in id order; the specials first).</summary>
    private static TinyTokenizer FromVocabulary(IReadOnlyList<string> vocab)
    {
        var specials = Specials.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i);
        var options = new WordPieceOptions
        {
            UnknownToken = "[UNK]",
            SpecialTokens = specials,
            Normalizer = new LowerCaseNormalizer(),
            PreTokenizer = PreTokenizer.CreateWordOrPunctuation(specials),
        };
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', vocab) + "\n"));
        return new TinyTokenizer(WordPieceTokenizer.Create(stream, options), vocab.Count);
    }

    /// <summary>
    /// Builds a vocabulary from <paramref name="corpus"/>: the specials, single characters (as word starts and
    /// <c>##</c> continuations), then the <paramref name="maxWords"/> most frequent lower-cased words (ties by
    /// order), and writes it to <paramref name="vocabPath"/> when one is given.
    /// </summary>
    public static TinyTokenizer Build(IEnumerable<string> corpus, int maxWords, string? vocabPath = null)
    {
        var counts = new Dictionary<string, int>();
        var order = new List<string>();
        foreach (var text in corpus)
            foreach (Match m in Word().Matches(text.ToLowerInvariant()))
            {
                if (!counts.TryAdd(m.Value, 1)) counts[m.Value]++;
                else order.Add(m.Value);
            }
        const string chars = "abcdefghijklmnopqrstuvwxyz0123456789";
        const string punct = ".,:;?!'\"()[]{}-_+=*/\\<>@#$%^&|~`";
        var vocab = new List<string>(Specials);
        vocab.AddRange(chars.Select(c => c.ToString()));
        vocab.AddRange(punct.Select(c => c.ToString()));
        vocab.AddRange(chars.Select(c => "##" + c));
        var seen = new HashSet<string>(vocab);
        vocab.AddRange(order.Select((w, i) => (w, i)).OrderByDescending(p => counts[p.w]).ThenBy(p => p.i)
            .Select(p => p.w).Where(seen.Add).Take(maxWords));
        if (vocabPath is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(vocabPath))!);
            File.WriteAllLines(vocabPath, vocab);
        }
        return FromVocabulary(vocab);
    }

    [GeneratedRegex(@"[a-z0-9]+")]
    private static partial Regex Word();
}
