using System.Globalization;
using TorchSharp;

namespace FedNano.Simulation;

/// <summary>
/// libtorch's CPU threads: intra-op (the threads one operation, e.g. a matrix product, is split over) and inter-op
/// (the pool independent operations run on). The threads are chosen by, first to last: the config's <c>threads</c>
/// (<c>--threads</c>), the <c>OMP_NUM_THREADS</c> environment variable, <see cref="Default"/>.
/// </summary>
public static class TorchThreads
{
    private static readonly Lock Gate = new();
    private static bool interOpSet;

    /// <summary>
    /// A quarter of the logical processors (half the physical cores where each core runs two hardware threads), at
    /// least 1: on a machine shared with other jobs, libtorch's own default (every core) oversubscribes it and runs
    /// many times slower (see the README's "Threads" section for the measurement).
    /// </summary>
    public static int Default => Math.Max(1, Environment.ProcessorCount / 4);

    /// <summary>
    /// The threads for a config's <c>threads</c> field (null: <c>OMP_NUM_THREADS</c>, else <see cref="Default"/>).
    /// </summary>
    public static int Resolve(int? threads) =>
        threads ?? (int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), NumberStyles.None,
            CultureInfo.InvariantCulture, out int n) && n > 0 ? n : Default);

    /// <summary>
    /// Sets libtorch's intra-op threads to <see cref="Resolve"/>'s count, and its inter-op threads too the first time
    /// (libtorch fixes the inter-op pool once it has started: later calls leave it as it is). Returns the count.
    /// </summary>
    public static int Apply(int? threads)
    {
        int n = Resolve(threads);
        lock (Gate)
        {
            torch.set_num_threads(n);
            if (!interOpSet)
            {
                interOpSet = true;
                try { torch.set_num_interop_threads(n); }
                catch (Exception) { /* the pool already started (e.g. a second simulation in one process): keep it */ }
            }
        }
        return n;
    }
}
