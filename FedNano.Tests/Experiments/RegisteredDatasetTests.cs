using FedNano.Data;
using FedNano.Evaluation;
using FedNano.Experiments;
using FedNano.Partitioning;
using FedNano.Reports;
using FedNano.Simulation;
using NUnit.Framework;
using static FedNano.Tests.Simulation.RunCommandTests;

namespace FedNano.Tests.Experiments;

/// <summary>A data set and a partitioner of a user's own, registered by name and named by a config.</summary>
[NonParallelizable]
public class RegisteredDatasetTests
{
    /// <summary>
    /// 40 questions "is it bright?" about flat grey images, bright or dark (<c>tone</c>), with an official train and
    /// test split and a breakdown per tone. Counts its loads.
    /// </summary>
    private sealed class Tones : IFederatedDataset
    {
        public string Name => "tones";
        public string DefaultPartitionBy => "tone";

        public IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Load(DatasetContext context)
        {
            int size = context.ImageSize;
            MultimodalSample One(int i, string split)
            {
                bool bright = i % 2 == 0;
                float value = bright ? 0.9f : 0.1f;
                return new MultimodalSample
                {
                    Id = $"{split}-{i}", Question = "is it bright?", Choices = ["yes", "no"],
                    AnswerIndex = bright ? 0 : 1,
                    Image = SampleImage.FromPixels(Enumerable.Repeat(value, 3 * size * size).ToArray(), size, size),
                    Meta = new Dictionary<string, string> { ["tone"] = bright ? "bright" : "dark", ["split"] = split },
                };
            }
            return new Dictionary<string, IReadOnlyList<MultimodalSample>>
            {
                ["train"] = Enumerable.Range(0, 30).Select(i => One(i, "train")).ToArray(),
                ["test"] = Enumerable.Range(0, 10).Select(i => One(i, "test")).ToArray(),
            };
        }

        public IReadOnlyList<CategoryAccuracy> Breakdown(IReadOnlyCollection<PredictionRecord> records) =>
            Breakdowns.ByField(records, "tone").ToArray();
    }

    /// <summary>Sample i goes to client i mod K.</summary>
    private sealed class RoundRobin : IPartitioner
    {
        public string Name => "round-robin";

        public int[][] Partition(IReadOnlyList<string> labels, SimulationConfig config) =>
            Enumerable.Range(0, config.Clients)
                .Select(k => Enumerable.Range(0, labels.Count).Where(i => i % config.Clients == k).ToArray()).ToArray();
    }

    private static readonly Tones Dataset = new();

    [OneTimeSetUp]
    public void Register()
    {
        DatasetRegistry.Register(Dataset);
        PartitionerRegistry.Register(new RoundRobin());
    }

    private static SimulationConfig Config() =>
        TinyRuns.Config("fedavg") with
        {
            Dataset = "tones", PartitionBy = "tone", PartitionScheme = "round-robin", MinPartitionSize = 2,
        };

    [Test]
    public void ARegisteredDatasetRunsResumesAndReports()
    {
        var config = Config();
        string full = TinyRuns.TempDir("tones-full"), cut = TinyRuns.TempDir("tones-cut");
        FederatedData? data = null;
        var outcome = RunFolder.Run(config, full, new RunHooks { Started = (sim, _, _) => data = sim.Data });
        Assert.That(data!.Clients.Select(c => c.Train.Count + c.Test.Count), Is.EqualTo(new[] { 20, 20 }),
            "round-robin: 40 samples, 2 clients");
        var evens = Enumerable.Range(0, 15).Select(i => $"train-{2 * i}")
            .Concat(Enumerable.Range(0, 5).Select(i => $"test-{2 * i}"));
        Assert.That(data.Clients[0].Train.Concat(data.Clients[0].Test).Select(s => s.Id), Is.EquivalentTo(evens),
            "splits pooled in order");
        Assert.That(File.ReadAllText(Path.Combine(full, RunFolder.ConfigFile)), Does.Contain("\"dataset\": \"tones\""));
        var breakdowns = RunFolder.Breakdowns(config, outcome.Results);
        Assert.That(breakdowns.Select(b => b.Method), Is.EqualTo(new[] { "zero-shot", "fedavg" }));
        Assert.That(breakdowns.All(b =>
                b.Rows.Select(r => r.Category).SequenceEqual(["bright", "dark"]) && b.Rows.Sum(r => r.Count) == 10),
            "the data set's breakdown over both clients' 5 + 5 test samples");

        Assert.Throws<OperationCanceledException>(() => RunFolder.Run(config, cut, new RunHooks
        {
            Progress = p => { if (p.Method == "fedavg" && p.Round == 2) throw new OperationCanceledException(); },
        }));
        Assert.That(RunFolder.Run(config, cut).ResumedFromStep, Is.EqualTo(2));
        foreach (var f in new[] { RunFolder.RoundsFile, RunFolder.SummaryFile })
            Assert.That(File.ReadAllText(Path.Combine(cut, f)), Is.EqualTo(File.ReadAllText(Path.Combine(full, f))), f);

        var results = RunResults.Load(cut);
        Assert.That(results.Config.Dataset, Is.EqualTo("tones"));
        Assert.That(Fednano("report", cut).code, Is.Zero);
        Assert.That(File.ReadAllText(Path.Combine(cut, "report.md")), Does.Contain("Dataset `tones`"));
        var report = SweepReport.Load(cut, out int unfinished);
        Assert.That((unfinished, report.Methods), Is.EqualTo((0, new[] { "zero-shot", "fedavg" })));
    }

    [Test]
    public void ItsNameAndDefaultLabelAreKnown()
    {
        Assert.That(SimulationConfig.DefaultPartitionLabel("tones"), Is.EqualTo("tone"));
        Assert.That(SimulationConfig.Datasets, Is.EqualTo(new[] { "synthetic", "scienceqa", "iconqa", "tones" }));
        Assert.That(DatasetRegistry.Get("iconqa").DefaultPartitionBy, Is.EqualTo("skill"));
    }

    [Test]
    public void UnknownNamesAreOneClearLineBeforeAnythingIsWritten()
    {
        string dir = Path.Combine(TinyRuns.TempDir("unknown"), "run");
        var e = Assert.Throws<ConfigException>(() => RunFolder.Run(Config() with { Dataset = "tonez" }, dir))!;
        Assert.That(e.Message, Does.StartWith("dataset 'tonez' is not one of synthetic, scienceqa, iconqa, tones")
            .And.Contain("DatasetRegistry.Register"));
        e = Assert.Throws<ConfigException>(() => RunFolder.Run(Config() with { PartitionScheme = "mine" }, dir))!;
        Assert.That(e.Message, Does.StartWith("partition_scheme 'mine' is not one of label, client, round-robin"));
        Assert.That(Directory.Exists(dir), Is.False);
        Assert.That(() => DatasetRegistry.Register(new Renamed("synthetic")),
            Throws.ArgumentException.With.Message.Contains("built in"));
    }

    private sealed class Renamed(string name) : IFederatedDataset
    {
        public string Name => name;
        public IReadOnlyDictionary<string, IReadOnlyList<MultimodalSample>> Load(DatasetContext context) =>
            throw new NotSupportedException();
    }
}
