using FedNano.Edge;
using FedNano.Strategies;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;
using static TorchSharp.torch;

namespace FedNano.Adapters;

/// <summary>
/// Aggregation across clients whose NanoAdapters have different ranks r_k (weaker hardware, smaller adapters).
/// An adapter is stored as <c>PREFIX.down.weight</c> [r, d] and <c>PREFIX.up.weight</c> [d, r] (e.g.
/// <c>adapter_i.</c>, as <see cref="NanoEdge.AdapterState"/> names them); its residual is the rank-r product
/// <c>up x down</c> [d, d]. Two ways across ranks:
/// <list type="bullet">
/// <item><b>Zero-padding</b> (<see cref="MergePadded"/>): every state is padded with zero rows of <c>down</c> and
/// zero columns of <c>up</c> to the largest rank (the product is unchanged) and merged with any same-shape merge
/// (<see cref="FedAvg.WeightedMean"/>, <see cref="FedNanoFisher.Merge"/>); a client gets the first r_k components
/// back (<see cref="Truncate"/>). A padded Fisher is zero, so Fisher merging leaves the components a small client
/// does not have to the clients that do, while the size-weighted mean shrinks them by the share of those
/// clients.</item>
/// <item><b>Product merging</b> (<see cref="MergeProducts"/>): the size-weighted mean of the products is
/// re-factorised to each client's rank by truncated SVD, <c>up = U_r sqrt(S_r)</c>, <c>down = sqrt(S_r) V_r^T</c>
/// (the best rank-r approximation, Eckart-Young). Note: directions with zero singular value come back with both
/// factors zero, a stationary point plain gradient steps do not leave (e.g. re-factorising the all-zero product of
/// fresh adapters gives zero factors), so use it once the product has rank r_k, or keep the client's own factors
/// there.</item>
/// </list>
/// </summary>
public static class RankMerging
{
    private const string Down = "down.weight", Up = "up.weight";

    /// <summary>The rank of the adapters in <paramref name="state"/> (rows of its <c>down.weight</c> tensors; all must
    /// agree).</summary>
    public static int RankOf(AdapterState state)
    {
        var ranks = state.Tensors.Where(p => p.Key.EndsWith(Down)).Select(p => (int)p.Value.shape[0]).Distinct()
            .ToArray();
        return ranks.Length == 1 ? ranks[0] : throw new ArgumentException(
            $"expected one adapter rank in the state, found [{string.Join(", ", ranks)}]", nameof(state));
    }

    /// <summary>
    /// <paramref name="state"/> with every adapter padded to <paramref name="rank"/>: zero rows appended to
    /// <c>down.weight</c>, zero columns to <c>up.weight</c> (the product is exactly unchanged; a Fisher state padded
    /// the same way is zero there). Other tensors are copied. New tensors; the input is left as it is.
    /// </summary>
    public static AdapterState Pad(AdapterState state, int rank) => Resize(state, rank, (t, dim, r) =>
        t.shape[dim] > r
            ? throw new ArgumentException($"cannot pad rank {t.shape[dim]} down to {r}; use Truncate", nameof(rank))
            : nn.functional.pad(t, dim == 0 ? [0, 0, 0, r - t.shape[0]] : [0, r - t.shape[1]]));

    /// <summary>
    /// The first <paramref name="rank"/> components of every adapter of <paramref name="state"/> (rows of
    /// <c>down.weight</c>, columns of <c>up.weight</c>): what a client of that rank takes from a padded state.
    /// </summary>
    public static AdapterState Truncate(AdapterState state, int rank) => Resize(state, rank, (t, dim, r) =>
        t.shape[dim] < r
            ? throw new ArgumentException($"cannot truncate rank {t.shape[dim]} up to {r}; use Pad", nameof(rank))
            : t.narrow(dim, 0, r).clone());

