using System.Globalization;
using System.Text.RegularExpressions;

namespace FedNano.Data.Prompts;

/// <summary>
/// Reads a generated answer the way LLaVA's <c>eval_science_qa.py</c> does, and compares free answers by
/// normalised exact match.
/// </summary>
public static partial class AnswerParser
{
    /// <summary>
    /// The option index a generated <paramref name="prediction"/> names, or -1 (counted wrong). After trimming
    /// whitespace (LLaVA strips its outputs), accepted are: the letter alone (<c>B</c>); the letter followed by
    /// <c>". "</c> (<c>B. text</c>); else exactly one match of LLaVA's pattern <c>The answer is ([A-Z]).</c>
    /// (its <c>.</c> matches any character). A letter beyond the question's options gives -1, as LLaVA does.
    /// </summary>
    public static int ParseOptionIndex(string prediction, int numChoices)
    {
        string p = prediction.Trim();
        char letter;
        if (p.Length == 1 && IsLetter(p[0])) letter = p[0];
        else if (p.Length >= 3 && IsLetter(p[0]) && p[1] == '.' && p[2] == ' ') letter = p[0];
        else
        {
            var m = AnswerIs().Matches(p);
            if (m.Count != 1) return -1;
            letter = m[0].Groups[1].Value[0];
        }
        int idx = letter - 'A';
        return idx < numChoices ? idx : -1;
    }

    static bool IsLetter(char c) => c is >= 'A' and <= 'Z';

    [GeneratedRegex("The answer is ([A-Z]).")]
    private static partial Regex AnswerIs();

    /// <summary>
    /// Normal form of a free answer for exact match: trimmed, lower-case, inner whitespace collapsed, a trailing
    /// period dropped, and numbers written canonically (<c>1,000</c>, <c>1000.0</c> and <c>1000</c> agree).
    /// </summary>
    public static string NormalizeFreeAnswer(string answer)
    {
        string a = WhiteSpace().Replace(answer.Trim().ToLowerInvariant(), " ").TrimEnd('.').Trim();
        if (decimal.TryParse(
                a, NumberStyles.AllowThousands | NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign,
                CultureInfo.InvariantCulture, out var d))
            return d.ToString("G29", CultureInfo.InvariantCulture);
        return a;
    }

    /// <summary>
    /// True when <paramref name="prediction"/> and <paramref name="answer"/> agree after
    /// <see cref="NormalizeFreeAnswer"/>.
    /// </summary>
    public static bool FreeAnswerMatches(string prediction, string answer) =>
        NormalizeFreeAnswer(prediction) == NormalizeFreeAnswer(answer);

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();
}
