using System.CommandLine;
using FedNano.Simulation;

namespace FedNano.Cli.Commands;

/// <summary>The options shared by commands that take a simulation config, and how they override it.</summary>
internal sealed class RunOptions
{
    public readonly Option<string?> Config = new("--config")
    {
        Description = "Simulation config (JSON). Default: configs/quickstart.json.",
    };
    public readonly Option<string?> Method = new("--method")
    {
        Description = $"{string.Join(", ", MethodCatalog.All)} or all (comma-separated for several).",
    };
    public readonly Option<int?> Clients = new("--clients") { Description = "Number of clients K." };
    public readonly Option<double?> Alpha = new("--alpha")
    {
        Description = "Dirichlet concentration of the label partition (> 0; small = heterogeneous).",
    };
    public readonly Option<int?> Rounds = new("--rounds") { Description = "Communication rounds." };
    public readonly Option<int?> Rank = new("--rank") { Description = "NanoAdapter rank." };
    public readonly Option<int?> Seed = new("--seed") { Description = "Seed of every random draw." };
    public readonly Option<string?> Dataset = new("--dataset")
    {
        Description = $"{string.Join(", ", FedNano.Data.DatasetRegistry.Names)} (real ones need --data-root).",
    };
    public readonly Option<string?> DataRoot = new("--data-root")
    {
        Description = "Folder of the ScienceQA or IconQA release (official layout).",
    };
    public readonly Option<string?> MissingImages = new("--missing-images")
    {
        Description = "Missing image files: error (default), caption (ScienceQA captions) or skip.",
    };
    public readonly Option<string?> PartitionBy = new("--partition-by")
    {
        Description = "Metadata field of the Dirichlet label partition (default: the config's; with --dataset, "
            + "category, or skill for IconQA).",
    };

    public readonly Option<string?> Backbone = new("--backbone")
    {
        Description = "tiny (shipped, default), mid (random, for speed) or llava-1.5-7b (needs --model-dir). "
            + "Replaces the config's model_dir and vision_tower_dir by the command line's.",
    };
    public readonly Option<string?> ModelDir = new("--model-dir")
    {
        Description = "Checkpoint folder: a LLaVA-1.5 checkpoint (safetensors, either layout, with tokenizer.model) "
            + "or a tiny backbone folder.",
    };
    public readonly Option<string?> VisionTowerDir = new("--vision-tower-dir")
    {
        Description = "CLIP tower folder of a checkpoint in LLaVA's own layout (default: its mm_vision_tower).",
    };
    public readonly Option<string?> Device = new("--device")
    {
        Description = "auto (CUDA if available), cpu, cuda or cuda:N.",
    };
    public readonly Option<string?> Precision = new("--precision")
    {
        Description = "Frozen backbone precision: auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16 or "
            + "float16. Adapters stay float32.",
    };
    public readonly Option<string?> Execution = new("--execution")
    {
        Description = "auto (default: batched on CUDA, sequential on the CPU), batched (a round's clients through the "
            + "LLM together) or sequential (one by one).",
    };

    public readonly Option<int?> Threads = ThreadsOption();
    public readonly Option<string?> Fisher = FisherOption();
    public readonly Option<bool> FisherNormalise = FisherNormaliseOption();

    public IEnumerable<Option> All => [Config, Method, Clients, Alpha, Rounds, Rank, Seed, Dataset, DataRoot,
        MissingImages, PartitionBy, Backbone, ModelDir, VisionTowerDir, Device, Precision, Execution, Fisher,
        FisherNormalise, Threads];

    /// <summary>The <c>--fisher</c> option (fednano's Fisher estimator) of the commands that run methods.</summary>
    public static Option<string?> FisherOption() => new("--fisher")
    {
        Description = $"fednano's Fisher estimator: {string.Join(", ", FedNano.Fisher.FisherEstimators.Names)} "
            + "(default: the config's fisher, empirical; fednano-ef's is always ef).",
    };

    /// <summary>The <c>--fisher-normalise</c> flag of the commands that run methods.</summary>
    public static Option<bool> FisherNormaliseOption() => new("--fisher-normalise")
    {
        Description = "Divide each client's Fisher by its mean before upload (fednano, fednano-ef).",
    };

    /// <summary><paramref name="c"/> with the Fisher options given on the command line.</summary>
    public static SimulationConfig WithFisher(SimulationConfig c, ParseResult r, Option<string?> fisher,
        Option<bool> normalise)
    {
        if (r.GetValue(fisher) is { } f) c = c with { Fisher = f };
        return r.GetValue(normalise) ? c with { FisherNormalise = true } : c;
    }

    /// <summary>The <c>--threads</c> option of every command that computes.</summary>
    public static Option<int?> ThreadsOption() => new("--threads")
    {
        Description = "libtorch CPU threads (intra- and inter-op; default: the config's threads, else OMP_NUM_THREADS, "
            + $"else a quarter of the logical processors: {TorchThreads.Default} here).",
    };

    /// <summary>The config file (or the default) with the command line's overrides, validated.</summary>
    public SimulationConfig Resolve(ParseResult r)
    {
        string path = r.GetValue(Config) ?? DefaultConfig();
        var c = SimulationConfig.Load(path);
        if (r.GetValue(Method) is { } m)
            c = c with
            {
                Methods = m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            };
        if (r.GetValue(Clients) is { } k) c = c with { Clients = k };
        if (r.GetValue(Alpha) is { } a) c = c with { Alpha = a };
        if (r.GetValue(Rounds) is { } n) c = c with { Rounds = n };
        if (r.GetValue(Rank) is { } rank) c = c with { Adapter = c.Adapter with { Rank = rank } };
        if (r.GetValue(Seed) is { } s) c = c with { Seed = s };
        if (r.GetValue(Dataset) is { } d && d != c.Dataset)
            c = c with { Dataset = d, PartitionBy = SimulationConfig.DefaultPartitionLabel(d) };
        if (r.GetValue(DataRoot) is { } root) c = c with { DataRoot = root };
        if (r.GetValue(MissingImages) is { } mi) c = c with { MissingImages = mi };
        if (r.GetValue(PartitionBy) is { } pb) c = c with { PartitionBy = pb };
        if (r.GetValue(Backbone) is { } b)
            c = c with { Backbone = b, ModelDir = r.GetValue(ModelDir), VisionTowerDir = r.GetValue(VisionTowerDir) };
        else
        {
            if (r.GetValue(ModelDir) is { } md) c = c with { ModelDir = md };
            if (r.GetValue(VisionTowerDir) is { } vt) c = c with { VisionTowerDir = vt };
        }
        if (r.GetValue(Device) is { } dev) c = c with { Device = dev };
        if (r.GetValue(Precision) is { } p) c = c with { Precision = p };
        if (r.GetValue(Execution) is { } ex) c = c with { Execution = ex };
        if (r.GetValue(Threads) is { } t) c = c with { Threads = t };
        c = WithFisher(c, r, Fisher, FisherNormalise);
        try { c.Validate(); }
        catch (FedNano.ConfigException e)
        {
            throw new FedNano.ConfigException($"{e.Message} (from {path} and the command line)");
        }
        return c;
    }

    /// <summary>
    /// The repository's configs/quickstart.json, or outside a checkout the copy FedNano.Core carries.
    /// </summary>
    public static string DefaultConfig() => Shipped.QuickstartConfigPath;
}
