using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using FedNano.Checkpoints;
using FedNano.Edge;
using FedNano.Simulation;
using static TorchSharp.torch;

namespace FedNano.Experiments;

/// <summary>Where a run stands: the methods it has finished and the state of the one under way (if any).</summary>
/// <param name="Step">Checkpoints written before this one in the run (1 for the first).</param>
/// <param name="Completed">Results of the finished methods, in run order (zero-shot first).</param>
/// <param name="Current">State of the method under way after its last complete round, or null between methods.</param>
public sealed record RunProgress(int Step, IReadOnlyList<MethodResult> Completed, SimulationState? Current);

/// <summary>
/// The checkpoints of a run folder: after every round, <c>checkpoints/step-NNNNNN/</c> holds <c>tensors.safetensors</c>
/// (global adapters <c>global/*</c>, every client's private state <c>client/K/*</c>, the torch generator
/// <c>rng/torch</c>) and <c>state.json</c> (round, rows so far, finished methods, the final predictions, the tensors'
/// SHA-256). A checkpoint is written into a hidden temporary folder and renamed into place, so a kill leaves either
/// the whole checkpoint or none; the last two are kept. Loading takes the newest one that checks out and reports
/// (never uses) the ones that do not.
/// </summary>
public static class RunCheckpoints
{
    /// <summary>Folder of the checkpoints inside a run folder.</summary>
    public const string Folder = "checkpoints";
    private const int Format = 1;
    private const int Keep = 2;

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private sealed record PredictionEntry(string Id, int Predicted, string? Text, bool Correct, double Loss);
    private sealed record MethodEntry(string Method, int Round, int[] ClientStates, List<RoundResult> Rows,
        List<List<PredictionEntry>> Final);
    private sealed record StateFile(int Format, int Step, string TensorsSha256, List<MethodEntry> Completed,
        MethodEntry? Current)
    {
        /// <summary>SHA-256 of the config's JSON the checkpoint belongs to (null in checkpoints made before it was
        /// recorded).</summary>
        public string? ConfigSha256 { get; init; }
        /// <summary>That config, to name the fields that differ.</summary>
        public System.Text.Json.Nodes.JsonObject? Config { get; init; }
    }

    /// <summary>The checkpoint folders of a run, oldest first.</summary>
    public static IReadOnlyList<string> List(string runDir)
    {
        string dir = Path.Combine(runDir, Folder);
        return Directory.Exists(dir)
            ? Directory.GetDirectories(dir, "step-*").Order(StringComparer.Ordinal).ToArray()
            : [];
    }

