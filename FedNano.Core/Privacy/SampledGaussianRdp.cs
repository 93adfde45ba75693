using MathNet.Numerics;

namespace FedNano.Privacy;

/// <summary>How an RDP curve is turned into an (epsilon, delta) guarantee.</summary>
public enum RdpConversion
{
    /// <summary>
    /// Balle et al., "Hypothesis Testing Interpretations and Renyi Differential Privacy", AISTATS 2020, Theorem 21:
    /// <c>eps = rdp - (log delta + log alpha) / (alpha - 1) + log((alpha - 1) / alpha)</c>. What Opacus'
    /// <c>rdp</c> accountant (<c>get_privacy_spent</c>) and today's TF-Privacy / dp_accounting use; never larger than
    /// <see cref="Mironov2017"/>.
    /// </summary>
    Balle2020,
    /// <summary>
    /// Mironov, "Renyi Differential Privacy", CSF 2017, Proposition 3: <c>eps = rdp - log(delta) / (alpha - 1)</c>.
    /// What TF-Privacy used until 2020 and early Opacus releases, so their published tutorial figures follow it.
    /// </summary>
    Mironov2017,
}

/// <summary>
/// Renyi differential privacy (RDP) of the sampled Gaussian mechanism (SGM: each record is in a step's batch
/// independently with probability q, the clipped sum gets N(0, sigma^2 C^2) noise), after Mironov, Talwar and
/// Zhang, "Renyi Differential Privacy of the Sampled Gaussian Mechanism" (2019), Sec. 3.3: the RDP at order alpha is
/// <c>log(A_alpha) / (alpha - 1)</c>, with A_alpha a binomial sum for integer alpha and a two-sided series with erfc
/// tails for fractional alpha, both summed in log space. The same computation as Opacus' <c>analysis/rdp.py</c> and
/// TF-Privacy's <c>compute_rdp</c> (add-or-remove-one adjacency); written afresh from the paper and those formulas.
/// </summary>
public static class SampledGaussianRdp
{
    /// <summary>Opacus' and TF-Privacy's default orders: 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63.</summary>
    public static IReadOnlyList<double> DefaultOrders { get; } =
        [.. Enumerable.Range(1, 99).Select(x => 1 + x / 10.0), .. Enumerable.Range(12, 52).Select(x => (double)x)];

