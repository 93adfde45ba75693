using System.Reflection;
using System.Text.Json;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>What the caller of <see cref="RunFolder.Run"/> wants to hear of and can stop.</summary>
public sealed class RunHooks
{
    /// <summary>Notes and warnings (e.g. a corrupt checkpoint passed over).</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Called once the simulation is built, with the methods in run order and the checkpoint it continues
    /// from (null: from the start).</summary>
    public Action<FederatedSimulation, IReadOnlyList<string>, RunProgress?>? Started { get; init; }
    /// <summary>Called after every round.</summary>
    public Action<SimulationProgress>? Progress { get; init; }
    /// <summary>Called when a method has finished (zero-shot included), with its result.</summary>
    public Action<MethodResult>? MethodFinished { get; init; }
    /// <summary>Checked after every round's checkpoint is written: the run stops there with
    /// <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken Cancel { get; init; }
}

/// <summary>What a run folder ended with.</summary>
/// <param name="Directory">The run folder.</param>
/// <param name="AlreadyFinished">The folder held a finished run of the same config: nothing was run and
/// <paramref name="Results"/> is empty.</param>
/// <param name="Results">Every method's result, zero-shot first.</param>
/// <param name="AdapterParameterCount">Adapter parameters one client uploads per round.</param>
/// <param name="ModelParameters">Parameters of the whole MLLM (0 when nothing was run).</param>
/// <param name="ResumedFromStep">The checkpoint the run continued from (0: it started from the beginning).</param>
public sealed record RunOutcome(string Directory, bool AlreadyFinished, IReadOnlyList<MethodResult> Results,
    long AdapterParameterCount, long ModelParameters, int ResumedFromStep);

/// <summary>What <c>run.json</c> records about how a run was made.</summary>
/// <param name="Status"><c>running</c>, <c>finished</c> or <c>failed</c> (see <see cref="RunInfo.Error"/>).</param>
/// <param name="Version">FedNano.Core's version.</param>
/// <param name="Seed">The run's seed (every random draw derives from it).</param>
/// <param name="Machine">Host name.</param>
/// <param name="Os">Operating system.</param>
/// <param name="Runtime">.NET runtime.</param>
/// <param name="Threads">libtorch intra-op threads (see <see cref="TorchThreads"/>).</param>
/// <param name="InteropThreads">libtorch inter-op threads.</param>
/// <param name="Backbone">Backbone preset.</param>
/// <param name="Device">Device the adapters ran on.</param>
/// <param name="Precision">Element type of the frozen backbone.</param>
/// <param name="Started">When the run was first started (UTC, ISO 8601).</param>
/// <param name="Finished">When it finished (null while running).</param>
/// <param name="Resumes">Each time it was continued from a checkpoint: when, and from which checkpoint step.</param>
public sealed record RunInfo(string Status, string Version, int Seed, string Machine, string Os, string Runtime,
    int Threads, int InteropThreads, string Backbone, string Device, string Precision,
    string Started, string? Finished, IReadOnlyList<string> Resumes)
{
    /// <summary>Why the run stopped, when <see cref="Status"/> is <c>failed</c> (it continues from its last checkpoint
    /// with <c>--resume</c>).</summary>
    public string? Error { get; init; }
}

/// <summary>
/// Runs a config into a folder, resumably. The folder holds <c>config.json</c> (written first), <c>run.json</c>
/// (version, seed, machine, threads, device; status), <c>checkpoints/</c> (after every round, see
/// <see cref="RunCheckpoints"/>) and, once finished, <c>rounds.csv</c> and <c>summary.csv</c>. Every file is written
/// to a temporary name and renamed. Running into a folder that holds an unfinished run of the same config continues
/// it from its last complete round; a folder of another config is refused with the fields that differ.
/// </summary>
public static class RunFolder
{
    /// <summary>File names inside a run folder.</summary>
    public const string ConfigFile = "config.json", InfoFile = "run.json", RoundsFile = "rounds.csv",
        SummaryFile = "summary.csv", BreakdownFile = "breakdown.csv";

