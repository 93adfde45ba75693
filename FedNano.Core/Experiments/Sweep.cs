using System.Globalization;
using System.Text.Json;
using FedNano.Simulation;

namespace FedNano.Experiments;

/// <summary>The values a sweep runs every combination of.</summary>
/// <param name="Alphas">Dirichlet concentrations.</param>
/// <param name="Methods">Methods (one per cell; <c>all</c> expanded).</param>
/// <param name="Seeds">Seeds.</param>
/// <param name="Clients">Numbers of clients.</param>
public sealed record SweepGrid(double[] Alphas, string[] Methods, int[] Seeds, int[] Clients)
{
    /// <summary>Throws <see cref="ConfigException"/> for an empty or invalid list.</summary>
    public void Validate()
    {
        if (Alphas.Length == 0 || Methods.Length == 0 || Seeds.Length == 0 || Clients.Length == 0)
            throw new ConfigException("a sweep needs at least one alpha, method, seed and client count");
        foreach (var a in Alphas) ConfigException.Positive(a, "alpha");
        foreach (var k in Clients) ConfigException.Positive(k, "clients");
        foreach (var m in Methods) MethodCatalog.Check(m);
    }
}

/// <summary>One run of a sweep: its coordinates, folder name and config.</summary>
/// <param name="Alpha">Dirichlet concentration.</param>
/// <param name="Clients">Number of clients.</param>
/// <param name="Method">Method.</param>
/// <param name="Seed">Seed.</param>
/// <param name="Name">Folder name inside the sweep's <c>cells/</c>.</param>
/// <param name="Config">The run's config (the sweep's with these four fields set).</param>
public sealed record SweepCell(double Alpha, int Clients, string Method, int Seed, string Name,
    SimulationConfig Config);

/// <summary>What a sweep did.</summary>
/// <param name="Ran">Cells run (or continued) this time.</param>
/// <param name="Skipped">Cells finished before, left alone.</param>
/// <param name="Aggregate">The rows written to <c>aggregate.csv</c>.</param>
public sealed record SweepOutcome(IReadOnlyList<SweepCell> Ran, IReadOnlyList<SweepCell> Skipped,
    IReadOnlyList<AggregateRow> Aggregate);

/// <summary>What a sweep wants its caller to hear of.</summary>
public sealed class SweepHooks
{
    /// <summary>Before anything runs: the cells to run and the ones already finished (skipped).</summary>
    public Action<IReadOnlyList<SweepCell>, IReadOnlyList<SweepCell>>? Planned { get; init; }
    /// <summary>A cell starts (index among the cells to run).</summary>
    public Action<SweepCell, int>? CellStarted { get; init; }
    /// <summary>A cell finished a round.</summary>
    public Action<SweepCell, SimulationProgress>? Progress { get; init; }
    /// <summary>Notes and warnings, e.g. a corrupt checkpoint in a cell.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Checked after every round's checkpoint.</summary>
    public CancellationToken Cancel { get; init; }
}

/// <summary>
/// A sweep: every (alpha, clients, method, seed) of a grid run on one base config, each cell a run folder
/// <c>cells/alpha-A_clients-K_METHOD_seed-S</c> (see <see cref="RunFolder"/>; finished cells are skipped, unfinished
/// ones continue from their last good checkpoint), <c>sweep-config.json</c> (the base config), <c>sweep.json</c> (the
/// grid last run) and <c>aggregate.csv</c> (mean and standard deviation over seeds). A folder made by a different base
/// config is refused.
/// </summary>
public static class Sweep
{
    /// <summary>File and folder names inside a sweep folder.</summary>
    public const string ConfigFile = "sweep-config.json", GridFile = "sweep.json", CellsFolder = "cells",
        AggregateFile = "aggregate.csv";

