using MathNet.Numerics.Distributions;

namespace FedNano.Partitioning;

/// <summary>
/// Client-wise Dirichlet partition, the one used for large federations: each client draws its size and its own label
/// mix, and is then filled to that size from the mix. It follows FedLab's <c>client_inner_dirichlet_partition</c> with
/// its sizes from <c>balance_partition</c> (equal) or <c>lognormal_unbalance_partition</c> (<c>unbalance_sgm</c>), and
/// flwr-datasets' <c>InnerDirichletPartitioner</c> (after Acar et al., "Federated Learning Based on Dynamic
/// Regularization", ICLR 2021):
/// <list type="number">
/// <item><b>Sizes.</b> Every client gets <c>minSize</c> samples plus a share of the rest proportional to a weight
/// <c>w_k</c>: 1 for <c>sizeSigma</c> 0 (equal sizes, give or take one), else <c>w_k ~ LogNormal(0, sizeSigma)</c>
/// (FedLab draws the sizes themselves from <c>LogNormal(log(N/K), sigma)</c>; here the minimum comes first, so no
/// client falls below it). Cumulative shares are rounded, so the sizes add up to the samples exactly.</item>
/// <item><b>Label mixes.</b> Client k's mix <c>p_k ~ Dirichlet(alpha, ..., alpha)</c> over the labels (ordinal order):
/// small alpha, few labels per client; large alpha, close to the overall mix.</item>
/// <item><b>Filling.</b> The clients' free places are visited in a random order (interleaved, so no client is served
/// last); each takes a sample of a label drawn from <c>p_k</c> among the labels with samples left, renormalised over
/// them (as flwr-datasets does once a label runs out; uniform over them where <c>p_k</c> gives them no mass), each
/// label's samples in a random order.</item>
/// </list>
/// Every sample lands in exactly one client and every client gets its size, in one pass of O(samples x labels) with
/// no redraws, so any number of clients the samples allow can be made (10,000 clients take well under a second).
/// Where a label's samples run out before the mixes' demand for it, clients take other labels. With equally common
/// labels that happens only towards the end of the filling (the demand's spread, about labels x std(p) / sqrt(clients)
/// of the samples); the mixes ask every label for the same share on average, so rare labels run out early and
/// clients' mixes are less concentrated than Dirichlet(alpha) (as in FedLab and flwr-datasets).
/// Deterministic for a seed.
/// </summary>
public static class ClientDirichletPartitioner
{
    /// <summary>
    /// The indices of <paramref name="labels"/> held by each of <paramref name="clients"/> clients (each list sorted
    /// ascending); see the class summary.
    /// </summary>
    public static int[][] Partition(
        IReadOnlyList<string> labels, int clients, double alpha, int minSize, double sizeSigma, int seed)
    {
        if (clients <= 0) throw new ConfigException($"clients must be > 0 (got {clients})");
        if (!(alpha > 0)) throw new ConfigException($"alpha must be > 0 (got {alpha})");
        if (!(sizeSigma >= 0))
            throw new ConfigException($"client_size_sigma must be >= 0, 0 for equal sizes (got {sizeSigma})");
        if ((long)Math.Max(minSize, 1) * clients > labels.Count)
            throw new ConfigException($"{clients} clients x min_partition_size {minSize} exceeds the {labels.Count} "
                + "samples; use fewer clients, more samples or a lower min_partition_size");
        var rng = new Random(seed);
        var shuffled = Enumerable.Range(0, labels.Count).GroupBy(i => labels[i], StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.ToArray()).ToArray(); // indices per label
        foreach (var pool in shuffled) rng.Shuffle(pool);

        var sizes = Sizes(labels.Count, clients, minSize, sizeSigma, rng);
        var concentration = Enumerable.Repeat(alpha, shuffled.Length).ToArray();
        var mixes = new double[clients][];
        for (int k = 0; k < clients; k++) mixes[k] = Mix(concentration, rng);

        var places = new int[labels.Count];
        for (int k = 0, at = 0; k < clients; at += sizes[k], k++) Array.Fill(places, k, at, sizes[k]);
        rng.Shuffle(places);

        var parts = sizes.Select(s => new int[s]).ToArray();
        var filled = new int[clients];
        var left = shuffled.Select(p => p.Length).ToArray();
        foreach (int k in places)
        {
            int j = DrawLabel(mixes[k], left, rng);
            parts[k][filled[k]++] = shuffled[j][--left[j]];
        }
        foreach (var part in parts) Array.Sort(part);
        return parts;
    }

    /// <summary>Client sizes: <paramref name="minSize"/> each plus the rest shared in proportion to weights.</summary>
    private static int[] Sizes(int samples, int clients, int minSize, double sigma, Random rng)
    {
        var cumulative = new double[clients];
        double total = 0;
        for (int k = 0; k < clients; k++) cumulative[k] = total += sigma == 0 ? 1 : LogNormal.Sample(rng, 0, sigma);
        long spare = samples - (long)clients * minSize;
        var sizes = new int[clients];
        long before = 0;
        for (int k = 0; k < clients; k++)
        {
            long upTo = k == clients - 1 ? spare : (long)Math.Round(spare * (cumulative[k] / total));
            sizes[k] = minSize + (int)(upTo - before);
            before = upTo;
        }
        return sizes;
    }

    /// <summary>One draw of Dirichlet(<paramref name="concentration"/>).</summary>
    private static double[] Mix(double[] concentration, Random rng)
    {
        if (concentration.Length == 1) return [1.0];
        var p = Dirichlet.Sample(rng, concentration);
        if (!p.All(double.IsFinite)) // every Gamma draw underflowed (tiny alpha): the limit, all mass on one label
        {
            Array.Clear(p);
            p[rng.Next(p.Length)] = 1;
        }
        return p;
    }

    /// <summary>
    /// A label with samples left, drawn from <paramref name="p"/> renormalised over those (uniform if they have
    /// no mass).
    /// </summary>
    private static int DrawLabel(double[] p, int[] left, Random rng)
    {
        double mass = 0;
        int available = 0;
        for (int j = 0; j < p.Length; j++)
            if (left[j] > 0) { mass += p[j]; available++; }
        if (mass > 0)
        {
            double u = rng.NextDouble() * mass;
            int last = -1;
            for (int j = 0; j < p.Length; j++)
            {
                if (left[j] == 0 || p[j] == 0) continue;
                last = j;
                if ((u -= p[j]) < 0) return j;
            }
            return last; // u ran past the end by rounding
        }
        int pick = rng.Next(available);
        for (int j = 0; ; j++)
            if (left[j] > 0 && pick-- == 0) return j;
    }
}
