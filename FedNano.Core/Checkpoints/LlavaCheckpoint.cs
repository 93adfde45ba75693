using System.Text.Json;
using System.Text.Json.Nodes;
using FedNano.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Checkpoints;

/// <summary>The two ways LLaVA-1.5 checkpoints name their weights.</summary>
public enum LlavaLayout
{
    /// <summary>
    /// LLaVA's own (<c>LlavaLlamaForCausalLM</c>, e.g. liuhaotian/llava-v1.5-7b): <c>model.layers.*</c>,
    /// <c>model.embed_tokens</c>, <c>lm_head</c>, <c>model.mm_projector.{0,2}</c>; a flat LLaMA <c>config.json</c>
    /// with <c>mm_*</c> fields; the CLIP tower (<c>vision_model.*</c>) in its own folder.
    /// </summary>
    Original,
    /// <summary>
    /// transformers' <c>LlavaForConditionalGeneration</c> (e.g. llava-hf/llava-1.5-7b-hf):
    /// <c>language_model.model.*</c>, <c>language_model.lm_head</c>, <c>multi_modal_projector.linear_{1,2}</c>,
    /// <c>vision_tower.vision_model.*</c>; <c>config.json</c> with <c>text_config</c> and <c>vision_config</c>.
    /// Also as transformers 4.52+ and 5 name them: <c>model.language_model.*</c>, <c>model.vision_tower.*</c>,
    /// <c>model.multi_modal_projector.*</c>, <c>lm_head</c>, the CLIP tower without <c>vision_model.</c>
    /// (<c>vision_tower.embeddings.*</c>), and <c>rope_parameters</c>, <c>head_dim</c>, <c>dtype</c> in the config.
    /// </summary>
    Converted,
}

/// <summary>
/// A LLaVA-1.5 checkpoint on disk (safetensors, single file or sharded with an index) in either
/// <see cref="LlavaLayout"/>, read into a <see cref="LlavaModel"/>. <see cref="Open"/> reads the configs and every
/// header and checks the whole checkpoint against <see cref="ExpectedParameters"/> (missing or unexpected keys,
/// shapes, dtypes, truncated shards, config against weights) before anything is loaded; loading then copies one
/// tensor at a time into the destination parameters, converting dtype and device, so peak memory stays near one
/// copy of the model.
/// </summary>
public sealed class LlavaCheckpoint
{
    private readonly List<(SafetensorsFile File, SafetensorsEntry Entry, string Canonical)> plan;

    private LlavaCheckpoint(string modelDir, LlavaLayout layout, LlavaConfig config, string? visionTowerDir,
                            List<(SafetensorsFile, SafetensorsEntry, string)> plan)
    {
        ModelDir = modelDir; Layout = layout; Config = config; VisionTowerDir = visionTowerDir; this.plan = plan;
        var tok = Path.Combine(modelDir, "tokenizer.model");
        TokenizerPath = File.Exists(tok) ? tok : null;
    }

    /// <summary>The model directory.</summary>
    public string ModelDir { get; }
    /// <summary>Which key layout the checkpoint uses.</summary>
    public LlavaLayout Layout { get; }
    /// <summary>
    /// The configuration read from the checkpoint (for <see cref="LlavaLayout.Original"/>, assembled from both
    /// folders).
    /// </summary>
    public LlavaConfig Config { get; }
    /// <summary>The vision tower's own folder (<see cref="LlavaLayout.Original"/> only).</summary>
    public string? VisionTowerDir { get; }
    /// <summary>The LLaMA SentencePiece <c>tokenizer.model</c> beside the weights, if there is one.</summary>
    public string? TokenizerPath { get; }
    /// <summary>Number of tensors that will be loaded.</summary>
    public int TensorCount => plan.Count;

    // ------------------------------------------------------------------ key layouts

    private static readonly (string From, string To)[] OriginalPrefixes =
    [
        ("model.mm_projector.0.", "multi_modal_projector.linear_1."),
        ("model.mm_projector.2.", "multi_modal_projector.linear_2."),
        ("model.vision_tower.vision_tower.vision_model.", "vision_tower.vision_model."),
        ("lm_head.", "language_model.lm_head."),
        ("model.", "language_model.model."),
    ];

