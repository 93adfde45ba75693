using System.Globalization;

namespace FedNano.Reports;

/// <summary>Counts in words, for every text the library and the CLI write.</summary>
internal static class Words
{
    /// <summary>
    /// <c>1 round</c>, <c>4 rounds</c>, <c>1,200 samples</c>: <paramref name="noun"/> (singular) with a regular plural.
    /// </summary>
    public static string Count(long n, string noun) =>
        $"{n.ToString("N0", CultureInfo.InvariantCulture)} {noun}{(n == 1 ? "" : "s")}";

    /// <summary>
    /// A percentage with one decimal: <c>91.2 %</c>; a fraction in, as accuracies are kept in memory.
    /// </summary>
    public static string Percent(double fraction) =>
        double.IsNaN(fraction) ? "-" : (100 * fraction).ToString("F1", CultureInfo.InvariantCulture) + " %";
}
