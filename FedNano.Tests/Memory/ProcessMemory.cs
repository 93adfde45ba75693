using System.Runtime.InteropServices;

namespace FedNano.Tests.Memory;

/// <summary>This process's resident memory from <c>/proc/self/status</c> (Linux), with the peak resettable.</summary>
internal static class ProcessMemory
{
    public static bool Available => File.Exists("/proc/self/clear_refs");

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>
    /// Returns freed heap memory to the system (glibc keeps it otherwise, so a later peak would not show) and resets
    /// the peak (VmHWM) to the resident size that is left.
    /// </summary>
    public static void ResetPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MallocTrim(0);
        File.WriteAllText("/proc/self/clear_refs", "5");
    }

    /// <summary>Resident bytes now (VmRSS).</summary>
    public static long Current => Read("VmRSS:");

    /// <summary>Peak resident bytes since the last reset (VmHWM).</summary>
    public static long Peak => Read("VmHWM:");

    private static long Read(string key) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key))[key.Length..]
            .Trim().Split(' ')[0]) * 1024;

    /// <summary>How far the peak rises above the resident size while <paramref name="work"/> runs.</summary>
    public static long PeakRise(Action work)
    {
        ResetPeak();
        long before = Current;
        work();
        return Peak - before;
    }
}