    /// <summary>
    /// Accuracy per category (the data set's <see cref="Data.IFederatedDataset.Breakdown"/>, e.g. ScienceQA's) for
    /// each method, then with <c>missing_modality</c> the accuracy by modality
    /// (<see cref="Evaluation.Breakdowns.ByModality"/>); empty for none.
    /// </summary>
    public static IReadOnlyList<(string Method, IReadOnlyList<Evaluation.CategoryAccuracy> Rows)> Breakdowns(
        SimulationConfig config, IEnumerable<MethodResult> results) =>
        results.Select(r => (r.Method, Rows: (IReadOnlyList<Evaluation.CategoryAccuracy>)[
                .. Data.DatasetRegistry.Find(config.Dataset)?.Breakdown(r.FinalRecords) ?? [],
                .. config.MissingModality is null ? [] : Evaluation.Breakdowns.ByModality(r.Final
                    .Select(p => p.Select(x => new Evaluation.PredictionRecord(x.Sample, x.Predicted, x.PredictedText,
                        x.Correct)).ToArray()).ToArray()),
            ]))
            .Where(b => b.Rows.Count > 0).ToArray();

    /// <summary>Key in <see cref="Exception.Data"/> of the run folder a failure was recorded in (marked failed in
    /// run.json).</summary>
    public const string FailedFolderKey = "fednano.run_folder";

    /// <summary>
    /// Whether <paramref name="e"/> is an allocation failure: .NET's <see cref="OutOfMemoryException"/> or libtorch's
    /// (CUDA "out of memory", the CPU's "DefaultCPUAllocator: can't allocate memory").
    /// </summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("DefaultCPUAllocator", StringComparison.Ordinal)
        || e.Message.Contains("can't allocate memory", StringComparison.Ordinal);

    /// <summary>
    /// Fault injection for tests: after checkpoint number N is written, ask libtorch for an impossible allocation, so
    /// the run fails exactly as a real out-of-memory does. Set by tests, or from <c>FEDNANO_INJECT_OOM_AT_STEP</c>.
    /// </summary>
    internal static int? InjectOutOfMemoryAtStep { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("FEDNANO_INJECT_OOM_AT_STEP"), out int s) ? s : null;

