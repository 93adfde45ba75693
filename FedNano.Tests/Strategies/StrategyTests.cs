using FedNano.Edge;
using FedNano.Ledgers;
using FedNano.Simulation;
using FedNano.Strategies;
using NUnit.Framework;
using static TorchSharp.torch;

using FedNano.Tests.Simulation;

namespace FedNano.Tests.Strategies;

[NonParallelizable] // shares one backbone and the global torch seed
public class StrategyTests
{
    private static bool Same(AdapterState a, AdapterState b) =>
        a.Tensors.Count == b.Tensors.Count && a.Tensors.All(p => p.Value.equal(b[p.Key]).all().item<bool>());

    [Test]
    public void FedProxWithMuZeroIsFedAvgBitForBit()
    {
        var config = TinySetup.Config(rounds: 2);
        var avg = new Recorder(new FedAvg());
        var prox = new Recorder(new FedProx(0));
        var a = TinySetup.Simulation(config).RunStrategy(avg);
        var p = TinySetup.Simulation(config).RunStrategy(prox);
        Assert.That(avg.Globals, Has.Count.EqualTo(2));
        for (int r = 0; r < 2; r++)
            Assert.That(Same(avg.Globals[r], prox.Globals[r]), $"round {r + 1}: global adapters differ");
        Assert.That(p.Rounds.Select(x => (x.Loss, x.TrainLoss)),
            Is.EqualTo(a.Rounds.Select(x => (x.Loss, x.TrainLoss))));
        // and the proximal term does something once mu > 0
        var prox1 = new Recorder(new FedProx(10));
        TinySetup.Simulation(config).RunStrategy(prox1);
        Assert.That(Same(avg.Globals[1], prox1.Globals[1]), Is.False);
    }

