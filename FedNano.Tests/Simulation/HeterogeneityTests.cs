using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Experiments;
using FedNano.Simulation;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Simulation;

/// <summary>
/// Heterogeneous adapter ranks (<c>adapter.client_ranks</c>) and missing modalities (<c>missing_modality</c>).
/// </summary>
public class HeterogeneityTests
{
    private static SimulationConfig Ranked(int[]? ranks, string merging = "pad", string execution = "sequential",
        int rounds = 2) => TinySetup.Config(rounds) with
    {
        Execution = execution,
        Adapter = new AdapterConfig { Rank = 4, ClientRanks = ranks is null ? null : new() { PerClient = ranks },
            RankMerging = merging },
    };

    private static bool Zero(Tensor t) => t.numel() == 0 || t.eq(0).all().item<bool>();

    /// <summary>Keeps a copy of every client's trained adapters, then behaves as <paramref name="inner"/>.</summary>
    private sealed class Trained(IStrategy inner) : IStrategy
    {
        public List<(int client, AdapterState state)> States { get; } = [];
        public string Name => inner.Name;
        public FitInstructions ConfigureFit(int round, int client) => inner.ConfigureFit(round, client);
        public void OnClientTrained(int round, int client, AdapterState trained) =>
            States.Add((client, trained.Clone()));
        public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) =>
            inner.Aggregate(round, global, updates);
    }

    [TestCase("sequential")]
    [TestCase("batched")]
    public void ARankRClientsPaddedComponentsStayExactlyZeroAndItMovesOnlyItsRank(string execution)
    {
        var sim = TinySetup.Simulation(Ranked([2, 4], execution: execution));
        var trained = new Trained(new FedNanoFisher());
        var rows = sim.RunStrategy(trained).Rounds.Where(r => r.Round > 0).ToArray();
        Assert.That(trained.States.Count(s => s.client == 0), Is.EqualTo(2));
        foreach (var (client, s) in trained.States.Where(s => s.client == 0))
            foreach (var side in new[] { "adapter_i", "adapter_t" })
            {
                Assert.That(Zero(s[side + ".down.weight"].narrow(0, 2, 2)), Is.True, $"{side} down rows 2..3");
                Assert.That(Zero(s[side + ".up.weight"].narrow(1, 2, 2)), Is.True, $"{side} up columns 2..3");
                Assert.That(Zero(s[side + ".up.weight"].narrow(1, 0, 2)), Is.False, $"{side} up columns 0..1 train");
            }
        long d = sim.Initial["adapter_t.down.weight"].shape[1];
        foreach (var r in rows)
        {
            long rank = r.Client == 0 ? 2 : 4, values = 2 * 2 * d * rank; // two adapters, down [r, d] + up [d, r]
            Assert.That(r.Traffic.UploadedParams, Is.EqualTo(values), $"client {r.Client} round {r.Round}");
            Assert.That(r.Traffic.UploadedFisher, Is.EqualTo(values));
            Assert.That(r.Traffic.DownloadedParams, Is.EqualTo(values));
            Assert.That(r.Traffic.UploadedBytes, Is.EqualTo(2 * 4 * values));
        }
        foreach (var s in trained.States) s.state.Dispose();
    }

    [Test]
    public void ClientRanksAllAtTheGlobalRankChangeNothing()
    {
        MethodResult Run(int[]? ranks, Recorder recorder) => TinySetup.Simulation(Ranked(ranks)).RunStrategy(recorder);
        var (plain, padded) = (new Recorder(new FedNanoFisher()), new Recorder(new FedNanoFisher()));
        var a = Run(null, plain);
        var b = Run([4, 4], padded);
        Assert.That(b.Rounds.Select(r => (r.Accuracy, r.Loss, r.TrainLoss, r.Traffic)),
            Is.EqualTo(a.Rounds.Select(r => (r.Accuracy, r.Loss, r.TrainLoss, r.Traffic))));
        foreach (var (x, y) in plain.Globals.Zip(padded.Globals))
            foreach (var (key, t) in x.Tensors) Assert.That(t.equal(y[key]).all().item<bool>(), Is.True, key);
    }

    [Test]
    public void SvdMergingRefactorisesTheMeanProductToEachClientsRank()
    {
        var config = Ranked([2, 4], "svd");
        var plan = RankPlan.Of(config)!;
        const int d = 12;
        manual_seed(3);
        AdapterState Adapters(int rank) => new(new()
        {
            ["adapter_i.down.weight"] = randn(rank, d), ["adapter_i.up.weight"] = randn(d, rank),
            ["adapter_t.down.weight"] = randn(rank, d), ["adapter_t.up.weight"] = randn(d, rank),
        });
        ClientUpdate[] updates = [new(0, 10, Adapters(2), null), new(1, 30, Adapters(4), null)];
        using var global = Adapters(4);
        using var next = plan.Aggregate(new FedAvg(), 1, global, updates);
        foreach (var prefix in new[] { "adapter_i.", "adapter_t." })
        {
            var mean = updates
                .Select(u => u.Parameters[prefix + "up.weight"].matmul(u.Parameters[prefix + "down.weight"])
                    * (u.Samples / 40.0)).Aggregate((x, y) => x + y);
            var s = linalg.svdvals(mean.to_type(ScalarType.Float64));
            foreach (int client in new[] { 0, 1 })
            {
                int r = plan.Ranks[client];
                using var own = plan.Own(client, next);
                Assert.That(own[prefix + "down.weight"].shape, Is.EqualTo(new long[] { r, d }));
                Assert.That(own[prefix + "up.weight"].shape, Is.EqualTo(new long[] { d, r }));
                var error = (mean - own[prefix + "up.weight"].matmul(own[prefix + "down.weight"])).pow(2).sum()
                    .item<float>();
                // Eckart-Young: the dropped singular values
                double truncated = s.narrow(0, r, s.shape[0] - r).pow(2).sum().item<double>();
                Assert.That(error, Is.EqualTo(truncated).Within(1e-4 * s.pow(2).sum().item<double>()),
                    $"{prefix} r={r}");
                Assert.That(truncated, Is.GreaterThan(1e-3));
            }
        }
    }

    [Test]
    public void AClientWithoutImagesLeavesNanoAdapterIsFisherExactlyZeroAndFisherMergingToTheOthers()
    {
        var config = TinySetup.Config(1) with
        {
            Execution = "sequential", MissingModality = new() { Images = new() { Clients = [0] } },
        };
        var sim = TinySetup.Simulation(config);
        Assert.That(sim.Data.Clients[0].Train.Concat(sim.Data.Clients[0].Test).All(s => s.Image is null), Is.True);
        Assert.That(sim.Data.Clients[1].Train.All(s => s.Image is not null), Is.True);
        var recorder = new Recorder(new FedNanoFisher());
        var result = sim.RunStrategy(recorder);
        var (without, with) =
            (recorder.Uploads.Single(u => u.Client == 0), recorder.Uploads.Single(u => u.Client == 1));
        foreach (var key in new[] { "adapter_i.down.weight", "adapter_i.up.weight" })
        {
            Assert.That(Zero(without.Fisher![key]), Is.True, key);
            Assert.That(without.Parameters[key].equal(sim.Initial[key]).all().item<bool>(), Is.True,
                $"{key} untrained");
            Assert.That(Zero(with.Fisher![key]), Is.False, key);
            var informed = with.Fisher[key] > 1e-20;
            Assert.That(recorder.Globals[0][key][informed].allclose(with.Parameters[key][informed], 1e-5, 1e-7),
                Is.True, $"{key}: Fisher merging takes the client with images");
        }
        Assert.That(Zero(without.Fisher!["adapter_t.up.weight"]), Is.False, "NanoAdapter-T still trains");
        var rows = RunFolder.Breakdowns(config, [result]).Single().Rows;
        Assert.That(rows.Select(r => (r.Group, r.Category)), Is.SupersetOf(new[]
            { ("modality", "full"), ("modality", "no images"), ("client", "0 (no images)"), ("client", "1 (full)") }));
        Assert.That(rows.Single(r => r.Category == "no images").Count, Is.EqualTo(sim.Data.Clients[0].Test.Count));
    }

    [TestCase("{\"clients\": 2, \"adapter\": {\"rank\": 8, \"client_ranks\": [4, 16]}}",
        "adapter.client_ranks: rank 16 must be in 1..adapter.rank (8)")]
    [TestCase("{\"clients\": 3, \"adapter\": {\"client_ranks\": [4, 4]}}", "lists 2 ranks for 3 clients")]
    [TestCase("{\"adapter\": {\"client_ranks\": {\"16\": 0.5, \"64\": 0.3}}}", "sum to 0.8")]
    [TestCase("{\"adapter\": {\"client_ranks\": {\"16\": 1.5}}}", "every probability must be in [0, 1]")]
    [TestCase("{\"adapter\": {\"client_ranks\": {\"x\": 1}}}", "rank 'x' is not a whole number")]
    [TestCase("{\"adapter\": {\"client_ranks\": 16}}", "expected a list of ranks")]
    [TestCase("{\"adapter\": {\"rank_merging\": \"mean\"}}", "adapter.rank_merging must be pad or svd")]
    [TestCase("{\"missing_modality\": {\"images\": [0, 7]}}", "missing_modality.images: client 7 is outside 0..4")]
    [TestCase("{\"missing_modality\": {\"context\": [1, 1]}}", "missing_modality.context lists a client twice")]
    [TestCase("{\"missing_modality\": {\"images\": 1.5}}", "missing_modality.images share must be in [0, 1]")]
    [TestCase("{\"missing_modality\": {\"images\": \"all\"}}", "expected a list of client indices")]
    [TestCase("{\"missing_modality\": {\"audio\": [0]}}", "audio")]
    public void BadHeterogeneitySettingsAreRefusedWithTheirField(string json, string expected)
    {
        string path = Path.Combine(Path.GetTempPath(), $"fednano-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            Assert.That(() => SimulationConfig.Load(path),
                Throws.TypeOf<ConfigException>().With.Message.Contains(expected).And.Message.Contains(path));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void DrawnRanksAndSharesFollowTheSeedAndTheConfigRoundTrips()
    {
        var ranks = new ClientRanks { Distribution = new Dictionary<int, double> { [16] = 0.25, [64] = 0.75 } };
        var drawn = ranks.Resolve(4000, 5);
        Assert.That(drawn, Is.EqualTo(ranks.Resolve(4000, 5)));
        Assert.That(drawn.Count(r => r == 16) / 4000.0, Is.EqualTo(0.25).Within(0.03));
        Assert.That(drawn.Distinct().Order(), Is.EqualTo(new[] { 16, 64 }));
        var share = new ClientSelection { Share = 0.4 }.Resolve(5, 1);
        Assert.That(share, Has.Length.EqualTo(2).And.EqualTo(new ClientSelection { Share = 0.4 }.Resolve(5, 1)));
        Assert.That(new SimulationConfig().ToJson(),
            Does.Not.Contain("client_ranks").And.Not.Contain("missing_modality"));
        var config = new SimulationConfig
        {
            Adapter = new AdapterConfig { ClientRanks = ranks, RankMerging = "svd" },
            MissingModality = new() { Images = new() { Share = 0.4 }, Context = new() { Clients = [1, 3] } },
        };
        string path = Path.Combine(Path.GetTempPath(), $"fednano-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, config.ToJson());
        try { Assert.That(SimulationConfig.Load(path).ToJson(), Is.EqualTo(config.ToJson())); }
        finally { File.Delete(path); }
        Assert.That(config.ToJson(), Does.Contain("\"16\": 0.25").And.Contain("\"images\": 0.4"));
    }
}
