using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Benchmarks;

/// <summary>
/// <c>FedNano.Benchmarks step</c>: times a training step, a Fisher pass and an evaluation batch of one preset on one
/// device, with peak memory and the share of the machine's matrix-multiply rate (measured here) the step reaches.
/// </summary>
internal static class StepBenchmark
{
    private const string Usage =
        "usage: FedNano.Benchmarks step [--preset tiny|mid|llava-1.5-7b] [--model-dir DIR] [--device auto|cpu|cuda] " +
        "[--precision auto|float32|bfloat16|float16] [--batch N] [--warmup N] [--iterations N] " +
        "[--phases train,fisher,eval] [--activation-checkpointing false|true]";

    public static int Run(string[] args)
    {
        var o = new Dictionary<string, string>
        {
            ["preset"] = "tiny", ["device"] = "auto", ["precision"] = "auto", ["batch"] = "16", ["warmup"] = "2",
            ["iterations"] = "5", ["phases"] = "train,fisher,eval", ["activation-checkpointing"] = "false",
        };
        string? modelDir = null;
        for (int i = 0; i < args.Length; i += 2)
        {
            var key = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : "";
            if (!(o.ContainsKey(key) || key == "model-dir") || i + 1 >= args.Length)
                return Fail($"'{args[i]}' is not an option with a value here");
            if (key == "model-dir") modelDir = args[i + 1]; else o[key] = args[i + 1];
        }
        if (!int.TryParse(o["batch"], out int batch) || batch < 1) return Fail($"--batch {o["batch"]} must be >= 1");
        if (!int.TryParse(o["warmup"], out int warmup) || warmup < 1)
            return Fail($"--warmup {o["warmup"]} must be >= 1");
        if (!int.TryParse(o["iterations"], out int iterations) || iterations < 1)
            return Fail($"--iterations {o["iterations"]} must be >= 1");
        var phases = o["phases"].Split(',');
        if (phases.FirstOrDefault(p => p is not ("train" or "fisher" or "eval")) is { } bad)
            return Fail($"--phases: '{bad}' is not train, fisher or eval");
        if (!bool.TryParse(o["activation-checkpointing"], out bool checkpointing))
            return Fail($"--activation-checkpointing {o["activation-checkpointing"]} must be true or false");

        BenchHarness h;
        try { h = BenchHarness.Create(o["preset"], modelDir, o["device"], o["precision"], batch, checkpointing); }
        catch (ConfigException e) { return Fail(e.Message); }
        using var _ = h;
        var device = h.Where.Device;
        using var gpu = device.type == DeviceType.CUDA ? Nvml.Open(device.index < 0 ? 0 : device.index) : null;

        var t = h.Config.TextConfig;
        int trainLen = h.Batch.Max(s => s.PromptIds.Length + s.TargetIds.Length);
        int evalLen = h.Batch.Max(s => s.PromptIds.Length);
        int targets = h.Batch.Sum(s => s.TargetIds.Length);
        var preset = o["preset"] + (modelDir is null ? "" : $" ({modelDir})");
        Console.WriteLine($"FedNano.Benchmarks step: preset {preset}, " +
                          $"{device} {h.Where.FrozenDType}, batch {batch}, activation checkpointing {checkpointing}, " +
                          $"torch threads {get_num_threads()}, " +
                          $"{warmup} warm-up + {iterations} timed iterations per phase");
        var gpuName = gpu?.Name is { } name ? name + ", " : "";
        Console.WriteLine($"machine: {gpuName}{CpuName()} ({Environment.ProcessorCount} cores), " +
                          $"{RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        Console.WriteLine($"backbone: {h.FrozenParameters:N0} frozen parameters, " +
                          $"{h.AdapterParameters:N0} adapter parameters; " +
                          $"prompts {h.Batch.Min(s => s.PromptIds.Length)}-{evalLen} tokens " +
                          $"({h.Config.ImageTokens} visual), train sequences {trainLen}");

        var (before, n) = MatmulRate(device, h.Where.FrozenDType);
        var rows = new List<(string Phase, double Median, double Min, double Flops, string Peak)>();
        foreach (var phase in phases)
        {
            // model FLOPs: the frozen LLM's matmuls; a backward to the inputs only costs about a forward again
            var (op, flops) = phase switch
            {
                "train" => ((Action)(() => h.TrainStep()), 2 * LlmForwardFlops(t, batch, trainLen, targets)),
                "fisher" => (h.FisherPass, 2 * LlmForwardFlops(t, batch, trainLen, targets)),
                _ => ((Action)(() => h.EvaluateBatch()), LlmForwardFlops(t, batch, evalLen, batch)),
            };
            for (int i = 0; i < warmup; i++) op(); // the first fills the visual-token cache
            var times = new List<double>();
            using var peak = new PeakMemory(device.type == DeviceType.CUDA, gpu);
            for (int i = 0; i < iterations; i++)
            {
                var sw = Stopwatch.StartNew();
                op();
                if (device.type == DeviceType.CUDA) cuda.synchronize();
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            rows.Add((phase, times[times.Count / 2], times[0], flops, peak.Report()));
        }
        // measured before and after the phases: on a shared machine the rate moves with the load
        var (after, _) = MatmulRate(device, h.Where.FrozenDType);
        double rate = Math.Max(before, after);
        Console.WriteLine($"matmul rate: {rate / 1e9:N1} GFLOP/s ({h.Where.FrozenDType} {n}x{n} by {n}x{n}; " +
                          $"best run before the phases {before / 1e9:N1}, after {after / 1e9:N1})");
        Console.WriteLine();
        Console.WriteLine("| phase | ms/step (median) | min ms | samples/s | GFLOP/step | GFLOP/s | of matmul rate " +
                          "| peak memory |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var (phase, median, min, flops, peak) in rows)
        {
            double achieved = flops / (median / 1e3);
            Console.WriteLine($"| {phase} | {median:N1} | {min:N1} | {batch / (median / 1e3):N2} | " +
                              $"{flops / 1e9:N1} | " +
                              $"{achieved / 1e9:N1} | {achieved / rate:P1} | {peak} |");
        }
        return 0;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine(Usage);
        return 2;
    }

    /// <summary>
    /// FLOPs of the LLM's forward on <paramref name="batch"/> sequences of <paramref name="len"/> tokens: 2 per
    /// multiply-add of every block's linears, attention scores and weighted sum in full (no causal halving), and the
    /// LM head at <paramref name="headPositions"/> positions. Embedding lookups, norms and the adapters are left out.
    /// </summary>
    internal static double LlmForwardFlops(Models.LlamaConfig t, int batch, int len, int headPositions)
    {
        double d = t.HiddenSize, q = t.NumAttentionHeads * t.HeadDim, kv = t.KeyValueHeads * t.HeadDim;
        double tokens = (double)batch * len;
        double linears = 2 * tokens * (d * q + 2 * d * kv + q * d + 3 * d * t.IntermediateSize);
        double attention = 4.0 * batch * len * len * q;
        return t.NumHiddenLayers * (linears + attention) + 2.0 * headPositions * d * t.VocabSize;
    }

    /// <summary>Best rate of an n x n by n x n matmul in <paramref name="dtype"/> over 5 timed runs.</summary>
    private static (double FlopsPerSecond, int N) MatmulRate(Device device, ScalarType dtype)
    {
        bool gpu = device.type == DeviceType.CUDA;
        int n = gpu ? 8192 : 2048, reps = gpu ? 20 : 1;
        using var scope = NewDisposeScope();
        var a = randn([n, n], dtype: dtype, device: device);
        var b = randn([n, n], dtype: dtype, device: device);
        double best = 0;
        for (int run = 0; run < 6; run++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) a.matmul(b).Dispose();
            if (gpu) cuda.synchronize();
            if (run > 0) best = Math.Max(best, 2.0 * n * n * n * reps / sw.Elapsed.TotalSeconds);
        }
        return (best, n);
    }

    private static string CpuName() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?
                  .Split(':', 2)[1].Trim() ?? "CPU"
            : "CPU";

    /// <summary>
    /// Peak memory while it is alive. CPU: the process's peak resident set (VmHWM of /proc/self/status, reset at the
    /// start by writing 5 to /proc/self/clear_refs), which includes the weights. CUDA: the most device memory in use
    /// (NVML, as nvidia-smi shows it: every process on the GPU, the CUDA context and libtorch's cached blocks — a
    /// cache that is never emptied, so a later phase's peak includes an earlier phase's reserve; run one phase per
    /// process with --phases for each phase's own). TorchSharp 0.107 exposes no CUDA allocator statistics.
    /// </summary>
    private sealed class PeakMemory : IDisposable
    {
        private readonly bool cuda;
        private readonly Nvml? gpu;
        private readonly Thread? sampler;
        private volatile bool running = true;
        private ulong peakGpu;
        private readonly long startRss;

        public PeakMemory(bool cuda, Nvml? gpu)
        {
            (this.cuda, this.gpu) = (cuda, gpu);
            if (cuda && gpu is null) return;
            if (gpu is null)
            {
                try { File.WriteAllText("/proc/self/clear_refs", "5"); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                startRss = Status("VmRSS");
                return;
            }
            peakGpu = gpu.Used();
            sampler = new Thread(() =>
            {
                while (running) { peakGpu = Math.Max(peakGpu, gpu.Used()); Thread.Sleep(5); }
            }) { IsBackground = true };
            sampler.Start();
        }

        public string Report()
        {
            if (cuda && gpu is null) return "n/a (NVML, libnvidia-ml.so.1, not loadable)";
            if (gpu is null)
            {
                long peak = Status("VmHWM");
                return $"{peak / 1048576.0:N2} GiB RSS (+{Math.Max(0, peak - startRss) / 1048576.0:N2} over the start)";
            }
            running = false;
            sampler!.Join();
            peakGpu = Math.Max(peakGpu, gpu.Used());
            return $"{peakGpu / 1073741824.0:N2} GiB in use on the GPU (NVML)";
        }

        public void Dispose() { running = false; sampler?.Join(); }

        /// <summary>A /proc/self/status field in kB (-1 when there is none).</summary>
        private static long Status(string field)
        {
            const string path = "/proc/self/status";
            var line = File.Exists(path)
                ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal)) : null;
            return line is null ? -1 : long.Parse(line.Split(':')[1].Trim().Split(' ')[0]);
        }
    }