    [Test]
    public void FedNanoEfFisherEqualsExactFisherWithBatchOneAndNoLearning()
    {
        var config = TinySetup.Config() with
            { BatchSize = 1, LearningRate = 0, LocalEpochs = 1, SyntheticSamples = 20, MinPartitionSize = 4 };
        var exact = new Recorder(new FedNanoFisher());
        var ef = new Recorder(new FedNanoEf());
        TinySetup.Simulation(config).RunStrategy(exact);
        TinySetup.Simulation(config).RunStrategy(ef);
        // the exact per-sample Fisher does not depend on how samples are batched
        var batched = new Recorder(new FedNanoFisher());
        TinySetup.Simulation(config with { BatchSize = 5 }).RunStrategy(batched);
        Assert.That(ef.Uploads.Select(u => u.Client), Is.EqualTo(exact.Uploads.Select(u => u.Client)));
        for (int i = 0; i < exact.Uploads.Count; i++)
            foreach (var (name, f) in exact.Uploads[i].Fisher!.Tensors)
            {
                var g = ef.Uploads[i].Fisher![name];
                double scale = f.abs().max().item<float>();
                Assert.That(f.shape, Is.EqualTo(g.shape).And.EqualTo(exact.Uploads[i].Parameters[name].shape), name);
                if (name.EndsWith("up.weight"))
                    Assert.That(scale, Is.GreaterThan(0), $"{name}: the check needs a nonzero Fisher");
                Assert.That((f - g).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-4 * scale + 1e-12),
                    $"client {exact.Uploads[i].Client}, {name}");
                Assert.That((f - batched.Uploads[i].Fisher![name]).abs().max().item<float>(),
                    Is.LessThanOrEqualTo(1e-4 * scale + 1e-12), $"batched, {name}");
            }
    }

    [Test]
    public void LocalCommunicatesNothingAndKeepsItsOwnAdapters()
    {
        var config = TinySetup.Config(rounds: 2);
        var sim = TinySetup.Simulation(config);
        var local = new Local();
        var result = sim.RunStrategy(local);
        Assert.That(result.Rounds, Has.Count.EqualTo(2 * config.Clients));
        foreach (var r in result.Rounds)
        {
            Assert.That((r.Traffic.UploadedParams, r.Traffic.UploadedFisher, r.Traffic.UploadedBytes,
                    r.Traffic.DownloadedParams, r.Traffic.DownloadedBytes),
                Is.EqualTo((0L, 0L, 0L, 0L, 0L)));
            Assert.That(r.Traffic.SplitBytesTrain, Is.GreaterThan(0));
            Assert.That(r.Traffic.ClientResidentParams,
                Is.EqualTo(sim.EdgeFrozenParameters + sim.AdapterParameterCount));
        }
        var s0 = ((IStrategy)local).ClientState(0, sim.Edge.AdapterState())!;
        var s1 = ((IStrategy)local).ClientState(1, sim.Edge.AdapterState())!;
        Assert.That(Same(s0, s1), Is.False, "clients trained alone on different data end with different adapters");
    }

    [TestCase("fedavg")]
    [TestCase("fednano")]
    [TestCase("fedprox")]
    public void LedgerCountsTheRealUploadsInFloat32Bytes(string method)
    {
        var config = TinySetup.Config();
        var sim = TinySetup.Simulation(config);
        var strategy = new Recorder(MethodCatalog.Strategy(method, config)!);
        var result = sim.RunStrategy(strategy);
        var arch = ArchitectureParameters.Llava(sim.Backbone.Llava().Config, "tiny");
        var ledger = ParameterLedger.Compute(arch, config.Adapter.Rank)
            .Single(m => m.Method.Equals(method, StringComparison.OrdinalIgnoreCase));
        foreach (var r in result.Rounds)
        {
            var upload = strategy.Uploads.Single(u => u.Client == r.Client);
            Assert.That(r.Traffic.UploadedParams, Is.EqualTo(upload.Parameters.Count).And.EqualTo(ledger.Uploaded));
            Assert.That(r.Traffic.UploadedFisher,
                Is.EqualTo(upload.Fisher?.Count ?? 0).And.EqualTo(ledger.FisherUploaded));
            Assert.That(r.Traffic.UploadedBytes, Is.EqualTo(4 * (r.Traffic.UploadedParams + r.Traffic.UploadedFisher)));
            Assert.That(r.Traffic.DownloadedBytes, Is.EqualTo(4 * r.Traffic.DownloadedParams));
            Assert.That(r.Traffic.DownloadedParams, Is.EqualTo(ledger.Uploaded));
            Assert.That(r.Traffic.ClientResidentParams, Is.EqualTo(ledger.ClientResident));
            Assert.That(r.Traffic.SplitBytesEval, Is.GreaterThan(0));
        }
        // training crosses the split once up (activations) and once down (gradients) per step, 4 bytes a value
        var train = sim.Data.Clients[0].Train.Count;
        Assert.That(result.Rounds.First(r => r.Client == 0).Traffic.SplitBytesTrain % (2 * 4 * arch.LlmHidden),
            Is.Zero);
    }

    [Test]
    public void FedDpaFKeepsItsLocalLoraOnTheClient()
    {
        var config = TinySetup.Config(rounds: 2);
        var sim = TinySetup.Simulation(config);
        using var before = sim.Backbone.Model.LanguageModel.state_dict().Values.First().clone();
        var dpa = new FedDpaF { RecordUploads = true };
        var result = sim.RunStrategy(dpa);
        var arch = ArchitectureParameters.Llava(sim.Backbone.Llava().Config, "tiny");
        int rank = config.FedDpa.LoraRank!.Value;
        var ledger = ParameterLedger.Compute(arch, rank).Single(m => m.Method == "FedDPA-F");
        Assert.That(dpa.Uploads, Has.Count.EqualTo(2 * config.Clients));
        Assert.That(dpa.LocalLora.Keys, Is.EquivalentTo(new[] { 0, 1 }));
        foreach (var u in dpa.Uploads)
        {
            Assert.That(u.Parameters.Count, Is.EqualTo(ledger.Uploaded), "global LoRA + connector");
            foreach (var (k, localState) in dpa.LocalLora)
                foreach (var (name, t) in localState.Tensors)
                    Assert.That(u.Parameters.Tensors.Values
                            .Any(v => v.shape.SequenceEqual(t.shape) && v.equal(t).all().item<bool>()), Is.False,
                        $"client {k}'s local {name} appears in client {u.Client}'s upload");
        }
        foreach (var r in result.Rounds)
        {
            Assert.That(r.Traffic.UploadedParams, Is.EqualTo(ledger.Uploaded));
            Assert.That(r.Traffic.UploadedBytes, Is.EqualTo(4 * r.Traffic.UploadedParams));
            Assert.That(r.Traffic.ClientResidentParams, Is.EqualTo(ledger.ClientResident));
            Assert.That(r.Traffic.SplitBytesTrain + r.Traffic.SplitBytesEval, Is.Zero);
        }
        Assert.That(sim.Backbone.Model.LanguageModel.state_dict().Values.First().equal(before).all().item<bool>(),
            "the shared base LLM stays frozen");
    }

    [Test]
    public void CentralizedTrainsAtTheServerWithoutTraffic()
    {
        var result = TinySetup.Simulation(TinySetup.Config()).Run("centralized");
        Assert.That(result.Rounds.All(r => r.Traffic == new ClientTraffic()), Is.True);
        Assert.That(result.ClientResident, Is.Null);
        Assert.That(result.Rounds.All(r => !double.IsNaN(r.TrainLoss)), Is.True);
    }
}