    private static readonly JsonSerializerOptions InfoJson = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower
    };

    /// <summary>
    /// Whether <paramref name="dir"/> holds a finished run: run.json says so and both CSV files hold every row the
    /// config implies (a folder whose files are cut short is not finished: running it again rewrites them).
    /// </summary>
    public static bool IsFinished(string dir) => ReadInfo(dir)?.Status == "finished" && RunResults.IsComplete(dir);

    /// <summary>The <c>run.json</c> of a folder, or null if it has none or it cannot be read.</summary>
    public static RunInfo? ReadInfo(string dir)
    {
        string path = Path.Combine(dir, InfoFile);
        try { return File.Exists(path) ? JsonSerializer.Deserialize<RunInfo>(File.ReadAllText(path), InfoJson) : null; }
        catch (JsonException) { return null; }
    }

    /// <summary>The config a run folder was made with.</summary>
    public static SimulationConfig LoadConfig(string dir)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new ConfigException($"{dir} is not a run folder: it has no {ConfigFile}");
        return SimulationConfig.Load(path);
    }

    /// <summary>Runs (or continues) <paramref name="config"/> in <paramref name="dir"/>; see the class
    /// summary.</summary>
    public static RunOutcome Run(SimulationConfig config, string dir, RunHooks? hooks = null)
    {
        hooks ??= new RunHooks();
        config.Validate();
        string configPath = Path.Combine(dir, ConfigFile);
        bool existing = File.Exists(configPath);
        if (existing)
        {
            var diffs = ConfigDiff.Describe(LoadConfig(dir), config);
            if (diffs.Count > 0)
                throw new ConfigException($"{dir} holds a run of a different config ({string.Join("; ", diffs)}); " +
                                          $"continue it with its own config (fednano run --resume {dir}) " +
                                          "or choose another folder");
            if (IsFinished(dir)) return new RunOutcome(dir, true, [], 0, 0, 0);
        }
        else if (File.Exists(dir) || (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()))
            throw new ConfigException($"{dir} is not empty and has no {ConfigFile}, so it is not a run folder; " +
                                      "choose an empty or new folder");

        string[] methods = [MethodCatalog.ZeroShot, .. MethodCatalog.Expand(config.Methods)];
        var log = hooks.Log ?? (_ => { });
        var sim = Experiment.Create(config, log);     // bad data or backbone fails here, before anything is written
        Directory.CreateDirectory(dir);
        if (!existing) WriteAtomic(configPath, config.ToJson());
        var progress = RunCheckpoints.LoadLatest(dir, methods, sim.Data, sim.Edge.Device, log, config);
        var before = ReadInfo(dir);
        string infoPath = Path.Combine(dir, InfoFile);
        if (before is null && File.Exists(infoPath))
        {
            string aside = $"{infoPath}.unreadable-{DateTime.UtcNow:yyyyMMdd-HHmmss}";
            File.Move(infoPath, aside);
            log($"{infoPath} could not be read; moved aside to {aside} and started afresh");
        }
        string now = DateTime.UtcNow.ToString("o");
        var resumes = (before?.Resumes ?? [])
            .Concat(progress is null ? [] : [$"{now} from step {progress.Step}"]).ToArray();
        WriteInfo(dir, Info(config, sim, "running", before?.Started ?? now, null, resumes));
        hooks.Started?.Invoke(sim, methods, progress);

        var results = new List<MethodResult>(progress?.Completed ?? []);
        int step = progress?.Step ?? 0;
        void Checkpoint(SimulationState s)
        {
            RunCheckpoints.Save(dir, ++step, results, s, config);
            if (step == InjectOutOfMemoryAtStep)
                TorchSharp.torch.empty(1L << 60, TorchSharp.torch.ScalarType.Byte).Dispose();
            hooks.Cancel.ThrowIfCancellationRequested();
        }
        void OnProgress(SimulationProgress p) => hooks.Progress?.Invoke(p);
        sim.Progress += OnProgress;
        try
        {
            for (int i = results.Count; i < methods.Length; i++)
            {
                var start = progress?.Current is { } c && c.Method == methods[i] ? c : null;
                try { results.Add(sim.Run(methods[i], start, Checkpoint)); hooks.MethodFinished?.Invoke(results[^1]); }
                finally
                {
                    start?.Global.Dispose();
                    foreach (var s in start?.Clients.Values ?? []) s.Dispose();
                }
            }
            ResultFiles.Write(Path.Combine(dir, RoundsFile), ResultFiles.Rounds(results));
            ResultFiles.Write(Path.Combine(dir, SummaryFile), ResultFiles.Summary(results, sim.Architecture.Total));
            if (config.IsRealDataset || config.MissingModality is not null)
                Evaluation.Breakdowns.WriteCsv(Path.Combine(dir, BreakdownFile), Breakdowns(config, results));
            if (config.IsRealDataset)
            {
                foreach (var res in results)
                    Evaluation.Breakdowns.WriteResultsJson(Path.Combine(dir, $"predictions-{res.Method}.json"),
                        res.FinalRecords);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // what stopped the run goes into run.json; the checkpoints stay, so --resume continues from the last one
            try
            {
                WriteInfo(dir, Info(config, sim, "failed", before?.Started ?? now, null, resumes)
                    with { Error = e.Message.ReplaceLineEndings(" ") });
                e.Data[FailedFolderKey] = dir;
            }
            catch (Exception)
            {
                /* the folder itself may be what failed (disk full, removed); the original error matters */
            }
            throw;
        }
        finally { sim.Progress -= OnProgress; }
        WriteInfo(dir, Info(config, sim, "finished", before?.Started ?? now, DateTime.UtcNow.ToString("o"), resumes));
        return new RunOutcome(dir, false, results, sim.AdapterParameterCount, sim.Architecture.Total,
            progress?.Step ?? 0);
    }

    private static RunInfo Info(SimulationConfig config, FederatedSimulation sim, string status, string started,
        string? finished, string[] resumes) => new(
        status,
        typeof(RunFolder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? "unknown",
        config.Seed, Environment.MachineName, System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, TorchSharp.torch.get_num_threads(),
        TorchSharp.torch.get_num_interop_threads(),
        config.Backbone, sim.Edge.Device.ToString(), sim.Edge.FrozenParameters().First().parameter.dtype.ToString(),
        started, finished, resumes);

    private static void WriteInfo(string dir, RunInfo info) =>
        WriteAtomic(Path.Combine(dir, InfoFile), JsonSerializer.Serialize(info, InfoJson));

    internal static void WriteAtomic(string path, string text)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
