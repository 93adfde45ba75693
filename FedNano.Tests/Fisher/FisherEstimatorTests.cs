using FedNano.Data.Prompts;
using FedNano.Edge;
using FedNano.Fisher;
using FedNano.Simulation;
using FedNano.Tests.Simulation;
using NUnit.Framework;
using static TorchSharp.torch;

namespace FedNano.Tests.Fisher;

[NonParallelizable] // shares one backbone and the global torch seed
public class FisherEstimatorTests
{
    [Test, Category("Slow")] // 1500 draws: about 15 s on one thread, more on a loaded machine
    public void SampledFisherApproachesTheExpectationOverTheModelsAnswers()
    {
        var sim = TinySetup.Simulation(TinySetup.Config());
        manual_seed(5); // adapters away from the identity, so both factors have gradients
        var random = sim.Initial.Map(t => randn_like(t) * 0.3);
        sim.Edge.LoadAdapterState(random);
        var sample = sim.Train.SelectMany(t => t).First(s => s.ChoiceIds.Length >= 3);
        // closed form, independently of the pass's relabelling: each option encoded as the answer, as the simulation
        // encodes samples; p(y) from the evaluator's loss of that answer's letter; E[g^2] = sum_y p(y) g_y^2
        var options = Enumerable.Range(0, sample.ChoiceIds.Length).Select(y =>
        {
            var s = sample.Sample with { AnswerIndex = y };
            return EncodedSample.Encode(s, sim.Backbone.Template(LlavaPrompt.Build(s)), sim.Backbone.Tokenizer,
                sim.Backbone.Model.TokensPerImage);
        }).ToArray();
        var mass = options.Select(o => Math.Exp(-sim.Evaluator.Predict([o])[0].Loss)).ToArray();
        var p = mass.Select(m => m / mass.Sum()).ToArray();
        Assert.That(p.Max(), Is.LessThan(0.9), "the check needs the model unsure between the options");
        var perAnswer = options.Select(o => sim.Trainer.Fisher([o])).ToArray();
        using var empirical = sim.Trainer.Fisher([sample]);

        using var generator = new Generator(3);
        using var sampled =
            sim.Trainer.Fisher(Enumerable.Repeat(sample, 1500).ToArray(), new SampledFisher(), generator);
        foreach (var (name, f) in sampled.Tensors)
        {
            var closed = p.Select((py, y) => perAnswer[y][name] * py).Aggregate((a, b) => a + b);
            double sum = closed.sum().item<float>(), truth = empirical[name].sum().item<float>();
            Assert.That(sum, Is.GreaterThan(0), name);
            Assert.That(f.sum().item<float>(), Is.EqualTo(sum).Within(4).Percent, $"{name}: total");
            Assert.That(Math.Abs(truth - sum) / sum, Is.GreaterThan(0.1), $"{name}: should differ from the empirical");
            // element-wise: the estimate is a mixture of the same per-answer terms
            double err = (f - closed).abs().sum().item<float>() / closed.abs().sum().item<float>();
            Assert.That(err, Is.LessThan(0.08), $"{name}: relative L1 error");
        }
    }

    [Test]
    public void NormalisedFisherHasMeanOneAndKeepsProportions()
    {
        manual_seed(1);
        using var fisher = new AdapterState(new Dictionary<string, Tensor>
        {
            ["a"] = rand(3, 4) * 1e-6, ["b"] = zeros(5), ["c"] = rand(2, 2) * 3e-5,
        });
        using var n = FisherEstimators.Normalised(fisher);
        double sum = n.Tensors.Values.Sum(t => t.to_type(ScalarType.Float64).sum().item<double>());
        Assert.That(sum / n.Count, Is.EqualTo(1).Within(1e-5));
        double ratio = n["c"][0, 0].item<float>() / fisher["c"][0, 0].item<float>();
        foreach (var (name, t) in fisher.Tensors)
            Assert.That((n[name] - t * ratio).abs().max().item<float>(), Is.LessThan(1e-4), name);
        Assert.That(n["b"].count_nonzero().item<long>(), Is.Zero);
        using var zero = new AdapterState(new Dictionary<string, Tensor> { ["z"] = zeros(3) });
        using var same = FisherEstimators.Normalised(zero);
        Assert.That(same["z"].count_nonzero().item<long>(), Is.Zero, "an all-zero Fisher stays zero");
    }

    [Test]
    public void EveryClientUploadsAMeanOneFisherWhenNormalised()
    {
        var config = TinySetup.Config() with { FisherNormalise = true, Execution = "sequential" };
        foreach (var method in new[] { "fednano", "fednano-ef" })
        {
            var recorder = new Recorder(MethodCatalog.Strategy(method, config));
            TinySetup.Simulation(config).RunStrategy(recorder);
            Assert.That(recorder.Uploads, Has.Count.EqualTo(config.Clients), method);
            foreach (var u in recorder.Uploads)
            {
                double sum = u.Fisher!.Tensors.Values.Sum(t => t.to_type(ScalarType.Float64).sum().item<double>());
                Assert.That(sum / u.Fisher.Count, Is.EqualTo(1).Within(1e-5), $"{method}, client {u.Client}");
            }
        }
    }

    [Test]
    public void EstimatorsAreNamedAndValidated()
    {
        Assert.That(FisherEstimators.Names, Is.EqualTo(new[] { "empirical", "sampled", "ef" }));
        Assert.That(FisherEstimators.Create("sampled", true),
            Is.TypeOf<SampledFisher>().And.Property("Normalise").True);
        Assert.That(FisherEstimators.Create("ef"), Is.InstanceOf<IGradientFisher>());
        Assert.That(new SimulationConfig().Fisher, Is.EqualTo("empirical"));
        Assert.That(() => (new SimulationConfig() with { Fisher = "true" }).Validate(), Throws.TypeOf<ConfigException>()
            .With.Message.EqualTo("fisher 'true' is not one of empirical, sampled, ef"));
        Assert.That(() => (new SimulationConfig() with { Fisher = null! }).Validate(),
            Throws.TypeOf<ConfigException>().With.Message.StartsWith("fisher is null"));
        var fednano = (FedNano.Strategies.FedNanoFisher)MethodCatalog.Strategy("fednano",
            new SimulationConfig { Fisher = "ef" });
        Assert.That(fednano.Estimator, Is.TypeOf<SquaredGradientFisher>());
        Assert.That(MethodCatalog.Strategy("fednano-ef", new SimulationConfig()).ConfigureFit(1, 0).Fisher,
            Is.TypeOf<SquaredGradientFisher>());
    }
}
