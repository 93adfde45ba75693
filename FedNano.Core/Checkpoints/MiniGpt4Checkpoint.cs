using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FedNano.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Checkpoints;

/// <summary>
/// A MiniGPT-4 assembled from three Hugging Face-format pieces, all safetensors: the vision tower and Q-Former of a
/// BLIP-2 checkpoint folder (<c>Blip2ForConditionalGeneration</c>: <c>config.json</c>, <c>vision_model.*</c>,
/// <c>qformer.*</c>, <c>query_tokens</c>; its own language model and projection are ignored), Vicuna from a LLaMA
/// folder (<c>LlamaForCausalLM</c>: <c>config.json</c>, <c>model.*</c>, <c>lm_head.*</c>, <c>tokenizer.model</c>)
/// and MiniGPT-4's projection from one file (<c>language_projection.weight</c>, <c>.bias</c>; convert MiniGPT-4's
/// <c>.pth</c> with <c>tools/convert_minigpt4_projection.py</c>). <see cref="Open(string, string, string)"/> reads
/// the configs and every header and checks every key, shape and dtype against <see cref="ExpectedParameters"/>
/// before anything is loaded; errors name the file and key.
/// </summary>
public sealed class MiniGpt4Checkpoint
{
    /// <summary>The BLIP-2 folder's name inside a MiniGPT-4 folder.</summary>
    public const string Blip2Folder = "blip2";
    /// <summary>The Vicuna folder's name inside a MiniGPT-4 folder.</summary>
    public const string VicunaFolder = "vicuna";
    /// <summary>The projection file's name inside a MiniGPT-4 folder.</summary>
    public const string ProjectionFile = "projection.safetensors";

    private readonly List<(SafetensorsFile File, SafetensorsEntry Entry, string Canonical)> plan;

    private MiniGpt4Checkpoint(MiniGpt4Config config, string blip2Dir, string vicunaDir, string projection,
                               List<(SafetensorsFile, SafetensorsEntry, string)> plan)
    {
        Config = config; Blip2Dir = blip2Dir; VicunaDir = vicunaDir; ProjectionPath = projection; this.plan = plan;
        var tok = Path.Combine(vicunaDir, "tokenizer.model");
        TokenizerPath = File.Exists(tok) ? tok : null;
    }

    /// <summary>The configuration assembled from the BLIP-2 and Vicuna folders.</summary>
    public MiniGpt4Config Config { get; }
    /// <summary>The BLIP-2 folder.</summary>
    public string Blip2Dir { get; }
    /// <summary>The Vicuna folder.</summary>
    public string VicunaDir { get; }
    /// <summary>The projection file.</summary>
    public string ProjectionPath { get; }
    /// <summary>Vicuna's SentencePiece <c>tokenizer.model</c>, if the Vicuna folder has one.</summary>
    public string? TokenizerPath { get; }
    /// <summary>Number of tensors that will be loaded.</summary>
    public int TensorCount => plan.Count;

    // ------------------------------------------------------------------ expected parameters

