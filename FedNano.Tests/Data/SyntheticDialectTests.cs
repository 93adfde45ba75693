using FedNano.Data.Synthetic;
using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Data;

public class SyntheticDialectTests
{
    private static readonly string[] Colours = ["rouge", "vert", "bleu", "jaune", "violet", "blanc"];

    [Test]
    public void ADialectRenamesTheThingsButNotTheImageOrTheAnswer()
    {
        var samples = SyntheticBenchmark.Generate(200, 3, SyntheticDialect.Client, 8);
        var colour = samples.First(s => s.Meta["category"] == "color");
        var two = SyntheticBenchmark.InClientDialect(colour, 2);
        Assert.That(two.AnswerIndex, Is.EqualTo(colour.AnswerIndex));
        Assert.That(two.Image, Is.SameAs(colour.Image));
        for (int i = 0; i < colour.Choices.Count; i++)
            Assert.That(two.Choices[i], Is.EqualTo(Colours[(Array.IndexOf(Colours, colour.Choices[i]) + 2) % 6]));
        Assert.That(two.Question, Is.Not.EqualTo(colour.Question), "the shape in the question is renamed too");
        Assert.That(SyntheticBenchmark.InClientDialect(colour, 0), Is.SameAs(colour));
        // every dialect calls each thing by a word of the same list, a different one in each dialect
        foreach (var s in samples)
        {
            var answers = Enumerable.Range(0, SyntheticBenchmark.MaxClientDialects)
                .Select(d => SyntheticBenchmark.InClientDialect(s, d)).Select(x => x.Choices[x.AnswerIndex]).ToArray();
            Assert.That(answers.Distinct().Count(), Is.EqualTo(answers.Length), s.Id);
        }
    }

    [Test]
    public void ClientsSpeakDialectKModNAndTheDefaultChangesNothing()
    {
        var config = new SimulationConfig { SyntheticSamples = 120, Clients = 3, SyntheticDialects = 2 };
        var samples = SyntheticBenchmark.Generate(120, 1, SyntheticDialect.Client, 8);
        var plain = FederatedData.Partition(samples, config with { SyntheticDialects = 1 });
        var mixed = FederatedData.Partition(samples, config);
        for (int k = 0; k < 3; k++)
        {
            var expected = plain.Clients[k].Train.Select(s => SyntheticBenchmark.InClientDialect(s, k % 2).Choices);
            Assert.That(mixed.Clients[k].Train.Select(s => s.Choices), Is.EqualTo(expected), $"client {k}");
            Assert.That(plain.Clients[k].Train.All(s => samples.Contains(s)), $"client {k}: default keeps the samples");
        }
        Assert.That(() => (config with { SyntheticDialects = 5 }).Validate(), Throws.TypeOf<ConfigException>()
            .With.Message.EqualTo("synthetic_dialects must be at most 4 (got 5)"));
        Assert.That(() => (config with { Dataset = "scienceqa", DataRoot = "x" }).Validate(),
            Throws.TypeOf<ConfigException>().With.Message
                .StartsWith("synthetic_dialects applies to dataset synthetic"));
    }
}