    /// <summary>
    /// RDP at order <paramref name="order"/> (&gt; 1, may be infinite) of one step of the SGM with sampling rate
    /// <paramref name="q"/> in [0, 1] and noise multiplier <paramref name="noiseMultiplier"/> (noise std over the
    /// L2 sensitivity, &gt;= 0). q = 0: 0; sigma = 0: infinite; q = 1: the Gaussian mechanism's alpha / (2 sigma^2).
    /// </summary>
    public static double Rdp(double q, double noiseMultiplier, double order)
    {
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "sampling rate must be in [0, 1]");
        if (!(noiseMultiplier >= 0))
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "must be >= 0");
        if (!(order > 1)) throw new ArgumentOutOfRangeException(nameof(order), order, "RDP order must be > 1");
        if (q == 0) return 0;
        if (noiseMultiplier == 0 || double.IsPositiveInfinity(order)) return double.PositiveInfinity;
        if (q == 1) return order / (2 * noiseMultiplier * noiseMultiplier);
        double logA = order == Math.Floor(order)
            ? LogAIntegerOrder(q, noiseMultiplier, (int)order)
            : LogAFractionalOrder(q, noiseMultiplier, order);
        return logA / (order - 1);
    }

    /// <summary>RDP of <paramref name="steps"/> steps of the SGM at each of <paramref name="orders"/> (RDP composes
    /// additively).</summary>
    public static double[] Rdp(double q, double noiseMultiplier, int steps, IReadOnlyList<double> orders)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        return [.. orders.Select(a => steps == 0 ? 0 : Rdp(q, noiseMultiplier, a) * steps)];
    }

    /// <summary>
    /// The smallest epsilon over <paramref name="orders"/> such that the mechanism with RDP <paramref name="rdp"/>
    /// (one value per order) is (epsilon, <paramref name="delta"/>)-DP, and the order attaining it (NaN when every
    /// order gives infinity). Orders whose bound is undefined (alpha = 1) are passed over; epsilon is at least 0, and
    /// exactly 0 where the RDP is so small that delta alone covers it (<c>delta^2 &gt; 1 - exp(-rdp)</c>, as
    /// TF-Privacy: e.g. before any step).
    /// </summary>
    public static (double Epsilon, double Order) Epsilon(IReadOnlyList<double> orders, IReadOnlyList<double> rdp,
        double delta, RdpConversion conversion = RdpConversion.Balle2020)
    {
        if (orders.Count != rdp.Count)
            throw new ArgumentException($"{orders.Count} orders, {rdp.Count} RDP values: one per order", nameof(rdp));
        if (!(delta > 0 && delta < 1))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "delta must be in (0, 1)");
        (double eps, double order) best = (double.PositiveInfinity, double.NaN);
        for (int i = 0; i < orders.Count; i++)
        {
            double a = orders[i], r = rdp[i];
            if (!(a >= 1)) throw new ArgumentOutOfRangeException(nameof(orders), a, "RDP orders must be >= 1");
            if (!(r >= 0)) throw new ArgumentOutOfRangeException(nameof(rdp), r, "RDP values must be >= 0");
            // delta <= sqrt(1 - exp(-KL)) and KL <= RDP: nothing to pay at all (TF-Privacy's shortcut; 0 steps)
            double eps = delta * delta + SpecialFunctions.Expm1(-r) > 0 ? 0 : conversion switch
            {
                RdpConversion.Balle2020 => r - (Math.Log(delta) + Math.Log(a)) / (a - 1) + Math.Log((a - 1) / a),
                RdpConversion.Mironov2017 => r - Math.Log(delta) / (a - 1),
                _ => throw new ArgumentOutOfRangeException(nameof(conversion), conversion, null),
            };
            if (eps < best.eps) best = (eps, a);      // NaN (alpha = 1) never compares smaller
        }
        return (Math.Max(0, best.eps), best.order);
    }

    // A_alpha = sum_{i=0}^{alpha} C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)), integer alpha.
    private static double LogAIntegerOrder(double q, double sigma, int alpha)
    {
        double logA = double.NegativeInfinity;
        for (int i = 0; i <= alpha; i++)
        {
            double term = SpecialFunctions.BinomialLn(alpha, i) + i * Math.Log(q) + (alpha - i) * Math.Log(1 - q)
                + (i * (double)i - i) / (2 * sigma * sigma);
            logA = LogAdd(logA, term);
        }
        return logA;
    }

    // Fractional alpha: A_alpha = A_0 + A_1, the integrals below and above z0 = sigma^2 log(1/q - 1) + 1/2, each a
    // series over i >= 0 with the generalised binomial C(alpha, i) (its sign alternates once i > alpha) and Gaussian
    // tails erfc(...)/2; summed until both terms drop below exp(-30).
    private static double LogAFractionalOrder(double q, double sigma, double alpha)
    {
        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        double z0 = sigma * sigma * Math.Log(1 / q - 1) + 0.5;
        double logAbsCoef = 0, sign = 1;                        // C(alpha, 0) = 1
        for (int i = 0; ; i++)
        {
            if (i > 0)
            {
                double factor = (alpha - i + 1) / i;            // C(alpha, i) = C(alpha, i - 1) (alpha - i + 1) / i
                logAbsCoef += Math.Log(Math.Abs(factor));
                sign *= Math.Sign(factor);
            }
            double j = alpha - i;
            double logT0 = logAbsCoef + i * Math.Log(q) + j * Math.Log(1 - q);
            double logT1 = logAbsCoef + j * Math.Log(q) + i * Math.Log(1 - q);
            double logE0 = Math.Log(0.5) + LogErfc((i - z0) / (Math.Sqrt(2) * sigma));
            double logE1 = Math.Log(0.5) + LogErfc((z0 - j) / (Math.Sqrt(2) * sigma));
            double logS0 = logT0 + (i * (double)i - i) / (2 * sigma * sigma) + logE0;
            double logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
            if (sign > 0) { logA0 = LogAdd(logA0, logS0); logA1 = LogAdd(logA1, logS1); }
            else { logA0 = LogSub(logA0, logS0); logA1 = LogSub(logA1, logS1); }
            if (Math.Max(logS0, logS1) < -30) break;
        }
        return LogAdd(logA0, logA1);
    }

    private static double LogAdd(double x, double y)
    {
        double lo = Math.Min(x, y), hi = Math.Max(x, y);
        return double.IsNegativeInfinity(lo) ? hi : hi + SpecialFunctions.Log1p(Math.Exp(lo - hi));
    }

    // log(exp(x) - exp(y)) for x >= y.
    private static double LogSub(double x, double y)
    {
        if (x < y) throw new ArithmeticException("RDP series: a log-space difference came out negative");
        if (double.IsNegativeInfinity(y)) return x;
        if (x == y) return double.NegativeInfinity;
        double d = x - y;
        return d > 700 ? x : y + Math.Log(SpecialFunctions.Expm1(d));
    }

    /// <summary>log(erfc(x)), accurate where erfc underflows: the asymptotic (Laurent) series beyond x = 10.</summary>
    internal static double LogErfc(double x)
    {
        if (x <= 10) return Math.Log(SpecialFunctions.Erfc(x));
        double x2 = x * x;
        // log erfc(x) = -x^2 - log(x sqrt(pi)) - 1/(2x^2) + 5/(8x^4) - 37/(24x^6) + 353/(64x^8) + O(x^-10)
        return -x2 - Math.Log(x) - 0.5 * Math.Log(Math.PI)
            - 0.5 / x2 + 0.625 / (x2 * x2) - 37.0 / 24.0 / (x2 * x2 * x2) + 353.0 / 64.0 / (x2 * x2 * x2 * x2);
    }
}