    /// <summary>
    /// Every parameter of a <see cref="MiniGpt4Model"/> of <paramref name="c"/> with its name and shape, in model
    /// order: the list the three pieces together must match exactly.
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedParameters(MiniGpt4Config c)
    {
        var list = new List<(string, long[])>();
        void Linear(string name, long inF, long outF, bool bias = true)
        {
            list.Add((name + ".weight", [outF, inF]));
            if (bias) list.Add((name + ".bias", [outF]));
        }
        void Norm(string name, long width)
        {
            list.Add((name + ".weight", [width]));
            list.Add((name + ".bias", [width]));
        }

        var v = c.VisionConfig;
        long D = v.HiddenSize;
        list.Add(("vision_model.embeddings.class_embedding", [1, 1, D]));
        list.Add(("vision_model.embeddings.patch_embedding.weight", [D, v.NumChannels, v.PatchSize, v.PatchSize]));
        list.Add(("vision_model.embeddings.patch_embedding.bias", [D]));
        list.Add(("vision_model.embeddings.position_embedding", [1, v.NumPatches + 1, D]));
        for (int i = 0; i < v.NumHiddenLayers; i++)
        {
            var p = $"vision_model.encoder.layers.{i}.";
            Linear(p + "self_attn.qkv", D, 3 * D, bias: false);
            if (v.QkvBias) { list.Add((p + "self_attn.q_bias", [D])); list.Add((p + "self_attn.v_bias", [D])); }
            Linear(p + "self_attn.projection", D, D);
            Norm(p + "layer_norm1", D);
            Linear(p + "mlp.fc1", D, v.IntermediateSize);
            Linear(p + "mlp.fc2", v.IntermediateSize, D);
            Norm(p + "layer_norm2", D);
        }
        Norm("vision_model.post_layernorm", D);

        var q = c.QFormerConfig;
        long Q = q.HiddenSize;
        Norm("qformer.layernorm", Q);
        for (int i = 0; i < q.NumHiddenLayers; i++)
        {
            var p = $"qformer.encoder.layer.{i}.";
            foreach (var (name, source) in i % q.CrossAttentionFrequency == 0
                         ? new[] { ("attention", Q), ("crossattention", (long)q.EncoderHiddenSize) }
                         : [("attention", Q)])
            {
                Linear($"{p}{name}.attention.query", Q, Q);
                Linear($"{p}{name}.attention.key", source, Q);
                Linear($"{p}{name}.attention.value", source, Q);
                Linear($"{p}{name}.output.dense", Q, Q);
                Norm($"{p}{name}.output.LayerNorm", Q);
            }
            Linear(p + "intermediate_query.dense", Q, q.IntermediateSize);
            Linear(p + "output_query.dense", q.IntermediateSize, Q);
            Norm(p + "output_query.LayerNorm", Q);
        }
        list.Add(("query_tokens", [1, c.NumQueryTokens, Q]));

        var t = c.TextConfig;
        long H = t.HiddenSize, TI = t.IntermediateSize;
        long qw = (long)t.NumAttentionHeads * t.HeadDim, kv = (long)t.KeyValueHeads * t.HeadDim;
        Linear("language_projection", Q, H);
        const string lp = "language_model.model.";
        list.Add((lp + "embed_tokens.weight", [t.VocabSize, H]));
        for (int i = 0; i < t.NumHiddenLayers; i++)
        {
            var p = $"{lp}layers.{i}.";
            Linear(p + "self_attn.q_proj", H, qw, bias: false);
            Linear(p + "self_attn.k_proj", H, kv, bias: false);
            Linear(p + "self_attn.v_proj", H, kv, bias: false);
            Linear(p + "self_attn.o_proj", qw, H, bias: false);
            Linear(p + "mlp.gate_proj", H, TI, bias: false);
            Linear(p + "mlp.up_proj", H, TI, bias: false);
            Linear(p + "mlp.down_proj", TI, H, bias: false);
            list.Add((p + "input_layernorm.weight", [H]));
            list.Add((p + "post_attention_layernorm.weight", [H]));
        }
        list.Add((lp + "norm.weight", [H]));
        if (!t.TieWordEmbeddings) list.Add(("language_model.lm_head.weight", [t.VocabSize, H]));
        return list;
    }

    // ------------------------------------------------------------------ key mapping

    /// <summary>BLIP-2 keys MiniGPT-4 does not use: BLIP-2's LLM and projection, the Q-Former's text side.</summary>
    private static readonly Regex UnusedBlip2 = new(
        @"^(language_model\.|language_projection\.|qformer\.embeddings\.|" +
        @"qformer\.encoder\.layer\.\d+\.(intermediate|output)\.)", RegexOptions.CultureInvariant);

    private static bool Starts(string key, string prefix) => key.StartsWith(prefix, StringComparison.Ordinal);

    private static bool IsVisual(string key) =>
        Starts(key, "vision_model.") || Starts(key, "qformer.") || key == "query_tokens";