    /// <summary>
    /// Writes checkpoint number <paramref name="step"/> of a run of <paramref name="config"/> (write, then rename) and
    /// deletes all but the last two.
    /// </summary>
    public static void Save(string runDir, int step, IReadOnlyList<MethodResult> completed, SimulationState current,
        SimulationConfig config)
    {
        string root = Path.Combine(runDir, Folder);
        Directory.CreateDirectory(root);
        string name = $"step-{step.ToString("D6", CultureInfo.InvariantCulture)}";
        string tmp = Path.Combine(root, $".{name}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(tmp);
        try
        {
            using var rng = random.get_rng_state();
            var tensors = current.Global.Tensors.Select(p => KeyValuePair.Create("global/" + p.Key, p.Value))
                .Concat(current.Clients.OrderBy(c => c.Key).SelectMany(c => c.Value.Tensors
                    .Select(p => KeyValuePair.Create($"client/{c.Key}/{p.Key}", p.Value))))
                .Append(KeyValuePair.Create("rng/torch", rng));
            string tensorsPath = Path.Combine(tmp, "tensors.safetensors");
            SafetensorsFile.Save(tensorsPath, tensors);
            var state = new StateFile(Format, step, Sha256(tensorsPath),
                completed.Select(m => Entry(m.Method, m.Rounds.Count == 0 ? 0 : m.Rounds.Max(r => r.Round), [],
                    m.Rounds, m.Final)).ToList(),
                Entry(current.Method, current.Round, current.Clients.Keys.Order().ToArray(), current.Rows,
                    current.Final))
            {
                ConfigSha256 = ConfigSha256(config),
                Config = System.Text.Json.Nodes.JsonNode.Parse(config.ToJson())!.AsObject(),
            };
            File.WriteAllText(Path.Combine(tmp, "state.json"), JsonSerializer.Serialize(state, Json));
            string target = Path.Combine(root, name);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            Directory.Move(tmp, target);
        }
        finally { if (Directory.Exists(tmp)) Directory.Delete(tmp, true); }
        foreach (var old in List(runDir).SkipLast(Keep)) Directory.Delete(old, true);
    }

    /// <summary>
    /// The newest checkpoint of <paramref name="runDir"/> that checks out (files present, tensors matching their
    /// recorded SHA-256, methods in <paramref name="methods"/>' order, predictions of samples <paramref name="data"/>
    /// has), with its tensors on <paramref name="device"/>; null when there is none. Every checkpoint passed over
    /// is reported through <paramref name="warn"/> with the reason and moved aside (<c>checkpoints/.unusable-*</c>), so
    /// the keep-two rule never deletes a good checkpoint for them. Unfinished temporary folders are deleted. A
    /// checkpoint of another config than <paramref name="config"/> is refused (<see cref="CheckpointException"/>
    /// naming the fields that differ), never continued with the new settings.
    /// </summary>
    public static RunProgress? LoadLatest(string runDir, IReadOnlyList<string> methods, FederatedData data,
        Device device, Action<string> warn, SimulationConfig config)
    {
        string root = Path.Combine(runDir, Folder);
        if (Directory.Exists(root))
            foreach (var tmp in Directory.GetDirectories(root, ".step-*.tmp"))
            {
                warn($"{tmp}: a checkpoint left half-written by an interrupted run; deleted");
                Directory.Delete(tmp, true);
            }
        foreach (var dir in List(runDir).Reverse())
        {
            try { return Load(dir, methods, data, device, config); }
            catch (Exception e) when (e is ConfigException or JsonException or IOException or InvalidDataException
                                          or KeyNotFoundException or ArgumentException)
            {
                string aside = Path.Combine(root, $".unusable-{Path.GetFileName(dir)}-{Guid.NewGuid():N}");
                Directory.Move(dir, aside);
                warn($"checkpoint {dir} is unusable ({e.Message}); moved aside to {aside}, " +
                     $"falling back to an older one");
            }
        }
        return null;
    }

    /// <summary>SHA-256 of a config's JSON: what binds a checkpoint to the config it was made with.</summary>
    internal static string ConfigSha256(SimulationConfig config) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(config.ToJson())));

    private static RunProgress Load(string dir, IReadOnlyList<string> methods, FederatedData data, Device device,
        SimulationConfig config)
    {
        string statePath = Path.Combine(dir, "state.json"), tensorsPath = Path.Combine(dir, "tensors.safetensors");
        if (!File.Exists(statePath)) throw new InvalidDataException("state.json is missing");
        var state = JsonSerializer.Deserialize<StateFile>(File.ReadAllText(statePath), Json)
            ?? throw new InvalidDataException("state.json holds null");
        if (state.Format != Format)
            throw new InvalidDataException($"checkpoint format {state.Format}, this version reads {Format}");
        if (state.ConfigSha256 is { } hash && hash != ConfigSha256(config))
        {
            var then = state.Config?.Deserialize<SimulationConfig>();
            string fields = then is null
                ? "config unreadable"
                : string.Join("; ", ConfigDiff.Describe(then, config, "in the checkpoint"));
            throw new CheckpointException(
                $"{dir} was made with another config than the run's config.json ({fields}); " +
                "restore config.json as it was, or start a new run in another folder");
        }
        if (!File.Exists(tensorsPath)) throw new InvalidDataException("tensors.safetensors is missing");
        string sha = Sha256(tensorsPath);
        if (sha != state.TensorsSha256)
            throw new InvalidDataException(
                $"tensors.safetensors does not match its recorded SHA-256 (corrupt or partly written)");
        var order = state.Completed.Select(m => m.Method)
            .Concat(state.Current is null ? [] : [state.Current.Method]).ToArray();
        if (!order.SequenceEqual(methods.Take(order.Length)))
            throw new InvalidDataException($"it holds methods {string.Join(", ", order)}, " +
                                           $"but the run's order is {string.Join(", ", methods)}");

        var byId = data.Clients.Select(c => c.Test.ToDictionary(s => s.Id)).ToArray();
        var completed = state.Completed.Select(m => new MethodResult(m.Method, m.Rows, Final(m, byId))).ToList();
        SimulationState? current = null;
        if (state.Current is { } cur)
        {
            var file = SafetensorsFile.Open(tensorsPath);
            AdapterState Read(string prefix) => new(file.Entries.Keys
                .Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(k => k[prefix.Length..], k => { using var t = file.Read(k); return t.to(device); }));
            var global = Read("global/");
            if (global.Tensors.Count == 0) throw new InvalidDataException("no global adapters in tensors.safetensors");
            var clients = cur.ClientStates.ToDictionary(k => k, k => Read($"client/{k}/"));
            using (var rng = file.Read("rng/torch")) random.set_rng_state(rng);
            current = new SimulationState(cur.Method, cur.Round, global, clients, cur.Rows, Final(cur, byId));
        }
        return new RunProgress(state.Step, completed, current);
    }

    private static MethodEntry Entry(string method, int round, int[] clients, IEnumerable<RoundResult> rows,
        IReadOnlyList<IReadOnlyList<Prediction>> final) =>
        new(method, round, clients, rows.ToList(),
            final.Select(p => p.Select(x =>
                new PredictionEntry(x.Sample.Id, x.Predicted, x.PredictedText, x.Correct, x.Loss)).ToList()).ToList());

    private static IReadOnlyList<IReadOnlyList<Prediction>> Final(MethodEntry m,
        Dictionary<string, Data.MultimodalSample>[] byId)
    {
        if (m.Final.Count != byId.Length && m.Final.Count != 0)
            throw new InvalidDataException(
                $"method {m.Method}: predictions for {m.Final.Count} clients, the run has {byId.Length}");
        return m.Final.Select((p, k) => (IReadOnlyList<Prediction>)p.Select(x =>
            new Prediction(byId[k].TryGetValue(x.Id, out var s)
                    ? s
                    : throw new InvalidDataException($"method {m.Method}: client {k} has no test sample " +
                                                     $"'{x.Id}' (the checkpoint was made from other data)"),
                x.Predicted, x.Text, x.Correct, x.Loss)).ToList()).ToList();
    }

    private static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
