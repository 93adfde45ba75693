using MathNet.Numerics.Distributions;

namespace FedNano.Partitioning;

/// <summary>
/// Label-skewed partition of a data set over K clients: for every label, the clients' shares of that label's
/// samples are drawn from Dirichlet(alpha, ..., alpha) (small alpha: each label concentrates on few clients;
/// large alpha: close to uniform). Draws are repeated until every client holds at least the minimum number
/// of samples. Every sample lands in exactly one client. Deterministic for a seed.
/// </summary>
public static class DirichletPartitioner
{
    /// <summary>
    /// The indices of <paramref name="labels"/> held by each of <paramref name="clients"/> clients (each list
    /// sorted ascending).
    /// </summary>
    public static int[][] Partition(IReadOnlyList<string> labels, int clients, double alpha, int minSize, int seed, int maxAttempts = 10000)
    {
        if (clients <= 0) throw new ConfigException($"clients must be > 0 (got {clients})");
        if (!(alpha > 0)) throw new ConfigException($"alpha must be > 0 (got {alpha})");
        if (clients > labels.Count) throw new ConfigException($"{clients} clients but only {labels.Count} samples: every client needs data; use fewer clients or more samples");
        if ((long)minSize * clients > labels.Count)
            throw new ConfigException($"min_partition_size {minSize} x {clients} clients exceeds the {labels.Count} samples; lower min_partition_size");
        var rng = new Random(seed);
        var byLabel = labels.Select((l, i) => (l, i)).GroupBy(p => p.l, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Select(p => p.i).ToArray()).ToArray();
        var dirichlet = new Dirichlet(Enumerable.Repeat(alpha, clients).ToArray(), rng);
        for (int attempt = 0; attempt < maxAttempts; attempt++)
        {
            var parts = Enumerable.Range(0, clients).Select(_ => new List<int>()).ToArray();
            foreach (var indices in byLabel)
            {
                var shuffled = indices.OrderBy(_ => rng.Next()).ToArray();
                var p = dirichlet.Sample();
                double acc = 0;
                int start = 0;
                for (int k = 0; k < clients; k++)
                {
                    acc += p[k];
                    int end = k == clients - 1 ? shuffled.Length : (int)Math.Round(acc * shuffled.Length);
                    end = Math.Clamp(end, start, shuffled.Length);
                    parts[k].AddRange(shuffled[start..end]);
                    start = end;
                }
            }
            if (parts.All(p => p.Count >= minSize)) return parts.Select(p => p.Order().ToArray()).ToArray();
        }
        throw new ConfigException($"no Dirichlet(alpha={alpha}) draw in {maxAttempts} gave every one of {clients} clients at least {minSize} samples; raise alpha, lower min_partition_size, use fewer clients, or use partition_scheme client (made for many clients)");
    }

    /// <summary>Counts of each label per client, labels in ordinal order.</summary>
    public static (string[] labels, int[,] counts) Histogram(IReadOnlyList<string> labels, int[][] parts)
    {
        var names = labels.Distinct().Order(StringComparer.Ordinal).ToArray();
        var counts = new int[parts.Length, names.Length];
        for (int k = 0; k < parts.Length; k++)
            foreach (int i in parts[k]) counts[k, Array.IndexOf(names, labels[i])]++;
        return (names, counts);
    }
}
