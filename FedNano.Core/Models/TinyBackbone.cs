using System.Diagnostics;
using System.Text.Json;
using FedNano.Data;
using FedNano.Data.Images;
using FedNano.Data.Prompts;
using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Tokenizers;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace FedNano.Models;

/// <summary>Settings of the tiny backbone's pretraining on the general split.</summary>
public sealed record PretrainOptions
{
    /// <summary>Seed of the data, the initialisation and the data order.</summary>
    public int Seed { get; init; } = 7;
    /// <summary>General-split training samples.</summary>
    public int Samples { get; init; } = 24000;
    /// <summary>Passes over them.</summary>
    public int Epochs { get; init; } = 20;
    /// <summary>Batch size.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate of Adam (no weight decay: unused embeddings keep their initial values).</summary>
    public double LearningRate { get; init; } = 6e-4;
    /// <summary>Held-out samples to measure accuracy on.</summary>
    public int EvalSamples { get; init; } = 600;

    /// <summary>Most training samples accepted (their encodings are held in memory: about 1 KB each).</summary>
    public const int MaxSamples = 1_000_000;

    /// <summary>Throws <see cref="ConfigException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        ConfigException.Positive(Samples, "--samples");
        ConfigException.AtMost(Samples, MaxSamples, "--samples");
        ConfigException.Positive(Epochs, "--epochs");
        ConfigException.AtMost(Epochs, 10_000, "--epochs");
        ConfigException.Positive(BatchSize, "batch size");
        ConfigException.Positive(EvalSamples, "eval samples");
        if (!(LearningRate > 0 && LearningRate <= 1)) throw new ConfigException($"--learning-rate must be in (0, 1] " +
                                                                                $"(got {LearningRate})");
    }
}

/// <summary>
/// The shipped tiny backbone: a LLaVA-shaped MLLM small enough to train and federate on a 2-core CPU
/// (CLIP-style ViT 64 wide, 3 blocks, 32 px images in 8 px patches; LLaMA 96 wide, 3 blocks, 4 heads with
/// 2 key/value heads). It is pretrained end to end on the synthetic benchmark's general (English) split,
/// then frozen; the clients' task is the French dialect it never saw. Stored as a Hugging Face-style model
/// folder: <c>config.json</c>, <c>model.safetensors</c> (transformers' LLaVA key names) and <c>vocab.txt</c>.
/// </summary>
public static class TinyBackbone
{
    /// <summary>Where the shipped backbone lives, relative to the repository root.</summary>
    public const string DefaultDirectory = "data/tiny-backbone";

    /// <summary>The architecture for a vocabulary of <paramref name="vocabSize"/> ids.</summary>
    public static LlavaConfig Config(int vocabSize) => new()
    {
        VisionConfig = new ClipVisionConfig
        {
            HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 3, NumAttentionHeads = 4,
            ImageSize = 32, PatchSize = 8, HiddenAct = "quick_gelu",
        },
        TextConfig = new LlamaConfig
        {
            HiddenSize = 96, IntermediateSize = 192, NumHiddenLayers = 3, NumAttentionHeads = 4, NumKeyValueHeads = 2,
            VocabSize = vocabSize, MaxPositionEmbeddings = 256, BosTokenId = 2, EosTokenId = 3, PadTokenId = 0,
        },
        ImageMean = [0.5f, 0.5f, 0.5f],
        ImageStd = [0.25f, 0.25f, 0.25f],
    };

    /// <summary>
    /// The image function of a config: <see cref="ImageProcessor.Process"/> (image files decoded, padded to a square
    /// and resized as LLaVA-1.5 does; in-memory pixels at the encoder's size only normalised).
    /// </summary>
    public static Func<SampleImage, Tensor> PixelsFor(LlavaConfig c)
    {
        var processor = ImageProcessor.For(c);
        return image => processor.Process(image);
    }