    private static string? MapBlip2(string key) => UnusedBlip2.IsMatch(key) ? null : IsVisual(key) ? key : "";

    private static string? MapVicuna(string key) =>
        key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) ? null :
        Starts(key, "model.") || Starts(key, "lm_head.") ? "language_model." + key : "";

    private static string? MapProjection(string key) => Starts(key, "language_projection.") ? key : "";

    /// <summary>Where a canonical parameter comes from (for messages): the piece's path and its key there.</summary>
    private (string Where, string Key) Source(string canonical) =>
        Starts(canonical, "language_model.") ? (VicunaDir, canonical["language_model.".Length..]) :
        Starts(canonical, "language_projection.") ? (ProjectionPath, canonical) : (Blip2Dir, canonical);

    // ------------------------------------------------------------------ opening

    /// <summary>
    /// Opens a MiniGPT-4 folder holding <c>blip2/</c> (BLIP-2 checkpoint), <c>vicuna/</c> (Vicuna checkpoint with
    /// <c>tokenizer.model</c>) and <c>projection.safetensors</c>.
    /// </summary>
    public static MiniGpt4Checkpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new ConfigException($"{folder}: MiniGPT-4 folder not found");
        return Open(Path.Combine(folder, Blip2Folder), Path.Combine(folder, VicunaFolder),
                    Path.Combine(folder, ProjectionFile));
    }

    /// <summary>Reads the configs of the three pieces, opens every weight file and checks it completely.</summary>
    public static MiniGpt4Checkpoint Open(string blip2Dir, string vicunaDir, string projectionFile)
    {
        (blip2Dir, vicunaDir, projectionFile) = (Path.GetFullPath(blip2Dir), Path.GetFullPath(vicunaDir),
                                                 Path.GetFullPath(projectionFile));
        var config = ReadConfig(blip2Dir, vicunaDir);
        var blip2 = SafetensorsCheckpoint.Open(blip2Dir);
        var vicuna = SafetensorsCheckpoint.Open(vicunaDir);
        var projection = SafetensorsFile.Open(projectionFile);
        var sources = new (IReadOnlyList<SafetensorsFile> Files, Func<string, string?> Map, string What)[]
        {
            (blip2.Files, MapBlip2, "a BLIP-2 checkpoint (vision_model.*, qformer.*, query_tokens)"),
            (vicuna.Files, MapVicuna, "a LLaMA checkpoint (model.*, lm_head.*)"),
            ([projection], MapProjection, "MiniGPT-4's projection (language_projection.weight, .bias; " +
                                          "tools/convert_minigpt4_projection.py writes it)"),
        };
        var checkpoint = new MiniGpt4Checkpoint(config, blip2Dir, vicunaDir, projectionFile, []);
        checkpoint.plan.AddRange(checkpoint.Plan(sources));
        return checkpoint;
    }

    private static JsonObject ReadJson(string path)
    {
        if (!File.Exists(path)) throw new ConfigException($"{path}: not found");
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new ConfigException($"{path}: not a JSON object");
        }
        catch (JsonException e) { throw new ConfigException($"{path}: malformed JSON: {e.Message}"); }
    }

    private static T Deserialize<T>(JsonNode node, string path, string where)
    {
        try { return node.Deserialize<T>() ?? throw new ConfigException($"{path}: {where} is null"); }
        catch (JsonException e) { throw new ConfigException($"{path}: {where}: bad value at {e.Path}: {e.Message}"); }
    }

    private static MiniGpt4Config ReadConfig(string blip2Dir, string vicunaDir)
    {
        var blip2Path = Path.Combine(blip2Dir, "config.json");
        var root = ReadJson(blip2Path);
        if ((string?)root["model_type"] != "blip-2" && root["qformer_config"] is null)
            throw new ConfigException($"{blip2Path}: not a BLIP-2 config " +
                                      "(model_type 'blip-2' with vision_config and qformer_config)");
        // transformers writes only the fields that differ from its defaults, which the records share
        var vision = root["vision_config"] is { } vc
            ? Deserialize<Blip2VisionConfig>(vc, blip2Path, "vision_config") : new();
        // and Blip2Config sets the Q-Former's encoder_hidden_size to the tower's width
        var qformer = (root["qformer_config"] is { } qc
            ? Deserialize<Blip2QFormerConfig>(qc, blip2Path, "qformer_config") : new())
            with { EncoderHiddenSize = vision.HiddenSize };
        int queries = root["num_query_tokens"] is { } n ? Deserialize<int>(n, blip2Path, "num_query_tokens") : 32;

        var vicunaPath = Path.Combine(vicunaDir, "config.json");
        var text = Deserialize<LlamaConfig>(ReadJson(vicunaPath), vicunaPath, "config");
        try { text.Validate("config"); }
        catch (ConfigException e) { throw new ConfigException($"{vicunaPath}: {e.Message}"); }

        var config = new MiniGpt4Config
        {
            VisionConfig = vision, QFormerConfig = qformer, TextConfig = text, NumQueryTokens = queries,
        };
        var preprocessor = Path.Combine(blip2Dir, "preprocessor_config.json");
        if (File.Exists(preprocessor))
        {
            var p = ReadJson(preprocessor);
            config = config with
            {
                ImageMean = p["image_mean"] is { } m
                    ? Deserialize<float[]>(m, preprocessor, "image_mean") : config.ImageMean,
                ImageStd = p["image_std"] is { } s
                    ? Deserialize<float[]>(s, preprocessor, "image_std") : config.ImageStd,
            };
        }
        try { config.Validate(); } catch (ConfigException e) { throw new ConfigException($"{blip2Path}: {e.Message}"); }
        return config;
    }

    private List<(SafetensorsFile, SafetensorsEntry, string)> Plan(
        IEnumerable<(IReadOnlyList<SafetensorsFile> Files, Func<string, string?> Map, string What)> sources)
    {
        var expected = ExpectedParameters(Config).ToDictionary(p => p.Name, p => p.Shape, StringComparer.Ordinal);
        var found = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var result = new List<(SafetensorsFile, SafetensorsEntry, string)>();
        foreach (var (files, map, what) in sources)
            foreach (var file in files)
                foreach (var (key, entry) in file.Entries)
                {
                    var canonical = map(key);
                    if (canonical is null) continue;
                    if (!expected.TryGetValue(canonical, out var shape))
                        throw new ConfigException($"{file.Path}: unexpected key '{key}': " +
                                                  $"{what} of this config has no such parameter");
                    if (found.TryGetValue(canonical, out var other))
                        throw new ConfigException($"{file.Path}: key '{key}' is also in {other.Path}");
                    if (entry.ScalarType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16
                                                 or ScalarType.Float64))
                        throw new ConfigException($"{file.Path}: key '{key}' has dtype {entry.DType}; " +
                                                  "parameters must be F32, F16, BF16 or F64");
                    if (!entry.Shape.SequenceEqual(shape))
                        throw new ConfigException($"{file.Path}: key '{key}' has shape {entry.ShapeText} but the " +
                                                  $"configs expect {SafetensorsFile.ShapeText(shape)}: " +
                                                  "config.json disagrees with the weights");
                    found[canonical] = file;
                    result.Add((file, entry, canonical));
                }
        var missing = expected.Keys.FirstOrDefault(k => !found.ContainsKey(k));
        if (missing is not null)
        {
            var (where, key) = Source(missing);
            int count = expected.Keys.Count(k => !found.ContainsKey(k));
            throw new ConfigException($"{where}: {count} parameter(s) missing, first '{key}' " +
                                      "(checkpoint incomplete, or its config disagrees with the weights)");
        }
        return result;
    }

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// Builds a <see cref="MiniGpt4Model"/> on <paramref name="device"/> (default CPU) in <paramref name="dtype"/> and
    /// loads the weights.
    /// </summary>
    public MiniGpt4Model CreateModel(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var model = Construct(Config, device ?? CPU, dtype);
        try { LoadInto(model); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>A random model built directly on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static MiniGpt4Model Construct(MiniGpt4Config config, Device device, ScalarType dtype = ScalarType.Float32)
    {
        config.Validate();
        var (oldDevice, oldType) = (get_default_device(), get_default_dtype());
        set_default_device(device);
        set_default_dtype(dtype);
        try { return new MiniGpt4Model(config); }
        finally { set_default_device(oldDevice); set_default_dtype(oldType); }
    }

    /// <summary>
    /// Writes <paramref name="model"/> as a MiniGPT-4 folder <see cref="Open(string)"/> reads: <c>blip2/</c>
    /// (config, preprocessor config, <c>model.safetensors</c> with the tower, Q-Former and query tokens),
    /// <c>vicuna/</c> (config, <c>model.safetensors</c>; copy a <c>tokenizer.model</c> beside it for a run) and
    /// <c>projection.safetensors</c>.
    /// </summary>
    public static void Save(MiniGpt4Model model, string folder)
    {
        var c = model.Config;
        var parameters = model.named_parameters().ToList();
        IEnumerable<KeyValuePair<string, Tensor>> Where(Func<string, bool> keep, string strip = "") =>
            parameters.Where(p => keep(p.name))
                .Select(p => new KeyValuePair<string, Tensor>(p.name[strip.Length..], p.parameter));
        static void Json(string path, JsonObject node) =>
            File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var blip2 = Directory.CreateDirectory(Path.Combine(folder, Blip2Folder)).FullName;
        Json(Path.Combine(blip2, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("Blip2ForConditionalGeneration"), ["model_type"] = "blip-2",
            ["num_query_tokens"] = c.NumQueryTokens,
            ["vision_config"] = JsonSerializer.SerializeToNode(c.VisionConfig),
            ["qformer_config"] = JsonSerializer.SerializeToNode(c.QFormerConfig),
        });
        Json(Path.Combine(blip2, "preprocessor_config.json"), new JsonObject
        {
            ["image_processor_type"] = "BlipImageProcessor",
            ["image_mean"] = JsonSerializer.SerializeToNode(c.ImageMean),
            ["image_std"] = JsonSerializer.SerializeToNode(c.ImageStd),
        });
        SafetensorsFile.Save(Path.Combine(blip2, SafetensorsCheckpoint.SingleFile),
            Where(IsVisual));

        var vicuna = Directory.CreateDirectory(Path.Combine(folder, VicunaFolder)).FullName;
        var text = (JsonObject)JsonSerializer.SerializeToNode(c.TextConfig)!;
        text["architectures"] = new JsonArray("LlamaForCausalLM");
        text["model_type"] = "llama";
        Json(Path.Combine(vicuna, "config.json"), text);
        SafetensorsFile.Save(Path.Combine(vicuna, SafetensorsCheckpoint.SingleFile),
            Where(n => Starts(n, "language_model."), "language_model."));
        SafetensorsFile.Save(Path.Combine(folder, ProjectionFile), Where(n => Starts(n, "language_projection.")));
    }

    /// <summary>
    /// Copies the checkpoint into <paramref name="model"/> (built from an equal config), one tensor at a time,
    /// converting dtype and device.
    /// </summary>
    public void LoadInto(MiniGpt4Model model)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var (name, shape) in ExpectedParameters(Config))
            if (!parameters.TryGetValue(name, out var p) || !p.shape.SequenceEqual(shape))
                throw new ConfigException($"the model has no parameter '{name}' of shape " +
                                          $"{SafetensorsFile.ShapeText(shape)}: was it built from this checkpoint's " +
                                          $"config ({Blip2Dir})?");
        using var _ = no_grad();
        foreach (var group in plan.GroupBy(p => p.File))
        {
            using var stream = File.OpenRead(group.Key.Path);
            foreach (var (file, entry, canonical) in group)
            {
                using var t = file.ReadFinite(stream, entry);
                parameters[canonical].copy_(t);
            }
        }
    }
}