    private const string Tower = "vision_tower.vision_model.", Projector = "multi_modal_projector.",
                         Lm = "language_model.model.", Head = "language_model.lm_head.";

    // first match wins: the longer prefixes come first
    private static readonly (string From, string To)[] ConvertedPrefixes =
    [
        (Tower, Tower), ("model." + Tower, Tower),
        // transformers 5's CLIPVisionModel has no vision_model level
        ("vision_tower.", Tower), ("model.vision_tower.", Tower),
        (Projector, Projector), ("model." + Projector, Projector),
        (Head, Head), ("lm_head.", Head),
        (Lm, Lm), ("model.language_model.", Lm), ("language_model.", Lm),
    ];

    private static readonly (string From, string To)[] TowerPrefixes =
        [("vision_model.", "vision_tower.vision_model.")];

    /// <summary>
    /// Buffers some checkpoints carry that are recomputed here, and the text half of a whole CLIPModel.
    /// </summary>
    private static bool Ignored(string key) =>
        key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) ||
        key.EndsWith("embeddings.position_ids", StringComparison.Ordinal);

    private static bool IgnoredInTower(string key) =>
        Ignored(key) || key.StartsWith("text_model.", StringComparison.Ordinal) ||
        key.StartsWith("text_projection.", StringComparison.Ordinal) ||
        key.StartsWith("visual_projection.", StringComparison.Ordinal) || key == "logit_scale";

    private static string? Map((string From, string To)[] prefixes, string key)
    {
        foreach (var (from, to) in prefixes)
            if (key.StartsWith(from, StringComparison.Ordinal)) return to + key[from.Length..];
        return null;
    }

    /// <summary>
    /// The name <paramref name="canonical"/> has in a checkpoint of <paramref name="layout"/> (for messages).
    /// </summary>
    public static string SourceName(LlavaLayout layout, string canonical)
    {
        if (layout == LlavaLayout.Converted) return canonical;
        foreach (var (from, to) in TowerPrefixes.Concat(
                     OriginalPrefixes.Where(p => !p.From.StartsWith("model.vision_tower", StringComparison.Ordinal))))
            if (canonical.StartsWith(to, StringComparison.Ordinal)) return from + canonical[to.Length..];
        return canonical;
    }

    // ------------------------------------------------------------------ expected parameters

    /// <summary>
    /// Every parameter of a LLaVA model of <paramref name="c"/>, with the canonical (converted-layout) name and
    /// shape, in model order: the list a checkpoint must match exactly.
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedParameters(LlavaConfig c)
    {
        var list = new List<(string, long[])>();
        var v = c.VisionConfig;
        long D = v.HiddenSize, I = v.IntermediateSize;
        const string vp = "vision_tower.vision_model.";
        list.Add((vp + "embeddings.class_embedding", [D]));
        list.Add((vp + "embeddings.patch_embedding.weight", [D, v.NumChannels, v.PatchSize, v.PatchSize]));
        list.Add((vp + "embeddings.position_embedding.weight", [v.NumPatches + 1, D]));
        list.Add((vp + "pre_layrnorm.weight", [D]));
        list.Add((vp + "pre_layrnorm.bias", [D]));
        for (int i = 0; i < v.NumHiddenLayers; i++)
        {
            var p = $"{vp}encoder.layers.{i}.";
            foreach (var proj in new[] { "k_proj", "v_proj", "q_proj", "out_proj" })
            {
                list.Add(($"{p}self_attn.{proj}.weight", [D, D]));
                list.Add(($"{p}self_attn.{proj}.bias", [D]));
            }
            list.Add((p + "layer_norm1.weight", [D]));
            list.Add((p + "layer_norm1.bias", [D]));
            list.Add((p + "mlp.fc1.weight", [I, D]));
            list.Add((p + "mlp.fc1.bias", [I]));
            list.Add((p + "mlp.fc2.weight", [D, I]));
            list.Add((p + "mlp.fc2.bias", [D]));
            list.Add((p + "layer_norm2.weight", [D]));
            list.Add((p + "layer_norm2.bias", [D]));
        }
        list.Add((vp + "post_layernorm.weight", [D]));
        list.Add((vp + "post_layernorm.bias", [D]));

        var t = c.TextConfig;
        long H = t.HiddenSize, TI = t.IntermediateSize, q = (long)t.NumAttentionHeads * t.HeadDim,
            kv = (long)t.KeyValueHeads * t.HeadDim;
        list.Add(("multi_modal_projector.linear_1.weight", [H, D]));
        list.Add(("multi_modal_projector.linear_1.bias", [H]));
        list.Add(("multi_modal_projector.linear_2.weight", [H, H]));
        list.Add(("multi_modal_projector.linear_2.bias", [H]));

        const string lp = "language_model.model.";
        list.Add((lp + "embed_tokens.weight", [t.VocabSize, H]));
        for (int i = 0; i < t.NumHiddenLayers; i++)
        {
            var p = $"{lp}layers.{i}.";
            list.Add((p + "self_attn.q_proj.weight", [q, H]));
            list.Add((p + "self_attn.k_proj.weight", [kv, H]));
            list.Add((p + "self_attn.v_proj.weight", [kv, H]));
            list.Add((p + "self_attn.o_proj.weight", [H, q]));
            list.Add((p + "mlp.gate_proj.weight", [TI, H]));
            list.Add((p + "mlp.up_proj.weight", [TI, H]));
            list.Add((p + "mlp.down_proj.weight", [H, TI]));
            list.Add((p + "input_layernorm.weight", [H]));
            list.Add((p + "post_attention_layernorm.weight", [H]));
        }
        list.Add((lp + "norm.weight", [H]));
        if (!t.TieWordEmbeddings) list.Add(("language_model.lm_head.weight", [t.VocabSize, H]));
        return list;
    }

    // ------------------------------------------------------------------ opening

    /// <summary>
    /// Reads the configs of the checkpoint in <paramref name="modelDir"/>, opens every weight file and checks it
    /// completely. For <see cref="LlavaLayout.Original"/> the vision tower comes from
    /// <paramref name="visionTowerDir"/>, else from <c>mm_vision_tower</c> in <c>config.json</c> when that is a
    /// directory (absolute, or relative to the model directory).
    /// </summary>
    public static LlavaCheckpoint Open(string modelDir, string? visionTowerDir = null)
    {
        modelDir = Path.GetFullPath(modelDir);
        var configPath = Path.Combine(modelDir, "config.json");
        if (!File.Exists(configPath))
            throw new ConfigException($"{modelDir}: no config.json (is this a LLaVA model directory?)");
        var root = ConfigJson.Read(configPath);

        // LLaVA's own config says model_type 'llava' too: its mm_* fields tell it apart
        if (root["mm_vision_tower"] is not null || root["mm_projector_type"] is not null ||
            root["mm_hidden_size"] is not null)
        {
            var tower = ResolveTower(configPath, root, modelDir, visionTowerDir);
            var config = ReadOriginal(configPath, root, tower);
            var weights = SafetensorsCheckpoint.Open(modelDir);
            var towerWeights = SafetensorsCheckpoint.Open(tower);
            var plan = Plan(config, LlavaLayout.Original,
            [
                (weights, key => Ignored(key) ? null : Map(OriginalPrefixes, key) ?? ""),
                (towerWeights, key => IgnoredInTower(key) ? null : Map(TowerPrefixes, key) ?? ""),
            ]);
            return new LlavaCheckpoint(modelDir, LlavaLayout.Original, config, tower, plan);
        }
        // a config that is not a transformers LLaVA one is refused here, naming its model_type
        var converted = ReadConverted(configPath, root, modelDir);
        var convertedWeights = SafetensorsCheckpoint.Open(modelDir);
        var convertedPlan = Plan(converted, LlavaLayout.Converted,
                                 [(convertedWeights, key => Ignored(key) ? null : Map(ConvertedPrefixes, key) ?? "")]);
        return new LlavaCheckpoint(modelDir, LlavaLayout.Converted, converted, null, convertedPlan);
    }

    private static LlavaConfig WithPreprocessor(LlavaConfig c, string folder)
    {
        var path = Path.Combine(folder, "preprocessor_config.json");
        if (!File.Exists(path)) return c;
        var p = ConfigJson.Read(path);
        var mean = p["image_mean"] is { } m ? ConfigJson.Deserialize<float[]>(m, path, "image_mean") : c.ImageMean;
        var std = p["image_std"] is { } s ? ConfigJson.Deserialize<float[]>(s, path, "image_std") : c.ImageStd;
        return c with { ImageMean = mean, ImageStd = std };
    }

    private static LlavaConfig Validated(LlavaConfig c, string path)
    {
        try { c.Validate(); } catch (ConfigException e) { throw new ConfigException($"{path}: {e.Message}"); }
        return c;
    }

    private static LlavaConfig ReadConverted(string path, JsonObject root, string modelDir)
    {
        var n = (JsonObject)root.DeepClone();
        // transformers keeps them in preprocessor_config.json
        foreach (var k in new[] { "image_mean", "image_std" }) n.Remove(k);
        return Validated(WithPreprocessor(LlavaConfig.FromJson(n, path), modelDir), path);
    }

    private static string ResolveTower(string path, JsonObject root, string modelDir, string? explicitDir)
    {
        if (explicitDir is not null)
        {
            if (!Directory.Exists(explicitDir))
                throw new ConfigException($"vision tower directory {explicitDir} not found");
            return Path.GetFullPath(explicitDir);
        }
        var name = (string?)root["mm_vision_tower"] ?? (string?)root["vision_tower"];
        if (name is null)
            throw new ConfigException($"{path}: no mm_vision_tower; pass the CLIP tower's folder (--vision-tower-dir)");
        foreach (var candidate in new[] { name, Path.Combine(modelDir, name) })
            if (Path.IsPathFullyQualified(candidate) && Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        throw new ConfigException($"{path}: mm_vision_tower '{name}' is not a folder here (nothing is downloaded): " +
                                  "pass the folder holding that CLIP checkpoint (--vision-tower-dir)");
    }

    private static LlavaConfig ReadOriginal(string path, JsonObject root, string towerDir)
    {
        var projector = (string?)root["mm_projector_type"] ?? "linear";
        if (projector != "mlp2x_gelu")
            throw new ConfigException(
                $"{path}: mm_projector_type '{projector}' is not supported (LLaVA-1.5 uses mlp2x_gelu)");
        if ((bool?)root["mm_use_im_start_end"] == true)
            throw new ConfigException($"{path}: mm_use_im_start_end=true is not supported (LLaVA-1.5 uses false)");
        var select = (string?)root["mm_vision_select_feature"] ?? "patch";
        var strategy = select switch
        {
            "patch" => "default",
            "cls_patch" => "full",
            _ => throw new ConfigException(
                $"{path}: mm_vision_select_feature '{select}' must be 'patch' or 'cls_patch'"),
        };
        var text = LlamaConfig.FromJson(root, path, "");

        var towerConfigPath = Path.Combine(towerDir, "config.json");
        if (!File.Exists(towerConfigPath))
            throw new ConfigException($"{towerDir}: no config.json (is this a CLIP checkpoint folder?)");
        var towerRoot = ConfigJson.Read(towerConfigPath);
        // CLIPModel nests it, CLIPVisionModel does not
        var vision = towerRoot["vision_config"] is JsonObject nested
            ? ClipVisionConfig.FromJson(nested, towerConfigPath, "vision_config")
            : ClipVisionConfig.FromJson(towerRoot, towerConfigPath, "vision config");
        if ((int?)root["mm_hidden_size"] is { } mm && mm != vision.HiddenSize)
            throw new ConfigException($"{path}: mm_hidden_size {mm} disagrees with the vision tower's hidden_size " +
                                      $"{vision.HiddenSize} ({towerConfigPath})");
        var config = new LlavaConfig
        {
            TextConfig = text,
            VisionConfig = vision,
            VisionFeatureLayer = (int?)root["mm_vision_select_layer"] ?? -2,
            VisionFeatureSelectStrategy = strategy,
        };
        return Validated(WithPreprocessor(config, towerDir), path);
    }

    private static List<(SafetensorsFile, SafetensorsEntry, string)> Plan(
        LlavaConfig config, LlavaLayout layout,
        IEnumerable<(SafetensorsCheckpoint Weights, Func<string, string?> Map)> sources)
    {
        var expected = ExpectedParameters(config).ToDictionary(p => p.Name, p => p.Shape, StringComparer.Ordinal);
        var found = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var plan = new List<(SafetensorsFile, SafetensorsEntry, string)>();
        foreach (var (weights, map) in sources)
            foreach (var file in weights.Files)
                foreach (var (key, entry) in file.Entries)
                {
                    var canonical = map(key);
                    if (canonical is null) continue;
                    if (!expected.TryGetValue(canonical, out var shape))
                        throw new ConfigException(
                            $"{file.Path}: unexpected key '{key}'" +
                            (canonical.Length > 0 && canonical != key ? $" (read as '{canonical}')" : "") +
                            $": a {layout}-layout LLaVA of this config.json has no such parameter");
                    if (found.TryGetValue(canonical, out var other))
                        throw new ConfigException(
                            $"{file.Path}: key '{key}' gives '{canonical}', which {other.Path} gives too");
                    if (entry.ScalarType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16
                                                 or ScalarType.Float64))
                        throw new ConfigException($"{file.Path}: key '{key}' has dtype {entry.DType}; " +
                                                  "parameters must be F32, F16, BF16 or F64");
                    if (!entry.Shape.SequenceEqual(shape))
                        throw new ConfigException($"{file.Path}: key '{key}' has shape {entry.ShapeText} " +
                                                  $"but the config expects {SafetensorsFile.ShapeText(shape)}: " +
                                                  "config.json disagrees with the weights");
                    found[canonical] = file;
                    plan.Add((file, entry, canonical));
                }
        var missing = expected.Keys.Where(k => !found.ContainsKey(k)).ToList();
        if (missing.Count > 0)
        {
            var dirs = string.Join(" and ", sources.Select(s => s.Weights.Directory));
            throw new ConfigException(
                $"{dirs}: {missing.Count} parameter(s) missing, first '{SourceName(layout, missing[0])}'" +
                (missing.Count > 1 ? $", '{SourceName(layout, missing[1])}'" : "") +
                " (checkpoint incomplete, or config.json disagrees with the weights)");
        }
        return plan;
    }

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// Builds a <see cref="LlavaModel"/> of <see cref="Config"/> on <paramref name="device"/> (default CPU) with
    /// parameters of <paramref name="dtype"/> (default float32) and loads the weights into it.
    /// </summary>
    public LlavaModel CreateModel(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var model = Construct(Config, device ?? CPU, dtype);
        try { LoadInto(model); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>
    /// Constructs a randomly initialised model directly on <paramref name="device"/> in <paramref name="dtype"/>.
    /// </summary>
    internal static LlavaModel Construct(LlavaConfig config, Device device, ScalarType dtype)
    {
        var (oldDevice, oldType) = (get_default_device(), get_default_dtype());
        set_default_device(device);
        set_default_dtype(dtype);
        try { return new LlavaModel(config); }
        finally { set_default_device(oldDevice); set_default_dtype(oldType); }
    }

    /// <summary>
    /// Copies the checkpoint into <paramref name="model"/> (built from an equal config), file by file and one tensor
    /// at a time, converting to each parameter's dtype and device.
    /// </summary>
    public void LoadInto(LlavaModel model)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var (name, shape) in ExpectedParameters(Config))
            if (!parameters.TryGetValue(name, out var p) || !p.shape.SequenceEqual(shape))
                throw new ConfigException(
                    $"the model has no parameter '{name}' of shape {SafetensorsFile.ShapeText(shape)}: " +
                    $"was it built from this checkpoint's config ({ModelDir})?");
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

    /// <summary>
    /// Opens <paramref name="modelDir"/> and returns the loaded model (see <see cref="Open"/> and
    /// <see cref="CreateModel"/>).
    /// </summary>
    public static LlavaModel Load(string modelDir, string? visionTowerDir = null, Device? device = null,
        ScalarType dtype = ScalarType.Float32) =>
        Open(modelDir, visionTowerDir).CreateModel(device, dtype);
}
