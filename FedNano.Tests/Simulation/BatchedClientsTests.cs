using FedNano.Data.Synthetic;
using FedNano.Edge;
using FedNano.Simulation;
using FedNano.Strategies;
using NUnit.Framework;

namespace FedNano.Tests.Simulation;

/// <summary>Batched clients (<c>execution: batched</c>) give what training them one by one gives.</summary>
public class BatchedClientsTests
{
    // Three clients of different sizes (so of different step counts: some run out of batches before others),
    // two epochs of batches of 4, two rounds (the second starts from the aggregate), a proximal weight that matters;
    // passes of at most 150 tokens (a few samples), so a step's clients span several passes through the LLM.
    private static SimulationConfig Config(string execution) => TinySetup.Config(rounds: 2) with
    {
        SyntheticSamples = 60, Clients = 3, Alpha = 0.5, MinPartitionSize = 6, BatchSize = 4, LocalEpochs = 2,
        FedProxMu = 0.5, Execution = execution, TrainBatchTokens = 150,
    };

    [TestCase("fedavg")]
    [TestCase("fedprox")]
    [TestCase("fednano-ef")]
    [TestCase("fednano")]
    [TestCase("fednano-sampled")] // model-sampled answers, each client's own draws, normalised
    [TestCase("local")]
    [TestCase("extra-loss")]
    [TestCase("feddpa-f")] // each client's LoRA inside the LLM and its own connector
    public void BatchedEqualsSequential(string method)
    {
        var (seq, seqUploads, seqGlobals) = Run(method, "sequential");
        var (bat, batUploads, batGlobals) = Run(method, "batched");

        var sizes = TinySetup.Simulation(Config("batched")).Train.Select(t => (t.Length + 3) / 4).ToArray();
        Assert.That(sizes.Distinct().Count(), Is.EqualTo(3), $"steps should differ ({string.Join(", ", sizes)})");
        Assert.That(batUploads.Select(u => u.Client), Is.EqualTo(seqUploads.Select(u => u.Client)));
        // FedDPA-F's connector: AdamW divides by the root of the squared gradients, so entries whose gradients are
        // near zero magnify rounding (round 1 agrees to 2e-7, one entry in round 2 to 4e-5; its LoRA to 1e-6)
        double tolerance = method == "feddpa-f" ? 1e-4 : 1e-5;
        for (int i = 0; i < seqUploads.Count; i++)
        {
            var (b, s) = (batUploads[i], seqUploads[i]);
            AssertClose(b.Parameters, s.Parameters, tolerance, $"client {s.Client}'s state");
            if (s.Fisher is { } f)
                AssertClose(b.Fisher!, f, 1e-4 * f.Tensors.Values.Max(t => t.abs().max().item<float>()), "Fisher");
        }
        for (int i = 0; i < seqGlobals.Count; i++)
            AssertClose(batGlobals[i], seqGlobals[i], tolerance, $"global or personal state {i + 1}");
        Assert.That(bat.Rounds.Select(r => r.Traffic), Is.EqualTo(seq.Rounds.Select(r => r.Traffic)), "ledger");
        Assert.That(bat.Rounds.Select(r => r.TrainLoss), Is.EqualTo(seq.Rounds.Select(r => r.TrainLoss)).Within(1e-5));
        Assert.That(bat.Rounds.Select(r => r.Loss), Is.EqualTo(seq.Rounds.Select(r => r.Loss)).Within(1e-5));
        if (method == "local") Assert.That(seqUploads, Is.Empty);
        else Assert.That(seqUploads.Select(u => u.Fisher is not null), Is.All.EqualTo(method.StartsWith("fednano")));
    }

    [Test]
    public void FreeFormAnswersBatchedEqualSequential()
    {
        var (seq, bat) = (RunFreeForm("sequential"), RunFreeForm("batched"));

        var texts = seq.Final.SelectMany(p => p).Where(p => p.PredictedText is not null).ToArray();
        Assert.That(texts.Length, Is.GreaterThan(8), "free-form test samples");
        Assert.That(texts.Select(p => p.PredictedText).Distinct().Count(), Is.GreaterThan(1), "answers that differ");
        for (int k = 0; k < seq.Final.Count; k++)
        {
            Assert.That(bat.Final[k].Select(p => (p.Sample.Id, p.Predicted, p.PredictedText)),
                Is.EqualTo(seq.Final[k].Select(p => (p.Sample.Id, p.Predicted, p.PredictedText))), $"client {k}");
            Assert.That(bat.Final[k].Select(p => p.Loss), Is.EqualTo(seq.Final[k].Select(p => p.Loss)).Within(1e-5));
        }
        Assert.That(bat.Rounds.Select(r => r.Traffic), Is.EqualTo(seq.Rounds.Select(r => r.Traffic)), "ledger");
    }

