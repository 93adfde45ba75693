using FedNano.Edge;
using FedNano.Experiments;
using FedNano.Reports;
using FedNano.Privacy;
using FedNano.Simulation;
using FedNano.Strategies;
using FedNano.Tests.Experiments;
using FedNano.Tests.Simulation;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Tests.Privacy;

/// <summary>DP-SGD wired into local training (config <c>dp</c>), and its accountant's epsilon in the results.</summary>
public class DpTrainingTests
{
    private static SimulationConfig Config(DpConfig? dp, int rounds = 1) =>
        TinySetup.Config(rounds) with { Dp = dp, Execution = "sequential" };

    // Adapters away from the identity (a fresh up is zero, so down's gradient would be zero too).
    private static void Perturb(NanoEdge edge)
    {
        manual_seed(3);
        using var _ = no_grad();
        foreach (var (_, p) in edge.AdapterParameters()) p.normal_(0, 0.2);
    }

    private static Dictionary<string, Tensor> Grads(NanoEdge edge) =>
        edge.AdapterParameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());

    private static double Norm(IReadOnlyDictionary<string, Tensor> g) =>
        Math.Sqrt(g.Values.Sum(t => t.to_type(ScalarType.Float64).pow(2).sum().item<double>()));

    private static void ZeroGrad(NanoEdge edge)
    {
        foreach (var (_, p) in edge.AdapterParameters()) p.grad?.zero_();
    }

    // Each sample's gradient by autograd through the whole model, the sample alone: the reference.
    private static Dictionary<string, Tensor> AutogradOf(FederatedSimulation sim, EncodedSample sample)
    {
        ZeroGrad(sim.Edge);
        using var batch = EncodedBatch.Create([sample], true, 0, sim.Edge.Device);
        var sent = sim.Edge.Forward(batch);
        var (_, grad) = sim.Server.LossAndGradient(sent.detach(), batch.Labels);
        sent.backward([grad]);
        return Grads(sim.Edge);
    }

    private static Dictionary<string, Tensor> PrivateGradient(FederatedSimulation sim, EncodedSample[] samples,
        DpConfig dp, Generator noise)
    {
        ZeroGrad(sim.Edge);
        using var batch = EncodedBatch.Create(samples, true, 0, sim.Edge.Device);
        sim.Trainer.PrivateStep(batch, dp, noise);
        return Grads(sim.Edge);
    }

    [Test]
    public void ATrainingStepClipsEverySamplesGradientToC()
    {
        var sim = TinySetup.Simulation(Config(null));
        Perturb(sim.Edge);
        var samples = sim.Train[0].Take(6).ToArray();
        var reference = samples.Select(s => AutogradOf(sim, s)).ToArray();
        var norms = reference.Select(Norm).ToArray();
        double c = (norms.Min() + norms.Max()) / 2;         // some samples above C, some below
        Assert.That(norms.Count(n => n > c), Is.InRange(1, samples.Length - 1), string.Join(", ", norms));
        var dp = new DpConfig { NoiseMultiplier = 0, MaxGradNorm = c };

        // one sample a step: the step's gradient is that sample's, clipped: norm min(||g_b||, C), same direction
        for (int b = 0; b < samples.Length; b++)
        {
            var g = PrivateGradient(sim, [samples[b]], dp, new Generator(0));
            Assert.That(Norm(g), Is.LessThanOrEqualTo(c * (1 + 1e-5)), $"sample {b}");
            Assert.That(Norm(g), Is.EqualTo(Math.Min(norms[b], c)).Within(1e-4).Percent, $"sample {b}");
            double scale = Math.Min(1, c / norms[b]);
            foreach (var (name, t) in g)
                Assert.That(t.allclose(reference[b][name] * scale, rtol: 1e-3, atol: 1e-6), Is.True, $"{name}, {b}");
        }

        // the whole batch in one step: the mean of the clipped per-sample gradients, not of the raw ones
        var all = PrivateGradient(sim, samples, dp, new Generator(0));
        foreach (var (name, t) in all)
        {
            var clipped = reference.Select((r, b) => r[name] * Math.Min(1, c / norms[b])).Aggregate((x, y) => x + y)
                / samples.Length;
            Assert.That(t.allclose(clipped, rtol: 1e-3, atol: 1e-6), Is.True, name);
        }
        var raw = reference.Select(r => r["adapter_t.up.weight"]).Aggregate((x, y) => x + y) / samples.Length;
        Assert.That(all["adapter_t.up.weight"].allclose(raw, rtol: 1e-3, atol: 1e-6), Is.False, "clipping binds");

        // noise: N(0, (sigma C / B)^2) added, drawn from the generator
        var noisy = PrivateGradient(sim, samples, dp with { NoiseMultiplier = 1 }, new Generator(7));
        var again = PrivateGradient(sim, samples, dp with { NoiseMultiplier = 1 }, new Generator(7));
        var diff = noisy.Values.Zip(all.Values, (x, y) => (x - y).flatten()).ToArray();
        double std = cat(diff).to_type(ScalarType.Float64).std().item<double>();
        Assert.That(std, Is.EqualTo(c / samples.Length).Within(10).Percent);
        Assert.That(noisy.Keys.All(k => noisy[k].equal(again[k]).all().item<bool>()), Is.True, "seeded");
    }

    [TestCase("fedavg")]
    [TestCase("fednano-ef")]
    public void WithoutNoiseAndAHugeClipNormItTrainsAsWithoutDp(string method)
    {
        var plain = Run(Config(null), method);
        var dp = Run(Config(new DpConfig { NoiseMultiplier = 0, MaxGradNorm = 1e6 }), method);
        var initial = TinySetup.Simulation(Config(null)).Initial;
        Assert.That(dp.uploads, Has.Count.EqualTo(plain.uploads.Count).And.Count.GreaterThan(0));
        for (int i = 0; i < plain.uploads.Count; i++)
            foreach (var (name, t) in plain.uploads[i].Parameters.Tensors)
            {
                double d = (dp.uploads[i].Parameters[name] - t).abs().max().item<float>();
                Assert.That(d, Is.LessThanOrEqualTo(1e-5), $"client {plain.uploads[i].Client}, {name}");
                Assert.That((t - initial[name]).abs().max().item<float>(),
                    Is.GreaterThan(1e-3), "it trained");
            }
        Assert.That(dp.result.Rounds.Select(r => r.TrainLoss),
            Is.EqualTo(plain.result.Rounds.Select(r => r.TrainLoss)).Within(1e-5));
        Assert.That(dp.result.Rounds.Select(r => r.Epsilon), Is.All.EqualTo(double.PositiveInfinity), "sigma 0");
        Assert.That(plain.result.Rounds.Select(r => r.Epsilon), Is.All.NaN);
    }

    [Test]
    public void EpsilonPerClientAndRoundIsTheAccountantsOverTheStepsRun()
    {
        var dp = new DpConfig { NoiseMultiplier = 1.2, MaxGradNorm = 0.5, Delta = 1e-3, FisherNoiseMultiplier = 4 };
        var config = Config(dp, rounds: 2);
        var sim = TinySetup.Simulation(config);
        var fednano = sim.Run("fednano");
        var fedavg = TinySetup.Simulation(config).Run("fedavg");
        foreach (var (result, fisher) in new[] { (fednano, true), (fedavg, false) })
            foreach (var row in result.Rounds)
            {
                int n = sim.Train[row.Client].Length;
                var expected = new RdpAccountant();
                expected.Step((double)config.BatchSize / n, 1.2, row.Round * config.LocalEpochs * ((n + 7) / 8));
                if (fisher) expected.Step(1, 4, row.Round);
                Assert.That(row.Epsilon, Is.EqualTo(expected.Epsilon(1e-3)).Within(1e-9).Percent,
                    $"{result.Method}, round {row.Round}, client {row.Client}");
                Assert.That(row.Epsilon, Is.GreaterThan(0).And.LessThan(double.PositiveInfinity));
            }
        foreach (var row in fednano.Rounds.Where(r => r.Round == 2))
            Assert.That(row.Epsilon, Is.GreaterThan(fednano.Rounds.Single(r => r.Round == 1 && r.Client == row.Client)
                .Epsilon), "more rounds, more epsilon");
        Assert.That(fednano.Rounds.Zip(fedavg.Rounds).All(p => p.First.Epsilon > p.Second.Epsilon), Is.True,
            "the Fisher upload is counted");

        string dir = Path.Combine(Path.GetTempPath(), "fednano-dp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "rounds.csv");
            ResultFiles.Write(path, ResultFiles.Rounds([fednano]));
            var lines = File.ReadAllLines(path);
            int column = Array.IndexOf(lines[0].Split(','), "epsilon");
            Assert.That(column, Is.GreaterThanOrEqualTo(0), lines[0]);
            var written = lines.Skip(1).Select(l => double.Parse(l.Split(',')[column],
                System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.That(written, Is.EqualTo(fednano.Rounds.Select(r => r.Epsilon)).Within(1e-5));
            ResultFiles.Write(path, ResultFiles.Rounds([TinySetup.Simulation(Config(null)).Run("fedavg")]));
            lines = File.ReadAllLines(path);
            column = Array.IndexOf(lines[0].Split(','), "epsilon");
            Assert.That(lines.Skip(1).Select(l => l.Split(',')[column]), Is.All.Empty, "no dp, no epsilon");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void CentralizedIsAccountedAsOneLearnerOnThePooledData()
    {
        var config = Config(new DpConfig { NoiseMultiplier = 1.5, Delta = 1e-4 });
        var sim = TinySetup.Simulation(config);
        var result = sim.Run("centralized");
        int all = sim.Train.Sum(t => t.Length), steps = sim.Train.Sum(t => sim.Trainer.StepsFor(t.Length));
        var expected = new RdpAccountant();
        expected.Step((double)config.BatchSize / all, 1.5, steps);
        Assert.That(result.Rounds.Select(r => r.Epsilon).ToArray(), Has.Length.EqualTo(config.Clients)
            .And.All.EqualTo(expected.Epsilon(1e-4)).Within(1e-9).Percent);
    }

    [Test]
    public void AResumedRunRestoresItsAccountants()
    {
        var config = Config(new DpConfig { NoiseMultiplier = 1.0 }, rounds: 2);
        SimulationState? after1 = null;
        var whole = TinySetup.Simulation(config).Run("fednano",
            afterRound: s => after1 ??= s with { Global = s.Global.Clone(), Rows = [.. s.Rows] });
        var resumed = TinySetup.Simulation(config).Run("fednano", after1);
        Assert.That(resumed.Rounds.Select(r => r.Epsilon), Is.EqualTo(whole.Rounds.Select(r => r.Epsilon)));
        Assert.That(resumed.Rounds.Select(r => r.Loss), Is.EqualTo(whole.Rounds.Select(r => r.Loss)), "same noise");
    }

    [Test]
    public void RunFolderAndReportCarryEpsilon()
    {
        var config = TinyRuns.Config("fedavg") with { Rounds = 2, Dp = new DpConfig() };
        string dir = TinyRuns.TempDir("dp-report");
        try
        {
            RunFolder.Run(config, dir);
            var run = RunResults.Load(dir);
            var fedavg = run.Rounds.Where(r => r.Method == "fedavg").ToArray();
            Assert.That(fedavg.Select(r => r.Epsilon), Is.All.GreaterThan(0));
            Assert.That(run.Rounds.Where(r => r.Method == MethodCatalog.ZeroShot).Select(r => r.Epsilon), Is.All.Null);
            var report = new SweepReport([run]);
            var curve = report.PrivacyCurve(config.Clients, config.Alpha, "fedavg");
            Assert.That(curve.Select(c => c.Round), Is.EqualTo(new[] { 1, 2 }));
            double largest = fedavg.Where(r => r.Round == 2).Max(r => r.Epsilon!.Value);
            Assert.That(curve[1].Epsilon.Mean, Is.EqualTo(largest));
            Assert.That(curve[1].Accuracy.Mean,
                Is.EqualTo(fedavg.Where(r => r.Round == 2).Average(r => r.Accuracy)).Within(1e-9));
            report.Write(dir, "run");
            string md = File.ReadAllText(Path.Combine(dir, "report.md"));
            string eps = largest.ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(md, Does.Contain("## Privacy: accuracy against ε")
                .And.Contain($"| fedavg | 2 | 1 | 2 | {eps} |"));
            Assert.That(File.Exists(Path.Combine(dir, "plots", "accuracy-vs-epsilon_clients-2_alpha-1.png")), Is.True);
        }
        finally { Directory.Delete(dir, true); }
    }

    private sealed class Stop : Exception;

    [Test]
    [Category("Slow")]
    public void ARunResumedFromItsCheckpointFolderHasTheSameEpsilonsAndResults()
    {
        var config = TinyRuns.Config("fednano") with { Dp = new DpConfig { NoiseMultiplier = 0.8 } };
        string full = TinyRuns.TempDir("dp-full"), cut = TinyRuns.TempDir("dp-cut");
        try
        {
            RunFolder.Run(config, full);
            Assert.Throws<Stop>(() => RunFolder.Run(config, cut, new RunHooks
            {
                Progress = p => { if (p.Method == "fednano" && p.Round == 2) throw new Stop(); },
            }));
            Assert.That(RunFolder.Run(config, cut).ResumedFromStep, Is.EqualTo(2));
            string rounds = File.ReadAllText(Path.Combine(full, RunFolder.RoundsFile));
            Assert.That(File.ReadAllText(Path.Combine(cut, RunFolder.RoundsFile)), Is.EqualTo(rounds));
            Assert.That(RunResults.Load(cut).Rounds.Where(r => r.Method == "fednano").Select(r => r.Epsilon),
                Is.All.GreaterThan(0));
        }
        finally
        {
            Directory.Delete(full, true);
            Directory.Delete(cut, true);
        }
    }

    /// <summary>
    /// DP-SGD with the clients batched (each sample clipped with its own client's adapters, each client's noise from
    /// its own generator) gives what it gives client by client: 3 clients of different sizes, 2 rounds, noise that
    /// matters, a clip norm that binds, the noised Fisher upload of FedNano.
    /// </summary>
    [TestCase("fedavg")]
    [TestCase("fednano")]
    [TestCase("fednano-ef")]
    public void BatchedDpEqualsSequential(string method)
    {
        SimulationConfig With(string execution) => TinySetup.Config(rounds: 2) with
        {
            SyntheticSamples = 60, Clients = 3, Alpha = 0.5, MinPartitionSize = 6, BatchSize = 4, LocalEpochs = 2,
            Execution = execution, Dp = new DpConfig { NoiseMultiplier = 0.5, MaxGradNorm = 0.05 },
        };
        var (seq, seqUploads) = Run(With("sequential"), method);
        var (bat, batUploads) = Run(With("batched"), method);
        Assert.That(batUploads.Select(u => u.Client), Is.EqualTo(seqUploads.Select(u => u.Client)));
        Assert.That(seqUploads, Is.Not.Empty);
        for (int i = 0; i < seqUploads.Count; i++)
        {
            var (b, s) = (batUploads[i], seqUploads[i]);
            foreach (var (name, t) in s.Parameters.Tensors)
                Assert.That((b.Parameters[name] - t).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-5f),
                    $"client {s.Client}, {name}");
            if (s.Fisher is { } f)
                foreach (var (name, t) in f.Tensors)
                    Assert.That((b.Fisher![name] - t).abs().max().item<float>(),
                        Is.LessThanOrEqualTo(1e-4f * t.abs().max().item<float>()), $"Fisher of {s.Client}, {name}");
        }
        Assert.That(seqUploads.Select(u => u.Fisher is not null), Is.All.EqualTo(method != "fedavg"));
        Assert.That(bat.Rounds.Select(r => r.Epsilon), Is.EqualTo(seq.Rounds.Select(r => r.Epsilon)));
        Assert.That(bat.Rounds.Select(r => r.Traffic), Is.EqualTo(seq.Rounds.Select(r => r.Traffic)), "ledger");
        Assert.That(bat.Rounds.Select(r => r.TrainLoss), Is.EqualTo(seq.Rounds.Select(r => r.TrainLoss)).Within(1e-5));
    }

    [Test]
    public void DpIsValidated()
    {
        var dp = new DpConfig();
        (Config(dp) with { Execution = "batched" }).Validate();
        Assert.That(() => (Config(dp) with { Methods = ["all"] }).Validate(),
            Throws.TypeOf<ConfigException>().With.Message.Contains(FedDpaF.MethodName));
        Assert.That(() => (Config(dp with { FisherNoiseMultiplier = -1 })).Validate(),
            Throws.TypeOf<ConfigException>().With.Message.StartsWith("dp.fisher_noise_multiplier"));
        Assert.That(() => (Config(dp with { MaxGradNorm = 0 })).Validate(),
            Throws.TypeOf<ConfigException>().With.Message.StartsWith("dp.max_grad_norm"));
        (Config(dp) with { Execution = "auto", Methods = ["fednano", "fedavg", "centralized", "local"] }).Validate();
    }

    private static (MethodResult result, List<ClientUpdate> uploads) Run(SimulationConfig config, string method)
    {
        var recorder = new Recorder(MethodCatalog.Strategy(method, config));
        return (TinySetup.Simulation(config).RunStrategy(recorder), recorder.Uploads);
    }
}
