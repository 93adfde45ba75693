using System.Text.Json;
using System.Text.Json.Serialization;
using FedNano.Adapters;
using FedNano.Edge;

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
        ConfigException.AtMost(LocalEpochs, 10_000, "feddpa.local_epochs");
        ConfigException.AtMost(Instances, 100_000, "feddpa.instances");
        if (LoraRank is { } rank) ConfigException.AtMost(rank, AdapterConfig.MaxRank, "feddpa.lora_rank");
    }
}

/// <summary>
/// A simulation's settings, read from a JSON file (field names in snake_case, unknown fields refused) and
/// overridable from the command line. <see cref="Validate"/> names the first field out of range.
/// </summary>
public sealed record SimulationConfig
{
    /// <summary>
    /// Data set: <c>synthetic</c> (generated from the seed), <c>scienceqa</c> or <c>iconqa</c> (read from
    /// <see cref="DataRoot"/>), or one registered with <see cref="Data.DatasetRegistry.Register"/>.
    /// </summary>
    [JsonPropertyName("dataset")] public string Dataset { get; init; } = "synthetic";
    /// <summary>Folder of a real data set in its official layout (required for <c>scienceqa</c> and
    /// <c>iconqa</c>).</summary>
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
    /// <summary>Samples of the synthetic benchmark shared out over the clients (train and test parts
    /// together).</summary>
    [JsonPropertyName("synthetic_samples")] public int SyntheticSamples { get; init; } = 1000;
    /// <summary>
    /// Synthetic benchmark: client dialects, 1 (default: every client words things alike) to
    /// <see cref="Data.Synthetic.SyntheticBenchmark.MaxClientDialects"/>; client k writes in dialect k mod this, in
    /// which the colour, shape, position and number words are shifted along their lists, so clients of different
    /// dialects conflict over what a word means (<see cref="Data.Synthetic.SyntheticBenchmark.InClientDialect"/>).
    /// </summary>
    [JsonPropertyName("synthetic_dialects")] public int SyntheticDialects { get; init; } = 1;
    /// <summary>Number of clients K.</summary>
    [JsonPropertyName("clients")] public int Clients { get; init; } = 5;
    /// <summary>Concentration of the Dirichlet label partition (small: strongly heterogeneous).</summary>
    [JsonPropertyName("alpha")] public double Alpha { get; init; } = 0.5;
    /// <summary>
    /// Metadata field the partition is over (e.g. <c>category</c>; ScienceQA: <c>subject</c>, <c>category</c>,
    /// <c>topic</c>, <c>skill</c>, <c>grade</c>; IconQA: <c>skill</c>, <c>task</c>, <c>grade</c>). See
    /// <see cref="DefaultPartitionLabel"/>.
    /// </summary>
    [JsonPropertyName("partition_by")] public string PartitionBy { get; init; } = "category";
    /// <summary>
    /// How samples are shared out (see <see cref="Partitioning.PartitionerRegistry"/>): <c>label</c> (default; per
    /// label, the clients' shares from Dirichlet(alpha)), <c>client</c> (for many clients; per client, its label mix
    /// from Dirichlet(alpha) and its size from <see cref="ClientSizeSigma"/>) or a registered partitioner's name.
    /// </summary>
    [JsonPropertyName("partition_scheme")] public string PartitionScheme { get; init; } = "label";
    /// <summary>
    /// Partition scheme <c>client</c>: spread of the clients' sizes, the sigma of the log-normal weights the samples
    /// beyond <see cref="MinPartitionSize"/> are shared by (FedLab's <c>unbalance_sgm</c>); 0 (default): equal sizes.
    /// </summary>
    [JsonPropertyName("client_size_sigma")] public double ClientSizeSigma { get; init; }
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
    /// <summary>
    /// Token budget of an evaluation batch: samples times the longest sequence (every image's visual tokens
    /// counted) stays within it; a longer sample runs alone. Bounds evaluation memory whatever the sample lengths.
    /// </summary>
    [JsonPropertyName("eval_batch_tokens")] public int EvalBatchTokens { get; init; } = Evaluator.DefaultBatchTokens;
    /// <summary>
    /// Recompute the frozen LLM's blocks in the backward of a training step instead of keeping their activations
    /// (the same gradients to float rounding; less memory, about one more forward of time).
    /// </summary>
    [JsonPropertyName("activation_checkpointing")] public bool ActivationCheckpointing { get; init; }
    /// <summary>
    /// Token budget of one forward and backward through the frozen LLM in training: samples times the longest
    /// sequence (visual tokens counted). A longer batch goes through in micro-batches of whole samples, gradients
    /// concatenated (the same step to float rounding); a sample longer than the budget runs alone. Bounds a training
    /// step's activations whatever <c>batch_size</c>; batched clients fill it with several clients' batches.
    /// </summary>
    [JsonPropertyName("train_batch_tokens")]
    public int TrainBatchTokens { get; init; } = SplitServer.DefaultTrainTokens;
    /// <summary>
    /// Host memory (MiB) for the clients' visual tokens, computed once per image and moved to the device per batch;
    /// past it the least recently used are recomputed when needed. 0 keeps none.
    /// </summary>
    [JsonPropertyName("visual_cache_mb")] public int VisualCacheMb { get; init; } = 4096;
    /// <summary>
    /// Share of clients evaluated after a round (at least one), drawn from the seed and the round; for large
    /// federations. Clients not evaluated have no accuracy that round.
    /// </summary>
    [JsonPropertyName("evaluate_fraction")] public double EvaluateFraction { get; init; } = 1.0;
    /// <summary>Evaluate after every N-th round only (the start and the last round always).</summary>
    [JsonPropertyName("evaluate_every")] public int EvaluateEvery { get; init; } = 1;
    /// <summary>Share of clients sampled each round (at least one).</summary>
    [JsonPropertyName("client_fraction")] public double ClientFraction { get; init; } = 1.0;
    /// <summary>NanoAdapter rank and scale.</summary>
    [JsonPropertyName("adapter")] public AdapterConfig Adapter { get; init; } = new();
    /// <summary>Clients whose samples lack images or context (see <see cref="MissingModalityConfig"/>);
    /// null: none.</summary>
    [JsonPropertyName("missing_modality"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MissingModalityConfig? MissingModality { get; init; }
    /// <summary>
    /// Methods to run, in order (see <see cref="MethodCatalog.All"/>); <c>all</c> for every one. Names are checked
    /// against the registry where a run starts (a method registered by the user's code is known only there).
    /// </summary>
    [JsonPropertyName("methods")] public string[] Methods { get; init; } = ["fednano", "fedavg"];
    /// <summary>Fisher merging's floor: where the weighted Fisher sum is at most this, the size-weighted mean is
    /// used.</summary>
    [JsonPropertyName("fisher_floor")] public double FisherFloor { get; init; } = 1e-20;
    /// <summary>
    /// Method <c>fednano</c>'s Fisher estimator (<see cref="FedNano.Fisher.FisherEstimators"/>): <c>empirical</c>
    /// (default; an extra pass with the true answers), <c>sampled</c> (the same pass with answers drawn from the model)
    /// or <c>ef</c> (squared mini-batch gradients of training, as <c>fednano-ef</c>, whose estimator is always
    /// <c>ef</c>).
    /// </summary>
    [JsonPropertyName("fisher")] public string Fisher { get; init; } = FedNano.Fisher.EmpiricalFisher.EstimatorName;
    /// <summary>Divide each client's Fisher by its mean (mean 1) before it is uploaded; fednano and
    /// fednano-ef.</summary>
    [JsonPropertyName("fisher_normalise")] public bool FisherNormalise { get; init; }
    /// <summary>FedProx's proximal weight mu in <c>mu/2 ||theta - theta_global||^2</c> (0 makes it FedAvg).</summary>
    [JsonPropertyName("fedprox_mu")] public double FedProxMu { get; init; } = 0.01;
    /// <summary>FedDPA-F's settings.</summary>
    [JsonPropertyName("feddpa")] public FedDpaConfig FedDpa { get; init; } = new();
    /// <summary>
    /// How a round's clients train: <c>batched</c> (their mini-batches of a step go through the frozen LLM together,
    /// each client with its own adapters, optimiser state and data order: the same result to float rounding),
    /// <c>sequential</c> (one after another), or <c>auto</c> (default: batched on CUDA, where one pass for many small
    /// batches saves kernel launches; sequential on the CPU, where batching measured no faster and sequential keeps
    /// results bit for bit). Centralized (one learner) always runs sequentially.
    /// </summary>
    [JsonPropertyName("execution")] public string Execution { get; init; } = "auto";
    /// <summary>
    /// Differential privacy of the clients' training (DP-SGD with exact per-sample clipping of the NanoAdapters'
    /// gradients, Gaussian noise, and a noised Fisher upload; epsilon per client in rounds.csv); null (default): off.
    /// Batched clients are noised each from its own generator, as sequentially; not for FedDPA-F.
    /// </summary>
    [JsonPropertyName("dp")] public Privacy.DpConfig? Dp { get; init; }
    /// <summary>Seed of every random draw (partition, client sampling, data order, initialisation).</summary>
    [JsonPropertyName("seed")] public int Seed { get; init; }
    /// <summary>Backbone: <c>tiny</c> (the shipped one), <c>mid</c> (random, for speed) or <c>llava-1.5-7b</c> (with
    /// <see cref="ModelDir"/>); see <see cref="Checkpoints.Backbones"/>.</summary>
    [JsonPropertyName("backbone")] public string Backbone { get; init; } = "tiny";
    /// <summary>Folder of the backbone's checkpoint: required for <c>llava-1.5-7b</c>; for <c>tiny</c> defaults to
    /// the shipped one.</summary>
    [JsonPropertyName("model_dir")] public string? ModelDir { get; init; }
    /// <summary>The CLIP tower's folder of a checkpoint in LLaVA's own layout (default: its <c>mm_vision_tower</c>
    /// when that is a folder).</summary>
    [JsonPropertyName("vision_tower_dir")] public string? VisionTowerDir { get; init; }
    /// <summary>Where the backbone runs: <c>auto</c> (CUDA if available), <c>cpu</c>, <c>cuda</c> or
    /// <c>cuda:N</c>.</summary>
    [JsonPropertyName("device")] public string Device { get; init; } = "auto";
    /// <summary>Precision of the frozen backbone: <c>auto</c> (float32 on the CPU, bfloat16 on CUDA), <c>float32</c>,
    /// <c>bfloat16</c> or <c>float16</c>; the NanoAdapters are always float32.</summary>
    [JsonPropertyName("precision")] public string Precision { get; init; } = "auto";
    /// <summary>
    /// libtorch CPU threads, intra-op and inter-op (null: <c>OMP_NUM_THREADS</c>, else a quarter of the logical
    /// processors); see <see cref="TorchThreads"/>.
    /// </summary>
    [JsonPropertyName("threads")] public int? Threads { get; init; }

    /// <summary>
    /// What happens to a client whose training loss or update turns NaN or infinite: <c>skip</c> (its update is left
    /// out of the aggregate, counted in rounds.csv's <c>nonfinite</c>) or <c>stop</c> (the run ends with a message).
    /// </summary>
    [JsonPropertyName("on_nonfinite")] public string OnNonFinite { get; init; } = "skip";

    /// <summary>Data sets a config may name: those of <see cref="Data.DatasetRegistry"/>.</summary>
    public static IReadOnlyList<string> Datasets => Data.DatasetRegistry.Names;

    /// <summary>
    /// The partition label used for <paramref name="dataset"/> when none is given: its
    /// <see cref="Data.IFederatedDataset.DefaultPartitionBy"/> (<c>skill</c> for IconQA), else <c>category</c>.
    /// </summary>
    public static string DefaultPartitionLabel(string dataset) =>
        Data.DatasetRegistry.Find(dataset)?.DefaultPartitionBy ?? "category";

    /// <summary>True for the data sets read from <see cref="DataRoot"/> (ScienceQA, IconQA, registered ones).</summary>
    public bool IsRealDataset => Data.DatasetRegistry.Find(Dataset)?.NeedsDataRoot == true;

    /// <summary>Most synthetic samples (each is generated and encoded in memory up front).</summary>
    public const int MaxSyntheticSamples = 1_000_000;

    /// <summary>
    /// Throws <see cref="ConfigException"/> naming the first field missing (a JSON <c>null</c>) or out of range;
    /// every number must be finite and in the range the README's field table gives.
    /// </summary>
    public void Validate()
    {
        foreach (var (value, field) in new (object?, string)[]
        {
            (Dataset, "dataset"), (MissingImages, "missing_images"), (PartitionBy, "partition_by"),
            (Adapter, "adapter"), (Methods, "methods"), (FedDpa, "feddpa"), (Backbone, "backbone"),
            (Device, "device"), (Precision, "precision"), (PartitionScheme, "partition_scheme"), (Fisher, "fisher"),
        })
            if (value is null) throw new ConfigException($"{field} is null; " +
                                                         $"give a value or leave the field out for its default");
        // data set and partitioner names are looked up where the data is made (a user's are registered at run time)
        if (string.IsNullOrWhiteSpace(Dataset))
            throw new ConfigException($"dataset must name a data set, e.g. one of {string.Join(", ", Datasets)}");
        if (IsRealDataset && string.IsNullOrWhiteSpace(DataRoot))
            throw new ConfigException($"dataset '{Dataset}' needs data_root (--data-root): " +
                                      "the folder holding the official release");
        Data.DatasetLoadOptions.ParsePolicy(MissingImages);
        ConfigException.Positive(MaxContextTokens, "max_context_tokens");
        ConfigException.Positive(Clients, "clients");
        ConfigException.Positive(Alpha, "alpha");
        ConfigException.Positive(Rounds, "rounds");
        ConfigException.Positive(LocalEpochs, "local_epochs");
        ConfigException.Positive(BatchSize, "batch_size");
        ConfigException.Positive(EvalBatchTokens, "eval_batch_tokens");
        ConfigException.Positive(TrainBatchTokens, "train_batch_tokens");
        ConfigException.Positive(EvaluateEvery, "evaluate_every");
        if (!(EvaluateFraction > 0 && EvaluateFraction <= 1))
            throw new ConfigException($"evaluate_fraction must be in (0, 1] (got {EvaluateFraction})");
        if (VisualCacheMb < 0)
            throw new ConfigException($"visual_cache_mb must be >= 0, 0 for no cache (got {VisualCacheMb})");
        ConfigException.Positive(SyntheticSamples, "synthetic_samples");
        ConfigException.AtMost(MaxContextTokens, 100_000, "max_context_tokens");
        ConfigException.AtMost(SyntheticSamples, MaxSyntheticSamples, "synthetic_samples");
        ConfigException.Positive(SyntheticDialects, "synthetic_dialects");
        ConfigException.AtMost(SyntheticDialects, Data.Synthetic.SyntheticBenchmark.MaxClientDialects,
            "synthetic_dialects");
        if (SyntheticDialects > 1 && Dataset != "synthetic")
            throw new ConfigException(
                $"synthetic_dialects applies to dataset synthetic only (dataset is '{Dataset}'); " +
                "leave it out or set it to 1");
        ConfigException.AtMost(Clients, 10_000, "clients");
        ConfigException.AtMost(Alpha, 1e6, "alpha");
        ConfigException.AtMost(Rounds, 100_000, "rounds");
        ConfigException.AtMost(LocalEpochs, 10_000, "local_epochs");
        ConfigException.AtMost(BatchSize, 65_536, "batch_size");
        ConfigException.AtMost(MinPartitionSize, MaxSyntheticSamples, "min_partition_size");
        ConfigException.AtMost(EvalBatchTokens, 100_000_000, "eval_batch_tokens");
        ConfigException.AtMost(TrainBatchTokens, 100_000_000, "train_batch_tokens");
        ConfigException.AtMost(VisualCacheMb, 1_000_000, "visual_cache_mb");
        if (MinPartitionSize < 2)
            throw new ConfigException($"min_partition_size must be >= 2 so every client has a train and a test part " +
                                      $"(got {MinPartitionSize})");
        if (!(LearningRate >= 0)) throw new ConfigException($"learning_rate must be >= 0 (got {LearningRate})");
        if (!(WeightDecay >= 0)) throw new ConfigException($"weight_decay must be >= 0 (got {WeightDecay})");
        if (!(MaxGradNorm >= 0))
            throw new ConfigException($"max_grad_norm must be >= 0, 0 for no clipping (got {MaxGradNorm})");
        ConfigException.AtMost(LearningRate, 10, "learning_rate");
        ConfigException.AtMost(WeightDecay, 100, "weight_decay");
        ConfigException.AtMost(MaxGradNorm, 1e6, "max_grad_norm");
        if (!(TestFraction > 0 && TestFraction < 1))
            throw new ConfigException($"test_fraction must be in (0, 1) (got {TestFraction})");
        if (!(ClientFraction > 0 && ClientFraction <= 1))
            throw new ConfigException($"client_fraction must be in (0, 1] (got {ClientFraction})");
        if (string.IsNullOrWhiteSpace(PartitionBy))
            throw new ConfigException("partition_by must name a metadata field, e.g. 'category'");
        if (string.IsNullOrWhiteSpace(PartitionScheme))
            throw new ConfigException("partition_scheme must name a partitioner, e.g. 'label' or 'client'");
        if (!(ClientSizeSigma >= 0))
            throw new ConfigException($"client_size_sigma must be >= 0, 0 for equal sizes (got {ClientSizeSigma})");
        ConfigException.AtMost(ClientSizeSigma, 100, "client_size_sigma");
        if (Methods.Length == 0) throw new ConfigException("methods must name at least one method");
        if (Methods.Any(string.IsNullOrWhiteSpace))
            throw new ConfigException("methods must not hold empty or null names");
        Adapter.Validate();
        Adapter.ClientRanks?.Validate(Clients, Adapter.Rank);
        MissingModality?.Validate(Clients);
        if (!Checkpoints.Backbones.Names.Contains(Backbone))
            throw new ConfigException(
                $"backbone '{Backbone}' is not one of {string.Join(", ", Checkpoints.Backbones.Names)}");
        Checkpoints.DeviceChoice.Check(Device, Precision); // spelling only: the machine is asked where the model loads
        if (Threads is { } t) ConfigException.Positive(t, "threads");
        if (!(FedProxMu >= 0)) throw new ConfigException($"fedprox_mu must be >= 0 (got {FedProxMu})");
        ConfigException.AtMost(FedProxMu, 1e6, "fedprox_mu");
        if (!(FisherFloor >= 0 && FisherFloor <= 1)) throw new ConfigException($"fisher_floor must be in [0, 1] " +
                                                                               $"(got {FisherFloor})");
        FedNano.Fisher.FisherEstimators.Create(Fisher);
        if (OnNonFinite is not ("skip" or "stop"))
            throw new ConfigException($"on_nonfinite '{OnNonFinite}' must be skip or stop");
        FedDpa.Validate();
        if (Execution is not ("auto" or "batched" or "sequential"))
            throw new ConfigException($"execution must be auto, batched or sequential (got '{Execution}')");
        if (Dp is not null) ValidateDp(Dp);
    }

    private void ValidateDp(Privacy.DpConfig dp)
    {
        dp.Validate();
        if (Fisher == FedNano.Fisher.SampledFisher.EstimatorName)
            throw new ConfigException($"dp noises the empirical Fisher only: fisher '{Fisher}' is not covered; set " +
                                      $"fisher to {FedNano.Fisher.EmpiricalFisher.EstimatorName} or " +
                                      $"{FedNano.Fisher.SquaredGradientFisher.EstimatorName}");
        if (MethodCatalog.Expand(Methods).Contains(Strategies.FedDpaF.MethodName))
            throw new ConfigException($"dp does not cover {Strategies.FedDpaF.MethodName} (its LoRA trains outside " +
                                      "DP-SGD): leave it out of methods (all includes it)");
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Largest config file read (a config is a few hundred bytes; this keeps <c>/dev/zero</c> from being
    /// read).</summary>
    public const int MaxFileBytes = 1 << 20;

    /// <summary>Reads and validates a config file; errors name the file and the field.</summary>
    public static SimulationConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigException($"config file {path} not found");
        SimulationConfig config;
        try
        {
            config = JsonSerializer.Deserialize<SimulationConfig>(ReadBounded(path), Json)
                ?? throw new ConfigException($"{path}: the file holds null, expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: invalid config at '{e.Path}': {FirstSentence(e.Message)}");
        }
        try { config.Validate(); } catch (ConfigException e) { throw new ConfigException($"{path}: {e.Message}"); }
        return config;
    }

    /// <summary>The file's text, refused past <see cref="MaxFileBytes"/> (read in a bounded buffer: devices report no
    /// length).</summary>
    private static string ReadBounded(string path)
    {
        using var f = File.OpenRead(path);
        var buffer = new byte[MaxFileBytes + 1];
        int n = 0, read;
        while (n < buffer.Length && (read = f.Read(buffer, n, buffer.Length - n)) > 0) n += read;
        if (n > MaxFileBytes) throw new ConfigException($"{path}: more than {MaxFileBytes / 1024} KB, " +
                                                        $"too large for a config file");
        return System.Text.Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static string FirstSentence(string message) => message.Split(". Path:")[0].Split('\n')[0];

    /// <summary>The config as indented JSON (what a run records in its folder).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
