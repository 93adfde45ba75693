using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FedNano.Adapters;

/// <summary>
/// Heterogeneous adapter ranks (<c>adapter.client_ranks</c>): a rank per client (<c>[16, 16, 64, 64, 64]</c>) or a
/// distribution over ranks (<c>{"16": 0.5, "64": 0.5}</c>) each client's rank is drawn from, from the run's seed.
/// Every rank is at most <c>adapter.rank</c>, the rank of the global adapters the server keeps.
/// </summary>
[JsonConverter(typeof(ClientRanksConverter))]
public sealed record ClientRanks
{
    /// <summary>One rank per client, in client order; null for a distribution.</summary>
    public IReadOnlyList<int>? PerClient { get; init; }
    /// <summary>Probability of each rank, by rank; null for a list.</summary>
    public IReadOnlyDictionary<int, double>? Distribution { get; init; }

    /// <summary>Throws <see cref="ConfigException"/> unless it gives <paramref name="clients"/> ranks in
    /// 1..<paramref name="maxRank"/> (a list of that length, or probabilities in [0, 1] summing to 1).</summary>
    public void Validate(int clients, int maxRank)
    {
        const string field = "adapter.client_ranks";
        var ranks = PerClient ?? Distribution?.Keys.ToArray()
            ?? throw new ConfigException($"{field} must be a list of ranks or an object of rank: probability");
        if (PerClient is { } list && list.Count != clients)
            throw new ConfigException($"{field} lists {list.Count} ranks for {clients} clients; give one per client " +
                                      "or a distribution such as {\"16\": 0.5, \"64\": 0.5}");
        foreach (int r in ranks)
            if (r <= 0 || r > maxRank)
                throw new ConfigException($"{field}: rank {r} must be in 1..adapter.rank ({maxRank}); " +
                                          "raise adapter.rank to the largest client rank");
        if (Distribution is not { } d) return;
        if (d.Count == 0) throw new ConfigException($"{field} is an empty distribution; give rank: probability pairs");
        if (d.Values.Any(p => !(p >= 0 && p <= 1)))
            throw new ConfigException($"{field}: every probability must be in [0, 1]");
        if (Math.Abs(d.Values.Sum() - 1) > 1e-6)
            throw new ConfigException($"{field}: the probabilities sum to {d.Values.Sum():G6}, not 1");
    }

    /// <summary>
    /// Each client's rank: the list, or draws from the distribution seeded by <paramref name="seed"/>.
    /// </summary>
    public int[] Resolve(int clients, int seed)
    {
        if (PerClient is { } list) return list.ToArray();
        var d = Distribution!.OrderBy(p => p.Key).ToArray();
        var rng = new Random(seed);
        return Enumerable.Range(0, clients).Select(_ =>
        {
            double u = rng.NextDouble(), sum = 0;
            foreach (var (rank, p) in d)
                if (u < (sum += p)) return rank;
            return d.Last(p => p.Value > 0).Key;
        }).ToArray();
    }
}

/// <summary>
/// Reads and writes <see cref="ClientRanks"/> as a JSON list of ranks or an object of rank: probability.
/// </summary>
internal sealed class ClientRanksConverter : JsonConverter<ClientRanks>
{
    public override ClientRanks Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.StartArray)
            return new() { PerClient = JsonSerializer.Deserialize<int[]>(ref reader, options) };
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new JsonException("expected a list of ranks, one per client, or an object of rank: probability");
        var raw = JsonSerializer.Deserialize<Dictionary<string, double>>(ref reader, options)!;
        var d = new Dictionary<int, double>();
        foreach (var (key, p) in raw)
            d[int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int r) ? r
                : throw new JsonException($"rank '{key}' is not a whole number")] = p;
        return new() { Distribution = d };
    }

    public override void Write(Utf8JsonWriter writer, ClientRanks value, JsonSerializerOptions options)
    {
        if (value.PerClient is { } list) { JsonSerializer.Serialize(writer, list.ToArray(), options); return; }
        writer.WriteStartObject();
        foreach (var (rank, p) in value.Distribution!.OrderBy(p => p.Key))
            writer.WriteNumber(rank.ToString(CultureInfo.InvariantCulture), p);
        writer.WriteEndObject();
    }
}