    /// <summary>Loads a tiny backbone folder onto <paramref name="device"/> (default CPU) in
    /// <paramref name="dtype"/>.</summary>
    public static Backbone Load(string dir, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        string weights = Path.Combine(dir, "model.safetensors");
        foreach (var f in new[]
            { Path.Combine(dir, "config.json"), weights, Path.Combine(dir, TinyTokenizer.FileName) })
            if (!File.Exists(f))
                throw new ConfigException($"tiny backbone file {f} is missing (run 'fednano pretrain' to make it)");
        string configPath = Path.Combine(dir, "config.json"), vocabPath = Path.Combine(dir, TinyTokenizer.FileName);
        var config = LlavaConfig.Load(configPath);
        var tokenizer = TinyTokenizer.Load(vocabPath);
        if (config.TextConfig.VocabSize != tokenizer.VocabSize)
            throw new ConfigException($"{configPath}: text_config.vocab_size is {config.TextConfig.VocabSize} " +
                $"but {vocabPath} holds {tokenizer.VocabSize} tokens: the files are of different backbones");
        // header, keys and shapes checked before anything is allocated
        var file = Checkpoints.SafetensorsFile.Open(weights);
        file.CheckWeights(Checkpoints.LlavaCheckpoint.ExpectedParameters(config), configPath);
        var model = new LlavaModel(config);
        try { file.LoadInto(model); }
        catch { model.Dispose(); throw; }
        model.to(dtype);
        if (device is not null) model.to(device);
        model.eval();
        return new Backbone("tiny", model, tokenizer, PixelsFor(config));
    }

