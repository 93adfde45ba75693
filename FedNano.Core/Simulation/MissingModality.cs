using System.Text.Json;
using System.Text.Json.Serialization;
using FedNano.Data;

namespace FedNano.Simulation;

/// <summary>
/// Clients that lack a part of their samples (<c>missing_modality</c>): <c>images</c> (no question or option
/// images) and <c>context</c> (no text context, e.g. ScienceQA's hint), each for listed clients or a share of them.
/// Applied to a client's training and test samples after partitioning, so such a client trains only the adapter its
/// data reaches (without images NanoAdapter-I gets no gradient and a Fisher of exactly zero).
/// </summary>
public sealed record MissingModalityConfig
{
    /// <summary>Clients whose samples have no images.</summary>
    [JsonPropertyName("images"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ClientSelection? Images { get; init; }
    /// <summary>Clients whose samples have no text context.</summary>
    [JsonPropertyName("context"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ClientSelection? Context { get; init; }

    /// <summary>Throws <see cref="ConfigException"/> for client indices or shares out of range.</summary>
    public void Validate(int clients)
    {
        Images?.Validate(clients, "missing_modality.images");
        Context?.Validate(clients, "missing_modality.context");
    }

    /// <summary>The <c>modality</c> metadata value of a client's samples
    /// (<c>full</c>, <c>no images</c>, ...).</summary>
    public const string MetaKey = "modality";

    /// <summary>
    /// <paramref name="data"/> with the images and/or context removed from the chosen clients' samples; every sample
    /// gets its client's <see cref="MetaKey"/> metadata (for the breakdown). Shares are drawn from
    /// <paramref name="seed"/>.
    /// </summary>
    public FederatedData Apply(FederatedData data, int seed)
    {
        int k = data.Clients.Count;
        var noImages = Images?.Resolve(k, Seeds.Derive(seed, Seeds.Purpose("missing images"))) ?? [];
        var noContext = Context?.Resolve(k, Seeds.Derive(seed, Seeds.Purpose("missing context"))) ?? [];
        return data with
        {
            Clients = data.Clients.Select(c =>
            {
                bool image = noImages.Contains(c.Index), context = noContext.Contains(c.Index);
                string tag = (image, context) switch
                {
                    (true, true) => "no images, no context", (true, _) => "no images", (_, true) => "no context",
                    _ => "full",
                };
                MultimodalSample Strip(MultimodalSample s) => s with
                {
                    Image = image ? null : s.Image, ChoiceImages = image ? null : s.ChoiceImages,
                    Context = context ? null : s.Context,
                    Meta = new Dictionary<string, string>(s.Meta) { [MetaKey] = tag },
                };
                return c with { Train = c.Train.Select(Strip).ToArray(), Test = c.Test.Select(Strip).ToArray() };
            }).ToArray(),
        };
    }
}

/// <summary>Some of the clients: listed by index (<c>[0, 1]</c>) or a share of them (<c>0.4</c>) drawn from a
/// seed.</summary>
[JsonConverter(typeof(ClientSelectionConverter))]
public sealed record ClientSelection
{
    /// <summary>Client indices (0-based); null for a share.</summary>
    public IReadOnlyList<int>? Clients { get; init; }
    /// <summary>Share of the clients, in [0, 1]; null for a list.</summary>
    public double? Share { get; init; }

    /// <summary>Throws <see cref="ConfigException"/> naming <paramref name="field"/> for indices outside
    /// 0..clients-1, repeated ones, or a share outside [0, 1].</summary>
    public void Validate(int clients, string field)
    {
        if (Share is { } s && !(s >= 0 && s <= 1))
            throw new ConfigException($"{field} share must be in [0, 1] (got {s})");
        if (Clients is not { } list) return;
        foreach (int i in list)
            if (i < 0 || i >= clients) throw new ConfigException($"{field}: client {i} is outside 0..{clients - 1}");
        if (list.Distinct().Count() != list.Count) throw new ConfigException($"{field} lists a client twice");
    }

    /// <summary>The chosen clients of <paramref name="clients"/>: the list, or round(share x clients) drawn with
    /// <paramref name="seed"/>.</summary>
    public int[] Resolve(int clients, int seed)
    {
        if (Clients is { } list) return list.Order().ToArray();
        var rng = new Random(seed);
        int m = (int)Math.Round(Share!.Value * clients, MidpointRounding.AwayFromZero);
        return Enumerable.Range(0, clients).OrderBy(_ => rng.Next()).Take(m).Order().ToArray();
    }
}

/// <summary>Reads and writes <see cref="ClientSelection"/> as a JSON list of client indices or a share.</summary>
internal sealed class ClientSelectionConverter : JsonConverter<ClientSelection>
{
    public override ClientSelection Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.StartArray => new() { Clients = JsonSerializer.Deserialize<int[]>(ref reader, options) },
            JsonTokenType.Number => new() { Share = reader.GetDouble() },
            _ => throw new JsonException("expected a list of client indices, e.g. [0, 1], or a share such as 0.4"),
        };

    public override void Write(Utf8JsonWriter writer, ClientSelection value, JsonSerializerOptions options)
    {
        if (value.Clients is { } list) JsonSerializer.Serialize(writer, list.ToArray(), options);
        else writer.WriteNumberValue(value.Share!.Value);
    }
}