    /// <summary>Device memory in use and the GPU's name, from NVIDIA's management library.</summary>
    private sealed class Nvml : IDisposable
    {
        private const string Lib = "libnvidia-ml.so.1";
        private readonly IntPtr handle;

        private Nvml(IntPtr handle, string name) { this.handle = handle; Name = name; }

        public string Name { get; }

        /// <summary>NVML on GPU <paramref name="index"/> (NVML's numbering); null where it is not loadable.</summary>
        public static Nvml? Open(int index)
        {
            try
            {
                if (nvmlInit_v2() != 0 || nvmlDeviceGetHandleByIndex_v2((uint)index, out var h) != 0) return null;
                var name = new byte[96];
                return new Nvml(h, nvmlDeviceGetName(h, name, (uint)name.Length) == 0
                    ? System.Text.Encoding.ASCII.GetString(name).TrimEnd('\0') : "GPU");
            }
            catch (DllNotFoundException) { return null; }
        }

        public ulong Used() => nvmlDeviceGetMemoryInfo(handle, out var m) == 0 ? m.Used : 0;

        public void Dispose() => nvmlShutdown();

        [StructLayout(LayoutKind.Sequential)]
        private struct Memory { public ulong Total, Free, Used; }

        [DllImport(Lib)] private static extern int nvmlInit_v2();
        [DllImport(Lib)] private static extern int nvmlShutdown();
        [DllImport(Lib)] private static extern int nvmlDeviceGetHandleByIndex_v2(uint index, out IntPtr device);
        [DllImport(Lib)] private static extern int nvmlDeviceGetName(IntPtr device, byte[] name, uint length);
        [DllImport(Lib)] private static extern int nvmlDeviceGetMemoryInfo(IntPtr device, out Memory memory);
    }
}
