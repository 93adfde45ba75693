using System.Text.Json.Nodes;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>The fields in which two simulation configs differ, as their JSON names (nested ones dotted, e.g. <c>adapter.rank</c>).</summary>
public static class ConfigDiff
{
    /// <summary>
    /// One difference per field, as <c>field: A in the folder, B now</c>; empty when the configs are equal. Fields in
    /// <paramref name="ignore"/> are skipped, and <c>threads</c> always: it sets the speed (float sums may round
    /// differently with another thread count, so a run continued with other threads can differ in the last digits).
    /// </summary>
    public static IReadOnlyList<string> Describe(SimulationConfig folder, SimulationConfig now, params string[] ignore)
    {
        var a = JsonNode.Parse(folder.ToJson())!.AsObject();
        var b = JsonNode.Parse(now.ToJson())!.AsObject();
        var diffs = new List<string>();
        Compare("", a, b, diffs, [.. ignore, "threads"]);
        return diffs;
    }

    private static void Compare(string prefix, JsonObject a, JsonObject b, List<string> diffs, string[] ignore)
    {
        foreach (var key in a.Select(p => p.Key).Union(b.Select(p => p.Key)))
        {
            string name = prefix + key;
            if (ignore.Contains(name)) continue;
            var x = a[key];
            var y = b[key];
            if (x is JsonObject ox && y is JsonObject oy) { Compare(name + ".", ox, oy, diffs, ignore); continue; }
            if (!JsonNode.DeepEquals(x, y)) diffs.Add($"{name}: {Text(x)} in the folder, {Text(y)} now");
        }
    }

    private static string Text(JsonNode? n) => n?.ToJsonString() ?? "null";
}