    /// <summary>Fields the grid sets in each cell; a sweep's base config is compared without them.</summary>
    public static readonly string[] GridFields = ["alpha", "clients", "methods", "seed"];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower
    };

    /// <summary>The cells of a grid, in run order (clients, alpha, seed, method).</summary>
    public static IReadOnlyList<SweepCell> Cells(SimulationConfig baseConfig, SweepGrid grid) =>
        (from k in grid.Clients
         from a in grid.Alphas
         from s in grid.Seeds
         from m in MethodCatalog.Expand(grid.Methods)
         select new SweepCell(a, k, m, s, CellName(a, k, m, s),
             baseConfig with { Alpha = a, Clients = k, Methods = [m], Seed = s })).ToArray();

    /// <summary>The folder name of a cell.</summary>
    public static string CellName(double alpha, int clients, string method, int seed) =>
        string.Create(CultureInfo.InvariantCulture, $"alpha-{alpha:R}_clients-{clients}_{method}_seed-{seed}");

    /// <summary>The base config of a sweep folder.</summary>
    public static SimulationConfig LoadConfig(string dir)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new ConfigException($"{dir} is not a sweep folder: it has no {ConfigFile}");
        return SimulationConfig.Load(path);
    }

    /// <summary>Runs every unfinished cell of the grid into <paramref name="dir"/>, then writes <c>aggregate.csv</c>
    /// over the grid's cells.</summary>
    public static SweepOutcome Run(SimulationConfig baseConfig, SweepGrid grid, string dir, SweepHooks? hooks = null)
    {
        hooks ??= new SweepHooks();
        baseConfig.Validate();
        grid.Validate();
        var cells = Cells(baseConfig, grid);
        foreach (var c in cells)
        {
            try { c.Config.Validate(); }
            catch (ConfigException e) { throw new ConfigException($"sweep cell {c.Name}: {e.Message}"); }
        }
        Prepare(baseConfig, grid, dir);
        var done = cells.Where(c => RunFolder.IsFinished(CellDir(dir, c))).ToArray();
        var todo = cells.Except(done).ToArray();
        hooks.Planned?.Invoke(todo, done);
        for (int i = 0; i < todo.Length; i++)
        {
            var cell = todo[i];
            hooks.CellStarted?.Invoke(cell, i);
            RunFolder.Run(cell.Config, CellDir(dir, cell), new RunHooks
            {
                Log = m => hooks.Log?.Invoke($"{cell.Name}: {m}"),
                Progress = p => hooks.Progress?.Invoke(cell, p),
                Cancel = hooks.Cancel,
            });
        }
        var aggregate = Aggregation.Rows(cells.Select(c => RunResults.Load(CellDir(dir, c)))).ToArray();
        ResultFiles.Write(Path.Combine(dir, AggregateFile), aggregate);
        return new SweepOutcome(todo, done, aggregate);
    }

    /// <summary>The folder of a cell.</summary>
    public static string CellDir(string sweepDir, SweepCell cell) => Path.Combine(sweepDir, CellsFolder, cell.Name);

    /// <summary>Every finished cell folder of a sweep folder.</summary>
    public static IReadOnlyList<RunResults> LoadFinished(string dir)
    {
        string cells = Path.Combine(dir, CellsFolder);
        if (!Directory.Exists(cells)) return [];
        return Directory.GetDirectories(cells).Order(StringComparer.Ordinal).Where(RunFolder.IsFinished)
            .Select(RunResults.Load).ToArray();
    }

    private static void Prepare(SimulationConfig baseConfig, SweepGrid grid, string dir)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (File.Exists(path))
        {
            var diffs = ConfigDiff.Describe(LoadConfig(dir), baseConfig, GridFields);
            if (diffs.Count > 0)
                throw new ConfigException($"{dir} is a sweep of a different config ({string.Join("; ", diffs)}); " +
                                          "give another --out, or the config it was made with");
        }
        else if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
            throw new ConfigException($"{dir} is not empty and has no {ConfigFile}, so it is not a sweep folder; " +
                                      "choose an empty or new --out");
        Directory.CreateDirectory(dir);
        if (!File.Exists(path)) RunFolder.WriteAtomic(path, baseConfig.ToJson());
        RunFolder.WriteAtomic(Path.Combine(dir, GridFile), JsonSerializer.Serialize(grid, Json));
    }
}
