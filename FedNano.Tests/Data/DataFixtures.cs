using System.Text.Json.Nodes;

namespace FedNano.Tests.Data;

/// <summary>Paths of the real-format fixtures under data/fixtures and scratch folders for bad-input tests.</summary>
internal static class DataFixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string ScienceQa => Path.Combine(RepoRoot, "data", "fixtures", "scienceqa-mini");
    public static string IconQa => Path.Combine(RepoRoot, "data", "fixtures", "iconqa-mini");

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FedNano.Sim.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no FedNano.Sim.sln above {AppContext.BaseDirectory}");
    }

    public static JsonObject ScienceQaProblems() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(ScienceQa, "problems.json")))!;
    public static JsonObject ScienceQaCaptions() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(ScienceQa, "captions.json")))!["captions"]!;

    /// <summary>A fresh temporary folder, deleted by the caller's TearDown.</summary>
    public static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "fednano-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    public static void CopyDir(string from, string to)
    {
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
            File.SetAttributes(target, FileAttributes.Normal);
        }
    }
}
