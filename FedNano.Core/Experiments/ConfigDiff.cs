using System.Text.Json.Nodes;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>The fields in which two simulation configs differ, as their JSON names (nested ones dotted, e.g.
/// <c>adapter.rank</c>).</summary>
public static class ConfigDiff
{
    /// <summary>One difference per field, as <c>field: A in the folder, B now</c>; empty when the configs are equal.
    /// Fields in <paramref name="ignore"/> are skipped, and <c>threads</c> always (it sets the speed only).</summary>
    public static IReadOnlyList<string> Describe(SimulationConfig folder, SimulationConfig now,
        params string[] ignore) =>
        Describe(folder, now, "in the folder", ignore);

    /// <summary>As <see cref="Describe(SimulationConfig, SimulationConfig, string[])"/>, the first config's values
    /// labelled <paramref name="where"/>.</summary>
    internal static IReadOnlyList<string> Describe(SimulationConfig first, SimulationConfig now, string where,
        params string[] ignore)
    {
        var a = JsonNode.Parse(first.ToJson())!.AsObject();
        var b = JsonNode.Parse(now.ToJson())!.AsObject();
        var diffs = new List<string>();
        Compare("", a, b, diffs, [.. ignore, "threads"], where);
        return diffs;
    }

    private static void Compare(string prefix, JsonObject a, JsonObject b, List<string> diffs, string[] ignore,
        string where)
    {
        foreach (var key in a.Select(p => p.Key).Union(b.Select(p => p.Key)))
        {
            string name = prefix + key;
            if (ignore.Contains(name)) continue;
            var x = a[key];
            var y = b[key];
            if (x is JsonObject ox && y is JsonObject oy)
            {
                Compare(name + ".", ox, oy, diffs, ignore, where);
                continue;
            }
            if (!JsonNode.DeepEquals(x, y)) diffs.Add($"{name}: {Text(x)} {where}, {Text(y)} now");
        }
    }

    private static string Text(JsonNode? n) => n?.ToJsonString() ?? "null";
}