    /// <summary>Local training (every client its own adapters) for a round on the three clients, every other test
    /// sample a free-form question.</summary>
    private static MethodResult RunFreeForm(string execution)
    {
        var config = Config(execution) with { Rounds = 1, SyntheticSamples = 96 };
        var samples = SyntheticBenchmark.Generate(config.SyntheticSamples, config.Seed, SyntheticDialect.Client, 32);
        var data = FederatedData.Partition(samples, config);
        data = data with
        {
            Clients = data.Clients.Select(c => c with
            {
                Test = c.Test.Select((s, i) => i % 2 == 1 ? s : s with
                {
                    Choices = [], AnswerIndex = -1, AnswerText = s.Choices[s.AnswerIndex],
                }).ToArray(),
            }).ToArray(),
        };
        var sim = new FederatedSimulation(config, TinySetup.Backbone, data);
        return sim.RunStrategy(MethodCatalog.Strategy("local", config)); // each client its own adapters
    }

    [Test]
    public void ZeroShotBatchedEqualsSequential()
    {
        var (seq, bat) = (TinySetup.Simulation(Config("sequential")).ZeroShot(),
            TinySetup.Simulation(Config("batched")).ZeroShot());

        // identity adapters stacked per sample pass the raw sequence on exactly, so the scores are the same numbers
        Assert.That(bat.Final.SelectMany(p => p).Select(p => (p.Sample.Id, p.Predicted, p.Loss)),
            Is.EqualTo(seq.Final.SelectMany(p => p).Select(p => (p.Sample.Id, p.Predicted, p.Loss))));
        Assert.That(bat.Rounds, Is.EqualTo(seq.Rounds));
    }

    [Test]
    public void ExecutionIsValidated()
    {
        Assert.That(() => (new SimulationConfig() with { Execution = "parallel" }).Validate(),
            Throws.TypeOf<ConfigException>().With.Message.Contains("execution must be auto, batched or sequential"));
        Assert.That(new SimulationConfig().Execution, Is.EqualTo("auto"));
    }

    private static (MethodResult result, List<ClientUpdate> uploads, List<AdapterState> globals) Run(
        string method, string execution)
    {
        var config = Config(execution);
        var sim = TinySetup.Simulation(config);
        var strategy = method switch
        {
            "extra-loss" => new WithExtraLoss(),
            "fednano-sampled" =>
                MethodCatalog.Strategy("fednano", config with { Fisher = "sampled", FisherNormalise = true }),
            _ => MethodCatalog.Strategy(method, config),
        };
        var recorder = new Recorder(strategy);
        var result = sim.RunStrategy(recorder);
        var uploads = recorder.Uploads;
        // Local uploads nothing: compare the clients' own adapters after the last round instead.
        if (method == "local") uploads = [];
        // FedDPA-F: the local LoRA each client fine-tuned after the last round too
        var personal = strategy is FedDpaF dpa ? dpa.LocalLora.OrderBy(p => p.Key).Select(p => p.Value.Clone()) : [];
        return (result, uploads, method == "local" ? LocalStates(sim, recorder) : [.. recorder.Globals, .. personal]);
    }

    private static List<AdapterState> LocalStates(FederatedSimulation sim, Recorder recorder) =>
        Enumerable.Range(0, sim.Train.Length).Select(k => recorder.ClientState(k, sim.Initial)!.Clone()).ToList();

    private static void AssertClose(AdapterState actual, AdapterState expected, double tolerance, string what)
    {
        foreach (var (name, e) in expected.Tensors)
        {
            double diff = (actual[name] - e).abs().max().item<float>();
            Assert.That(diff, Is.LessThanOrEqualTo(tolerance), $"{what}: {name} differs by {diff}");
        }
    }

    /// <summary>FedAvg with a user's extra loss term on the live adapters (an L2 pull towards zero).</summary>
    private sealed class WithExtraLoss : IStrategy
    {
        private readonly FedAvg inner = new();
        public string Name => "extra-loss";
        public FitInstructions ConfigureFit(int round, int client) => new()
        {
            ExtraLoss = p => p.Values.Select(t => t.pow(2).sum()).Aggregate((a, b) => a + b) * 0.05,
        };
        public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
            inner.Aggregate(round, global, updates);
    }
}
