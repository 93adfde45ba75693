using FedNano.Data;
using FedNano.Data.Prompts;
using FedNano.Tokenizers;
using static TorchSharp.torch;

namespace FedNano.Edge;

/// <summary>
/// A sample as token ids: the prompt with <see cref="ImagePlaceholder"/> runs where images stand, the ids of
/// the target (answer and end of sequence), and for multiple choice the first id of each option letter.
/// </summary>
internal sealed record EncodedSample(
    MultimodalSample Sample, int[] PromptIds, SampleImage[] Images, int[] TargetIds, int[] ChoiceIds)
{
    public const int ImagePlaceholder = -1;

    public static EncodedSample Encode(
        MultimodalSample sample, Prompt prompt, ITextTokenizer tokenizer, int imageTokens)
    {
        var ids = new List<int> { tokenizer.BosId };
        var images = new List<SampleImage>();
        foreach (var segment in prompt.Segments)
        {
            switch (segment)
            {
                case PromptSegment.Text t: ids.AddRange(tokenizer.Encode(t.Value)); break;
                case PromptSegment.Image im:
                    images.Add(im.Value); ids.AddRange(Enumerable.Repeat(ImagePlaceholder, imageTokens)); break;
            }
        }
        var target = tokenizer.Encode(prompt.Target).Append(tokenizer.EosId).ToArray();
        var choices = Enumerable.Range(0, sample.Choices.Count)
            .Select(i => tokenizer.Encode(LlavaPrompt.Letter(i))[0]).ToArray();
        return new EncodedSample(sample, ids.ToArray(), images.ToArray(), target, choices);
    }
}

/// <summary>
/// A right-padded batch on a device: ids [B, T] (pad where no token, images' places flagged in
/// <see cref="IsImage"/>), labels [B, T] (id of the next token where it is a target, else -100), and the
/// images in order of appearance (batch-major), whose visual tokens fill the flagged places.
/// </summary>
internal sealed class EncodedBatch : IDisposable
{
    public required Tensor Ids { get; init; }
    public required Tensor IsImage { get; init; }
    public required Tensor Labels { get; init; }
    public required SampleImage[] Images { get; init; }
    /// <summary>Position whose logits predict the first target token, per sample.</summary>
    public required long[] AnswerPositions { get; init; }
    public required EncodedSample[] Samples { get; init; }
    public int Count => Samples.Length;

    public static EncodedBatch Create(IReadOnlyList<EncodedSample> samples, bool withTargets, int padId, Device device)
    {
        int len = samples.Max(s => s.PromptIds.Length + (withTargets ? s.TargetIds.Length : 0));
        var ids = new long[samples.Count * len];
        var isImage = new bool[ids.Length];
        var labels = new long[ids.Length];
        Array.Fill(ids, padId);
        Array.Fill(labels, -100);
        var answerPositions = new long[samples.Count];
        for (int b = 0; b < samples.Count; b++)
        {
            var s = samples[b];
            var seq = withTargets ? s.PromptIds.Concat(s.TargetIds).ToArray() : s.PromptIds;
            for (int t = 0; t < seq.Length; t++)
            {
                if (seq[t] == EncodedSample.ImagePlaceholder) isImage[b * len + t] = true;
                else ids[b * len + t] = seq[t];
            }
            answerPositions[b] = s.PromptIds.Length - 1;
            if (withTargets)
                for (int k = 0; k < s.TargetIds.Length; k++)
                    labels[b * len + s.PromptIds.Length - 1 + k] = s.TargetIds[k];
        }
        return new EncodedBatch
        {
            Ids = tensor(ids, [samples.Count, len], device: device),
            IsImage = tensor(isImage, [samples.Count, len], device: device),
            Labels = tensor(labels, [samples.Count, len], device: device),
            Images = samples.SelectMany(s => s.Images).ToArray(),
            AnswerPositions = answerPositions,
            Samples = samples.ToArray(),
        };
    }

    public void Dispose() { Ids.Dispose(); IsImage.Dispose(); Labels.Dispose(); }
}
