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
    public static int[][] Partition(
        IReadOnlyList<string> labels, int clients, double alpha, int minSize, int seed, int maxAttempts = 10000)
    {
        if (clients <= 0) throw new ConfigException($"clients must be > 0 (got {clients})");
        if (!(alpha > 0)) throw new ConfigException($"alpha must be > 0 (got {alpha})");
        if (clients > labels.Count)
            throw new ConfigException($"{clients} clients but only {labels.Count} samples: every client needs data; " +
                                      "use fewer clients or more samples");
        if ((long)minSize * clients > labels.Count)
            throw new ConfigException($"min_partition_size {minSize} x {clients} clients exceeds the {labels.Count} " +
                                      "samples; lower min_partition_size");
        var rng = new Random(seed);
        var byLabel = labels.Select((l, i) => (l, i)).GroupBy(p => p.l, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Select(p => p.i).ToArray()).ToArray();
        var dirichlet = new Dirichlet(Enumerable.Repeat(alpha, clients).ToArray(), rng);
        for (int attempt = 0; attempt < maxAttempts; attempt++)
        {
            // each label's shuffle keys and cut points; the (stable) shuffles are only sorted for a draw that is kept
            var keys = new int[byLabel.Length][];
            var cuts = new int[byLabel.Length][];
            var sizes = new int[clients];
            for (int l = 0; l < byLabel.Length; l++)
            {
                int n = byLabel[l].Length;
                keys[l] = new int[n];
                for (int i = 0; i < n; i++) keys[l][i] = rng.Next();
                var p = dirichlet.Sample();
                cuts[l] = new int[clients + 1];
                double acc = 0;
                for (int k = 0; k < clients; k++)
                {
                    acc += p[k];
                    int end = k == clients - 1 ? n : (int)Math.Round(acc * n);
                    cuts[l][k + 1] = Math.Clamp(end, cuts[l][k], n);
                    sizes[k] += cuts[l][k + 1] - cuts[l][k];
                }
            }
            if (sizes.Any(s => s < minSize)) continue;
            var parts = Enumerable.Range(0, clients).Select(k => new List<int>(sizes[k])).ToArray();
            for (int l = 0; l < byLabel.Length; l++)
            {
                var order = keys[l];
                var shuffled = byLabel[l].Select((index, i) => (index, i)).OrderBy(p => order[p.i])
                    .Select(p => p.index).ToArray();
                for (int k = 0; k < clients; k++) parts[k].AddRange(shuffled[cuts[l][k]..cuts[l][k + 1]]);
            }
            return parts.Select(p => p.Order().ToArray()).ToArray();
        }
        throw new ConfigException($"no Dirichlet(alpha={alpha}) draw in {maxAttempts} gave every one of {clients} "
            + $"clients at least {minSize} samples; raise alpha, lower min_partition_size, use fewer clients, "
            + "or use partition_scheme client (made for many clients)");
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
