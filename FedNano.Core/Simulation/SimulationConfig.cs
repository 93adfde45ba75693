using System.Text.Json;
using System.Text.Json.Serialization;
using FedNano.Adapters;

namespace FedNano.Simulation;

/// <summary>Settings of the FedDPA-F baseline.</summary>
public sealed record FedDpaConfig
{
    /// <summary>Epochs of the local LoRA's fine-tuning on the client's data after the last round.</summary>
    [JsonPropertyName("local_epochs")] public int LocalEpochs { get; init; } = 1;
    /// <summary>Training instances of the client whose last hidden states set the test-time mixing weight.</summary>
    [JsonPropertyName("instances")] public int Instances { get; init; } = 5;
    /// <summary>LoRA rank (default: the adapter rank).</summary>
    [JsonPropertyName("lora_rank")] public int? LoraRank { get; init; }

    /// <summary>Throws <see cref="ConfigException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        ConfigException.Positive(LocalEpochs, "feddpa.local_epochs");
        ConfigException.Positive(Instances, "feddpa.instances");
        if (LoraRank is { } r) ConfigException.Positive(r, "feddpa.lora_rank");
    }
}

/// <summary>
/// A simulation's settings, read from a JSON file (field names in snake_case, unknown fields refused) and
/// overridable from the command line. <see cref="Validate"/> names the first field out of range.
/// </summary>
public sealed record SimulationConfig
{
    /// <summary>Data set: <c>synthetic</c> (generated from the seed), <c>scienceqa</c> or <c>iconqa</c> (read from <see cref="DataRoot"/>).</summary>
    [JsonPropertyName("dataset")] public string Dataset { get; init; } = "synthetic";
    /// <summary>Folder of a real data set in its official layout (required for <c>scienceqa</c> and <c>iconqa</c>).</summary>
    [JsonPropertyName("data_root")] public string? DataRoot { get; init; }
    /// <summary>
    /// What to do with a real data set's missing image files: <c>error</c> (default), <c>caption</c> (ScienceQA: the
    /// official caption goes into the context) or <c>skip</c> (drop those questions).
    /// </summary>
    [JsonPropertyName("missing_images")] public string MissingImages { get; init; } = "error";
    /// <summary>
    /// Most tokens of a real sample's context (ScienceQA hint, with the caption) kept in the prompt; longer contexts
    /// are cut at a word boundary. Keeps the tiny backbone's sequences near its 256 trained positions.
    /// </summary>
    [JsonPropertyName("max_context_tokens")] public int MaxContextTokens { get; init; } = 96;
    /// <summary>Samples of the synthetic benchmark shared out over the clients (train and test parts together).</summary>
    [JsonPropertyName("synthetic_samples")] public int SyntheticSamples { get; init; } = 1000;
    /// <summary>Number of clients K.</summary>
    [JsonPropertyName("clients")] public int Clients { get; init; } = 5;
    /// <summary>Concentration of the Dirichlet label partition (small: strongly heterogeneous).</summary>
    [JsonPropertyName("alpha")] public double Alpha { get; init; } = 0.5;
    /// <summary>
    /// Metadata field the partition is over (e.g. <c>category</c>; ScienceQA: <c>subject</c>, <c>category</c>, <c>topic</c>,
    /// <c>skill</c>, <c>grade</c>; IconQA: <c>skill</c>, <c>task</c>, <c>grade</c>). See <see cref="DefaultPartitionLabel"/>.
    /// </summary>
    [JsonPropertyName("partition_by")] public string PartitionBy { get; init; } = "category";
    /// <summary>Fewest samples a client may hold (the partition is redrawn until every client has them).</summary>
    [JsonPropertyName("min_partition_size")] public int MinPartitionSize { get; init; } = 10;
    /// <summary>Share of each client's samples held out as its test part.</summary>
    [JsonPropertyName("test_fraction")] public double TestFraction { get; init; } = 0.25;
    /// <summary>Communication rounds.</summary>
    [JsonPropertyName("rounds")] public int Rounds { get; init; } = 8;
    /// <summary>Local epochs per round.</summary>
    [JsonPropertyName("local_epochs")] public int LocalEpochs { get; init; } = 1;
    /// <summary>Mini-batch size of local training.</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 16;
    /// <summary>AdamW learning rate.</summary>
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; } = 2e-3;
    /// <summary>AdamW weight decay.</summary>
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    /// <summary>
    /// Clip the adapters' gradient to this global L2 norm before each optimiser step (Hugging Face Trainer's
    /// <c>max_grad_norm</c>, default 1.0); 0 turns clipping off.
    /// </summary>
    [JsonPropertyName("max_grad_norm")] public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Share of clients sampled each round (at least one).</summary>
    [JsonPropertyName("client_fraction")] public double ClientFraction { get; init; } = 1.0;
    /// <summary>NanoAdapter rank and scale.</summary>
    [JsonPropertyName("adapter")] public AdapterConfig Adapter { get; init; } = new();
    /// <summary>Methods to run, in order (see <see cref="MethodCatalog.All"/>); <c>all</c> for every one.</summary>
    [JsonPropertyName("methods")] public string[] Methods { get; init; } = ["fednano", "fedavg"];
    /// <summary>Fisher merging's floor: where the weighted Fisher sum is at most this, the size-weighted mean is used.</summary>
    [JsonPropertyName("fisher_floor")] public double FisherFloor { get; init; } = 1e-20;
    /// <summary>FedProx's proximal weight mu in <c>mu/2 ||theta - theta_global||^2</c> (0 makes it FedAvg).</summary>
    [JsonPropertyName("fedprox_mu")] public double FedProxMu { get; init; } = 0.01;
    /// <summary>FedDPA-F's settings.</summary>
    [JsonPropertyName("feddpa")] public FedDpaConfig FedDpa { get; init; } = new();
    /// <summary>Seed of every random draw (partition, client sampling, data order, initialisation).</summary>
    [JsonPropertyName("seed")] public int Seed { get; init; }
    /// <summary>Backbone: <c>tiny</c> (the shipped one), <c>mid</c> (random, for speed) or <c>llava-1.5-7b</c> (with <see cref="ModelDir"/>); see <see cref="Checkpoints.Backbones"/>.</summary>
    [JsonPropertyName("backbone")] public string Backbone { get; init; } = "tiny";
    /// <summary>Folder of the backbone's checkpoint: required for <c>llava-1.5-7b</c>; for <c>tiny</c> defaults to the shipped one.</summary>
    [JsonPropertyName("model_dir")] public string? ModelDir { get; init; }
    /// <summary>The CLIP tower's folder of a checkpoint in LLaVA's own layout (default: its <c>mm_vision_tower</c> when that is a folder).</summary>
    [JsonPropertyName("vision_tower_dir")] public string? VisionTowerDir { get; init; }
    /// <summary>Where the backbone runs: <c>auto</c> (CUDA if available), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    [JsonPropertyName("device")] public string Device { get; init; } = "auto";
    /// <summary>Precision of the frozen backbone: <c>auto</c> (float32 on the CPU, bfloat16 on CUDA), <c>float32</c>, <c>bfloat16</c> or <c>float16</c>; the NanoAdapters are always float32.</summary>
    [JsonPropertyName("precision")] public string Precision { get; init; } = "auto";
    /// <summary>
    /// libtorch CPU threads, intra-op and inter-op (null: <c>OMP_NUM_THREADS</c>, else a quarter of the logical
    /// processors); see <see cref="TorchThreads"/>.
    /// </summary>
    [JsonPropertyName("threads")] public int? Threads { get; init; }

    /// <summary>Data sets a config may name.</summary>
    public static IReadOnlyList<string> Datasets { get; } = ["synthetic", .. Data.RealDatasets.Names];

    /// <summary>The partition label used for <paramref name="dataset"/> when none is given: <c>skill</c> for IconQA, else <c>category</c>.</summary>
    public static string DefaultPartitionLabel(string dataset) => dataset == "iconqa" ? "skill" : "category";

    /// <summary>True for the data sets read from <see cref="DataRoot"/>.</summary>
    public bool IsRealDataset => Data.RealDatasets.Names.Contains(Dataset);

    /// <summary>Throws <see cref="ConfigException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        if (!Datasets.Contains(Dataset)) throw new ConfigException($"dataset '{Dataset}' is not one of {string.Join(", ", Datasets)}");
        if (IsRealDataset && string.IsNullOrWhiteSpace(DataRoot))
            throw new ConfigException($"dataset '{Dataset}' needs data_root (--data-root): the folder holding the official release");
        Data.DatasetLoadOptions.ParsePolicy(MissingImages);
        ConfigException.Positive(MaxContextTokens, "max_context_tokens");
        ConfigException.Positive(Clients, "clients");
        ConfigException.Positive(Alpha, "alpha");
        ConfigException.Positive(Rounds, "rounds");
        ConfigException.Positive(LocalEpochs, "local_epochs");
        ConfigException.Positive(BatchSize, "batch_size");
        ConfigException.Positive(SyntheticSamples, "synthetic_samples");
        if (MinPartitionSize < 2) throw new ConfigException($"min_partition_size must be >= 2 so every client has a train and a test part (got {MinPartitionSize})");
        if (!(LearningRate >= 0)) throw new ConfigException($"learning_rate must be >= 0 (got {LearningRate})");
        if (!(WeightDecay >= 0)) throw new ConfigException($"weight_decay must be >= 0 (got {WeightDecay})");
        if (!(MaxGradNorm >= 0)) throw new ConfigException($"max_grad_norm must be >= 0, 0 for no clipping (got {MaxGradNorm})");
        if (!(TestFraction > 0 && TestFraction < 1)) throw new ConfigException($"test_fraction must be in (0, 1) (got {TestFraction})");
        if (!(ClientFraction > 0 && ClientFraction <= 1)) throw new ConfigException($"client_fraction must be in (0, 1] (got {ClientFraction})");
        if (string.IsNullOrWhiteSpace(PartitionBy)) throw new ConfigException("partition_by must name a metadata field, e.g. 'category'");
        if (Methods.Length == 0) throw new ConfigException("methods must name at least one method");
        foreach (var m in Methods) MethodCatalog.Check(m);
        Adapter.Validate();
        if (!Checkpoints.Backbones.Names.Contains(Backbone)) throw new ConfigException($"backbone '{Backbone}' is not one of {string.Join(", ", Checkpoints.Backbones.Names)}");
        Checkpoints.DeviceChoice.Resolve(Device, Precision);
        if (Threads is { } t) ConfigException.Positive(t, "threads");
        if (!(FedProxMu >= 0)) throw new ConfigException($"fedprox_mu must be >= 0 (got {FedProxMu})");
        FedDpa.Validate();
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads and validates a config file; errors name the file and the field.</summary>
    public static SimulationConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigException($"config file {path} not found");
        SimulationConfig config;
        try { config = JsonSerializer.Deserialize<SimulationConfig>(File.ReadAllText(path), Json) ?? throw new ConfigException($"{path}: the file holds null, expected a JSON object"); }
        catch (JsonException e) { throw new ConfigException($"{path}: invalid config at '{e.Path}': {FirstSentence(e.Message)}"); }
        try { config.Validate(); } catch (ConfigException e) { throw new ConfigException($"{path}: {e.Message}"); }
        return config;
    }

    private static string FirstSentence(string message) => message.Split(". Path:")[0].Split('\n')[0];

    /// <summary>The config as indented JSON (what a run records in its folder).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
