using System.Runtime.InteropServices;

namespace FedNano.Simulation;

/// <summary>
/// Keeps the process's resident memory near what its tensors use. glibc's allocator raises its mmap threshold each
/// time it frees a mapped block (up to 32 MiB), after which blocks below that size come from its heap and stay there
/// when freed: a run that allocates and frees activations of many sizes then grows far past its live memory (the
/// <c>mid</c> preset's first evaluation: 6.8 GB resident where about 2 GB were live). Fixing the threshold at 1 MiB
/// makes every larger tensor a mapping of its own that goes back to the system when it is freed.
/// </summary>
public static class HostMemory
{
    private const int MmapThreshold = -3; // glibc's M_MMAP_THRESHOLD

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    /// <summary>Sets the threshold (Linux with glibc; elsewhere nothing). Called where a backbone loads;
    /// idempotent.</summary>
    public static void ReturnLargeBlocksToTheSystem()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallOpt(MmapThreshold, 1 << 20); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc (e.g. musl)
    }
}
