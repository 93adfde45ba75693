using System.CommandLine;
using System.Globalization;
using FedNano.Ledgers;
using FedNano.Models;
using Spectre.Console;

namespace FedNano.Cli.Commands;

/// <summary><c>fednano params</c>: per-method trainable, uploaded and client-resident parameter counts.</summary>
public static class ParamsCommand
{
    /// <summary>Builds the <c>params</c> command.</summary>
    public static Command Build()
    {
        var model = new Option<string>("--model")
        {
            Description = $"Architecture: tiny, {string.Join(", ", ArchitectureParameters.PresetNames)}",
            Required = true,
        };
        var rank = new Option<int>("--rank") { Description = "NanoAdapter / LoRA rank", DefaultValueFactory = _ => 64 };
        var config = new Option<FileInfo?>("--config")
        {
            Description = $"LLaVA-layout config.json to count instead of a preset "
                + $"(default for tiny: the shipped tiny backbone's)",
        };
        var command = new Command("params", "Trainable, uploaded-per-round and client-resident parameters of each "
            + "federated method, computed from the architecture's config without allocating weights")
        {
            model, rank, config,
        };
        command.SetAction(parse =>
        {
            var io = parse.InvocationConfiguration;
            try
            {
                int r = parse.GetValue(rank);
                if (r <= 0) throw new ConfigException($"--rank must be > 0 (got {r})");
                Render(Resolve(parse.GetValue(model)!, parse.GetValue(config)), r, io.Output);
                return 0;
            }
            catch (ConfigException e)
            {
                io.Error.WriteLine($"fednano params: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    internal static ArchitectureParameters Resolve(string model, FileInfo? config)
    {
        if (config is not null)
            return ArchitectureParameters.Llava(LlavaConfig.Load(CheckLlavaConfig(config.FullName)), model);
        if (model != "tiny" && !ArchitectureParameters.PresetNames.Contains(model))
            throw new ConfigException($"--model: unknown model '{model}' "
                + $"(known: tiny, {string.Join(", ", ArchitectureParameters.PresetNames)}; "
                + "or pass --config <config.json>)");
        if (model != "tiny") return ArchitectureParameters.Preset(model);
        return ArchitectureParameters.Llava(
            LlavaConfig.Load(Path.Combine(FedNano.Simulation.Shipped.TinyBackboneDirectory, "config.json")), "tiny");
    }

    /// <summary>Refuses a JSON file that is not a model's LLaVA config.json (e.g. a simulation config), which would
    /// count LLaVA-7B's defaults.</summary>
    private static string CheckLlavaConfig(string path)
    {
        System.Text.Json.Nodes.JsonObject? root;
        try
        {
            root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path)) as System.Text.Json.Nodes.JsonObject;
        }
        catch (System.Text.Json.JsonException e) { throw new ConfigException($"--config {path}: malformed JSON " +
                                                                             $"({e.Message})"); }
        string[] llava = ["text_config", "vision_config", "mm_vision_tower", "mm_projector_type"];
        if (root is null || !llava.Any(root.ContainsKey))
            throw new ConfigException($"--config {path} is not a LLaVA model config.json " +
                                      $"(it has none of {string.Join(", ", llava)}); " +
                                      $"pass a model folder's config.json, e.g. data/tiny-backbone/config.json, " +
                                      $"or leave --config out");
        return path;
    }

    internal static void Render(ArchitectureParameters arch, int rank, TextWriter output)
    {
        var rows = ParameterLedger.Compute(arch, rank); // validates the rank before anything is printed
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = 80;

        var parts = arch.Groups.Select(g => new[] { g.Name, Count(g.Count), Percent((double)g.Count / arch.Total) })
            .Append(["whole MLLM", Count(arch.Total), Percent(1)]).ToArray();
        ConsoleOutput.WriteTable($"{arch.Name}: parameters by part", ["part", "parameters", "share"], parts,
            console: console);

        var methods = rows.Select(r => new[]
        {
            r.Method, Count(r.Trainable), Count(r.Uploaded), Percent(r.UploadShare), Count(r.FisherUploaded),
            r.ClientResident is { } c ? Count(c) : "n/a", r.ClientShare is { } s ? Percent(s) : "n/a",
            r.StorageSaving is { } v ? Percent(v) : "n/a",
        }).ToArray();
        ConsoleOutput.WriteTable($"{arch.Name}, rank {rank}: per client and round",
            ["method", "trainable", "up/round", "up share", "Fisher/round", "resident", "res. share", "saving"],
            methods,
            legend: "up/round: parameters one client uploads per round (share: of the whole MLLM); "
                + "Fisher/round: Fisher values uploaded besides them; resident: parameters held on one client; "
                + "saving: client storage saved against holding the whole MLLM.",
            console: console);

        foreach (var r in rows) console.WriteLine($"  {r.Method}: {r.Note}", Style.Plain);
        console.WriteLine($"  NanoAdapters = 2 x 2 x {arch.LlmHidden} x {rank}; LoRA = {arch.LlmLayers} layers "
            + $"x sum over {string.Join("/", arch.LoraTargets.Select(t => t.Name))} of (in + out) x {rank}.",
            Style.Plain);
    }

    internal static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// A fraction as a percentage with three decimals, the same in every row (0.015% of 7 B parameters is 1 M).
    /// </summary>
    internal static string Percent(double fraction) =>
        (fraction * 100).ToString("F3", CultureInfo.InvariantCulture) + "%";
}
