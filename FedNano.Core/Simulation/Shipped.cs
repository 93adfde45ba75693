using System.Reflection;
using System.Security.Cryptography;
using FedNano.Models;

namespace FedNano.Simulation;

/// <summary>
/// The files FedNano.Core carries, so that it runs out of the box without a repository checkout: the pretrained tiny
/// backbone (<c>data/tiny-backbone</c>) and the quickstart config (<c>configs/quickstart.json</c>). Inside a checkout
/// (see <see cref="Experiment.FindRepositoryRoot"/>) the repository's files are used; elsewhere the copies embedded in
/// the assembly are unpacked on first use into <see cref="CacheDirectory"/>.
/// </summary>
public static class Shipped
{
    private const string Prefix = "FedNano.Shipped.";
    private static readonly Lazy<string> Unpacked = new(Unpack);

    /// <summary>
    /// Where the embedded files are unpacked: <c>$FEDNANO_CACHE</c>, else <c>$XDG_CACHE_HOME/fednano</c>, else
    /// <c>~/.cache/fednano</c>; one subfolder per content hash, so versions never mix.
    /// </summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("FEDNANO_CACHE") is { Length: > 0 } own ? own
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "fednano");

    /// <summary>
    /// The shipped tiny backbone's folder (<c>config.json</c>, <c>model.safetensors</c>, <c>vocab.txt</c>).
    /// </summary>
    public static string TinyBackboneDirectory =>
        Experiment.FindRepositoryRoot() is { } root ? Path.Combine(root, TinyBackbone.DefaultDirectory)
            : Path.Combine(Unpacked.Value, "tiny-backbone");

    /// <summary>The quickstart config's file (the default config of <c>fednano run</c>).</summary>
    public static string QuickstartConfigPath =>
        Experiment.FindRepositoryRoot() is { } root && File.Exists(Path.Combine(root, "configs", "quickstart.json"))
            ? Path.Combine(root, "configs", "quickstart.json") : Path.Combine(Unpacked.Value, "quickstart.json");

    /// <summary>
    /// The quickstart config, loaded and validated: 5 clients, alpha 0.5, 4 rounds on the synthetic benchmark with the
    /// tiny backbone.
    /// </summary>
    public static SimulationConfig QuickstartConfig() => SimulationConfig.Load(QuickstartConfigPath);

    /// <summary>
    /// Unpacks the embedded files once (into a temporary folder, then renamed) and returns their folder.
    /// </summary>
    internal static string Unpack()
    {
        var assembly = typeof(Shipped).Assembly;
        var names = assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToArray();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var n in names) hash.AppendData(Read(assembly, n));
        string dir = Path.Combine(CacheDirectory, Convert.ToHexStringLower(hash.GetHashAndReset())[..16]);
        if (Directory.Exists(dir)) return dir;
        string tmp = $"{dir}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        foreach (var n in names)
        {
            // FedNano.Shipped.tiny-backbone/model.safetensors -> tiny-backbone/model.safetensors
            string path = Path.Combine(tmp, n[Prefix.Length..].Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, Read(assembly, n));
        }
        try { Directory.Move(tmp, dir); }
        catch (IOException) when (Directory.Exists(dir)) { Directory.Delete(tmp, true); } // another process was first
        return dir;
    }

    private static byte[] Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
