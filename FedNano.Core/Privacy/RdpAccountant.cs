namespace FedNano.Privacy;

/// <summary>Steps of the sampled Gaussian mechanism with one sampling rate and noise multiplier.</summary>
/// <param name="SampleRate">Probability q that a record is in a step's batch (batch size / local samples).</param>
/// <param name="NoiseMultiplier">Noise std over the clipping norm, sigma.</param>
/// <param name="Steps">Number of such steps.</param>
public sealed record SgmSteps(double SampleRate, double NoiseMultiplier, int Steps);

/// <summary>
/// A privacy accountant for one party (e.g. one client's DP-SGD): records the sampled Gaussian mechanism steps it
/// ran and reports the (epsilon, delta) guarantee of all of them together, by RDP composition
/// (<see cref="SampledGaussianRdp"/>) and <see cref="RdpConversion.Balle2020"/>, as Opacus'
/// <c>RDPAccountant</c>. <see cref="History"/> is all the state there is: a checkpoint stores it and
/// <see cref="RdpAccountant(IEnumerable{SgmSteps}, IReadOnlyList{double}?)"/> restores it.
/// </summary>
public sealed class RdpAccountant
{
    private readonly List<SgmSteps> history = [];
    private readonly double[] rdp;

    /// <summary>An accountant over <paramref name="orders"/> (default: <see cref="SampledGaussianRdp.DefaultOrders"/>).
    /// </summary>
    public RdpAccountant(IReadOnlyList<double>? orders = null)
    {
        Orders = orders ?? SampledGaussianRdp.DefaultOrders;
        rdp = new double[Orders.Count];
    }

    /// <summary>An accountant that has already run <paramref name="history"/> (e.g. read from a checkpoint).</summary>
    public RdpAccountant(IEnumerable<SgmSteps> history, IReadOnlyList<double>? orders = null) : this(orders)
    {
        foreach (var s in history) Step(s.SampleRate, s.NoiseMultiplier, s.Steps);
    }

    /// <summary>The RDP orders the guarantee is optimised over.</summary>
    public IReadOnlyList<double> Orders { get; }

    /// <summary>The steps recorded so far (consecutive steps with the same parameters merged).</summary>
    public IReadOnlyList<SgmSteps> History => history;

    /// <summary>The composed RDP so far, one value per order.</summary>
    public IReadOnlyList<double> Rdp => rdp;

    /// <summary>Records <paramref name="steps"/> steps with sampling rate q and noise multiplier sigma.</summary>
    public void Step(double sampleRate, double noiseMultiplier, int steps = 1)
    {
        var add = SampledGaussianRdp.Rdp(sampleRate, noiseMultiplier, steps, Orders);
        for (int i = 0; i < rdp.Length; i++) rdp[i] += add[i];
        if (history.Count > 0 && history[^1] is var last
            && last.SampleRate == sampleRate && last.NoiseMultiplier == noiseMultiplier)
            history[^1] = last with { Steps = last.Steps + steps };
        else history.Add(new SgmSteps(sampleRate, noiseMultiplier, steps));
    }

    /// <summary>Epsilon of everything recorded at <paramref name="delta"/> (0 before any step), and the best order.
    /// </summary>
    public (double Epsilon, double Order) GetPrivacySpent(double delta,
        RdpConversion conversion = RdpConversion.Balle2020) =>
        SampledGaussianRdp.Epsilon(Orders, rdp, delta, conversion);

    /// <summary>Epsilon of everything recorded at <paramref name="delta"/>.</summary>
    public double Epsilon(double delta) => GetPrivacySpent(delta).Epsilon;
}