    /// <summary>
    /// Pretrains a fresh tiny backbone on the general split, deterministically from the seed, and writes it to
    /// <paramref name="dir"/> after every epoch (written to a temporary folder and moved into place, so the folder
    /// always holds a complete backbone). Returns the held-out accuracies on the general and the client split.
    /// </summary>
    public static (double general, double client) Pretrain(string dir, PretrainOptions o, Action<string>? log = null)
    {
        log ??= _ => { };
        o.Validate();
        // a folder that cannot be written fails now, not after the first epoch's training
        string probe = Path.Combine(TempDir(dir), ".probe");
        Directory.CreateDirectory(TempDir(dir));
        File.WriteAllText(probe, "");
        Directory.Delete(TempDir(dir), true);
        string vocab = Path.Combine(Path.GetTempPath(), $"fednano-vocab-{Guid.NewGuid():N}.txt");
        var tokenizer = TinyTokenizer.Build(SyntheticBenchmark.Vocabulary(), 400, vocab);
        var config = Config(tokenizer.VocabSize);
        torch.manual_seed(o.Seed);
        var model = new LlavaModel(config);
        InitializeLikeTransformers(model);
        var pixels = PixelsFor(config);
        // The general split in three formats: multiple choice (the letter as target, as LLaVA trains), the same
        // question asked open-ended (the answer word as target: a direct signal for perception) and a text-only
        // drill naming the answer word ("Which option is red?": teaches reading the options and copying the
        // letter). Without the two helpers a model this small stays at chance on multiple choice for thousands
        // of steps.
        var train = SyntheticBenchmark.Generate(o.Samples, o.Seed, SyntheticDialect.General)
            .Select((s, i) => (i % 3) switch
            {
                0 => s,
                1 => s with { Choices = [], AnswerIndex = -1, AnswerText = s.Choices[s.AnswerIndex] },
                _ => s with { Image = null, Question = $"Which option is {s.Choices[s.AnswerIndex]}?" },
            })
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), tokenizer, config.ImageTokens)).ToArray();
        var generalTest = SyntheticBenchmark.Generate(o.EvalSamples, o.Seed + 1, SyntheticDialect.General);
        var clientTest = SyntheticBenchmark.Generate(o.EvalSamples, o.Seed + 1, SyntheticDialect.Client);
        var optimizer = optim.Adam(model.parameters(), o.LearningRate);
        var rng = new Random(o.Seed);
        int steps = o.Epochs * ((train.Length + o.BatchSize - 1) / o.BatchSize), step = 0;
        var clock = Stopwatch.StartNew();
        (double general, double client) accuracy = default;
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            model.train();
            var order = train.OrderBy(_ => rng.Next()).ToArray();
            double total = 0;
            for (int i = 0; i < order.Length; i += o.BatchSize)
            {
                using var scope = NewDisposeScope();
                // linear warm-up over the first 5% of the steps, then linear decay to zero
                foreach (var g in optimizer.ParamGroups)
                    g.LearningRate = o.LearningRate
                        * Math.Min((step + 1) / (0.05 * steps), (double)(steps - step) / (0.95 * steps));
                var batch = EncodedBatch.Create(order[i..Math.Min(i + o.BatchSize, order.Length)], true,
                    tokenizer.PadId, CPU);
                var loss = Loss(model, batch, pixels).mean();
                optimizer.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(model.parameters(), 1.0);
                optimizer.step();
                total += loss.item<float>() * batch.Count;
                step++;
            }
            model.eval();
            accuracy = (Accuracy(model, tokenizer, pixels, generalTest),
                Accuracy(model, tokenizer, pixels, clientTest));
            log($"epoch {epoch + 1}/{o.Epochs}: loss {total / order.Length:F4}, " +
                $"held-out accuracy general {accuracy.general:P1}, client dialect {accuracy.client:P1} " +
                $"({clock.Elapsed.TotalSeconds:F0}s)");
            Save(dir, model, vocab, new
            {
                o.Seed, o.Samples, o.Epochs, o.BatchSize, o.LearningRate, epochs_done = epoch + 1,
                general_accuracy = accuracy.general, client_accuracy = accuracy.client,
                seconds = clock.Elapsed.TotalSeconds,
            });
        }
        return accuracy;
    }

    /// <summary>
    /// transformers' initialisation (<c>initializer_range</c> 0.02): every weight matrix and embedding N(0, 0.02^2),
    /// biases zero, norms one. TorchSharp's defaults (N(0, 1) embeddings) leave the token embeddings so large that
    /// the blocks' outputs barely register in the residual stream, and training stalls at chance.
    /// </summary>
    private static void InitializeLikeTransformers(LlavaModel model)
    {
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains("norm") || name.Contains("layrnorm"))
            {
                if (name.EndsWith("weight")) p.fill_(1.0); else p.zero_();
            }
            else if (name.EndsWith("bias")) p.zero_();
            else p.normal_(0, 0.02);
        }
    }

    private static string TempDir(string dir) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) + ".tmp";

    /// <summary>Writes the backbone to a temporary folder, then swaps it in; the previous epoch's stays until
    /// then.</summary>
    private static void Save(string dir, LlavaModel model, string vocab, object record)
    {
        string tmp = TempDir(dir), old = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) + ".old";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        File.Copy(vocab, Path.Combine(tmp, TinyTokenizer.FileName));
        model.Config.Save(Path.Combine(tmp, "config.json"));
        model.save_safetensors(Path.Combine(tmp, "model.safetensors"));
        File.WriteAllText(Path.Combine(tmp, "pretraining.json"),
            JsonSerializer.Serialize(record, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(tmp, dir);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    private static Tensor Loss(LlavaModel model, EncodedBatch batch, Func<SampleImage, Tensor> pixels)
    {
        var visual = batch.Images.Length == 0
            ? null
            : model.ImageTokens(stack(batch.Images.Select(pixels).ToArray())).flatten(0, 1);
        var x = Sequences.Assemble(model.LanguageModel.Model.EmbedTokens, visual, batch);
        return model.LanguageModel.TargetNll(x, batch.Labels);
    }

    private static double Accuracy(LlavaModel model, ITextTokenizer tokenizer, Func<SampleImage, Tensor> pixels,
        IReadOnlyList<MultimodalSample> samples)
    {
        using var _ = no_grad();
        int correct = 0;
        var encoded = samples
            .Select(s => EncodedSample.Encode(s, LlavaPrompt.Build(s), tokenizer, model.Config.ImageTokens)).ToArray();
        for (int i = 0; i < encoded.Length; i += 64)
        {
            using var scope = NewDisposeScope();
            var batch = EncodedBatch.Create(encoded[i..Math.Min(i + 64, encoded.Length)], false, tokenizer.PadId, CPU);
            var visual = model.ImageTokens(stack(batch.Images.Select(pixels).ToArray())).flatten(0, 1);
            var x = Sequences.Assemble(model.LanguageModel.Model.EmbedTokens, visual, batch);
            var hidden = model.LanguageModel.Hidden(x);
            for (int b = 0; b < batch.Count; b++)
            {
                var logits = model.LanguageModel.Head(hidden[b, batch.AnswerPositions[b]]);
                var choices = batch.Samples[b].ChoiceIds;
                int best = Enumerable.Range(0, choices.Length).MaxBy(k => logits[choices[k]].item<float>());
                if (best == batch.Samples[b].Sample.AnswerIndex) correct++;
            }
        }
        return (double)correct / samples.Count;
    }
}
