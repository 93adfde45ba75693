namespace FedNano.Simulation;

/// <summary>
/// Derives independent, reproducible seeds from the run's seed and a purpose (SplitMix64 mixing; unlike
/// <see cref="HashCode"/>, the same in every process).
/// </summary>
internal static class Seeds
{
    public static int Derive(int seed, params long[] parts)
    {
        ulong x = (ulong)(uint)seed;
        foreach (long p in parts) x = Mix(x ^ Mix((ulong)p + 0x9E3779B97F4A7C15UL));
        return (int)(Mix(x) & 0x7FFFFFFF);
    }

    /// <summary>A purpose given as text (stable: FNV-1a, not string.GetHashCode).</summary>
    public static long Purpose(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in name) h = (h ^ c) * 1099511628211UL;
        return (long)h;
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