    private static AdapterState Resize(AdapterState state, int rank, Func<Tensor, int, int, Tensor> resize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rank);
        return new(state.Tensors.ToDictionary(p => p.Key, p => p.Key.EndsWith(Down) ? resize(p.Value, 0, rank)
            : p.Key.EndsWith(Up) ? resize(p.Value, 1, rank) : p.Value.clone()));
    }

    /// <summary>
    /// Merges <paramref name="updates"/> of any ranks (parameters and Fisher) by padding them and
    /// <paramref name="global"/> to the largest rank among them and applying <paramref name="merge"/> to the padded
    /// states, e.g. <c>FedAvg.WeightedMean</c> or <c>(g, u) =&gt; FedNanoFisher.Merge(g, u, floor)</c>. Returns the
    /// merged state at that largest rank; with equal ranks it is exactly <c>merge(global, updates)</c>.
    /// </summary>
    public static AdapterState MergePadded(AdapterState global, IReadOnlyList<ClientUpdate> updates,
        Func<AdapterState, IReadOnlyList<ClientUpdate>, AdapterState> merge)
    {
        int rank = updates.Select(u => RankOf(u.Parameters)).Append(RankOf(global)).Max();
        using var paddedGlobal = Pad(global, rank);
        var padded = updates.Select(u => u with
        {
            Parameters = Pad(u.Parameters, rank),
            Fisher = u.Fisher is { } f ? Pad(f, rank) : null,
        }).ToArray();
        try { return merge(paddedGlobal, padded); }
        finally { foreach (var u in padded) { u.Parameters.Dispose(); u.Fisher?.Dispose(); } }
    }

    /// <summary>
    /// The size-weighted mean of the clients' adapter products, <c>sum_k |D_k| up_k down_k / sum_k |D_k|</c>, one
    /// [d, d] tensor per adapter, keyed by its prefix (e.g. <c>adapter_i.</c>). Ranks may differ.
    /// </summary>
    public static Dictionary<string, Tensor> WeightedProducts(IReadOnlyList<ClientUpdate> updates)
    {
        if (updates.Count == 0) throw new ArgumentException("no updates to merge", nameof(updates));
        double total = updates.Sum(u => (double)u.Samples);
        return Prefixes(updates[0].Parameters).ToDictionary(prefix => prefix, prefix =>
        {
            using var scope = NewDisposeScope();
            var sum = updates
                .Select(u => u.Parameters[prefix + Up].matmul(u.Parameters[prefix + Down]) * (u.Samples / total))
                .Aggregate((a, b) => a + b);
            return sum.MoveToOuterDisposeScope();
        });
    }

    /// <summary>
    /// Product merging: the size-weighted mean of the updates' products (<see cref="WeightedProducts"/>),
    /// re-factorised by truncated SVD at each of <paramref name="ranks"/>. Returns a state per rank with
    /// <c>PREFIX.up.weight</c> [d, r] and <c>PREFIX.down.weight</c> [r, d]. One SVD per adapter, and without forming
    /// the [d, d] mean where the ranks sum to R &lt; d: it is <c>A B</c> with A = [w_k up_k] [d, R] and B = [down_k]
    /// [R, d], so thin QRs of A and B^T leave an R x R SVD (d = 4096 stays cheap). Components beyond the mean's rank
    /// R come back zero.
    /// </summary>
    public static Dictionary<int, AdapterState> MergeProducts(IReadOnlyList<ClientUpdate> updates,
        IEnumerable<int> ranks)
    {
        if (updates.Count == 0) throw new ArgumentException("no updates to merge", nameof(updates));
        double total = updates.Sum(u => (double)u.Samples);
        var like = updates[0].Parameters.Tensors.Values.First();
        var decompositions = Prefixes(updates[0].Parameters).ToDictionary(prefix => prefix, prefix =>
        {
            using var scope = NewDisposeScope();
            var a = cat(updates.Select(u => u.Parameters[prefix + Up] * (u.Samples / total)).ToArray(), 1);
            var b = cat(updates.Select(u => u.Parameters[prefix + Down]).ToArray(), 0);
            return ProductSvd(ToMatrix(a), ToMatrix(b));
        });
        return ranks.Distinct().ToDictionary(r => r, r =>
        {
            var tensors = new Dictionary<string, Tensor>();
            foreach (var (prefix, svd) in decompositions)
                (tensors[prefix + Up], tensors[prefix + Down]) = Factors(svd, r, like);
            return new AdapterState(tensors);
        });
    }

    /// <summary>
    /// The best rank-<paramref name="rank"/> factorisation of <paramref name="product"/> [m, n] by truncated SVD,
    /// the singular values split evenly: <c>up = U_r sqrt(S_r)</c> [m, r], <c>down = sqrt(S_r) V_r^T</c> [r, n], so
    /// <c>up x down</c> is the rank-r truncation (MathNet.Numerics' SVD, in float64; returned in the input's dtype
    /// and device).
    /// </summary>
    public static (Tensor Up, Tensor Down) Factorise(Tensor product, int rank) =>
        Factors(Svd(ToMatrix(product)), rank, product);

    private static IEnumerable<string> Prefixes(AdapterState state) =>
        state.Tensors.Keys.Where(k => k.EndsWith(Down)).Select(k => k[..^Down.Length]);

    private static Matrix<double> ToMatrix(Tensor t)
    {
        if (t.dim() != 2)
            throw new ArgumentException($"expected a matrix, got shape [{string.Join(", ", t.shape)}]", nameof(t));
        var values = t.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        return Matrix<double>.Build.DenseOfRowMajor((int)t.shape[0], (int)t.shape[1], values);
    }

    private readonly record struct Decomposition(Matrix<double> U, Vector<double> S, Matrix<double> VT);

    private static Decomposition Svd(Matrix<double> m)
    {
        var svd = m.Svd(computeVectors: true);
        return new(svd.U, svd.S, svd.VT);
    }

    // SVD of a [m, R] x b [R, n]; when R < min(m, n) through a = Qa Ra, b^T = Qb Rb: a b = Qa (Ra Rb^T) Qb^T.
    private static Decomposition ProductSvd(Matrix<double> a, Matrix<double> b)
    {
        if (a.ColumnCount >= Math.Min(a.RowCount, b.ColumnCount)) return Svd(a * b);
        var qa = a.QR(QRMethod.Thin);
        var qb = b.Transpose().QR(QRMethod.Thin);
        var core = Svd(qa.R * qb.R.Transpose());
        return new(qa.Q * core.U, core.S, core.VT * qb.Q.Transpose());
    }

    // up = U_k sqrt(S_k), down = sqrt(S_k) V_k^T for k = min(rank, singular values), zero-padded to rank.
    private static (Tensor Up, Tensor Down) Factors(Decomposition svd, int rank, Tensor like)
    {
        int m = svd.U.RowCount, n = svd.VT.ColumnCount, k = Math.Min(rank, svd.S.Count);
        if (rank <= 0 || rank > Math.Min(m, n))
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"must be in 1..{Math.Min(m, n)} for {m} x {n}");
        var root = Matrix<double>.Build.DiagonalOfDiagonalVector(svd.S.SubVector(0, k).PointwiseSqrt());
        Tensor ToTensor(Matrix<double> a) =>
            tensor(a.ToRowMajorArray(), [a.RowCount, a.ColumnCount], ScalarType.Float64).to(like.dtype, like.device);
        using var up = ToTensor(svd.U.SubMatrix(0, m, 0, k) * root);
        using var down = ToTensor(root * svd.VT.SubMatrix(0, k, 0, n));
        return (nn.functional.pad(up, [0, rank - k]), nn.functional.pad(down, [0, 0, 0, rank - k]));
    }
}
