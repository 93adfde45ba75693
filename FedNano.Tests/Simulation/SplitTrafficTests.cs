using FedNano.Simulation;
using NUnit.Framework;

namespace FedNano.Tests.Simulation;

/// <summary>The bytes counted across the split are those of the messages a client really exchanges.</summary>
public class SplitTrafficTests
{
    [Test]
    public void SplitBytesAreEveryStepsAndEveryBatchsMessages()
    {
        var config = TinySetup.Config() with { SyntheticSamples = 60, Clients = 2, BatchSize = 4, LocalEpochs = 2 };
        // evaluation batches of two samples, padded to the longer one
        int longest = TinySetup.Simulation(config).Test.SelectMany(t => t).Max(s => s.PromptIds.Length);
        config = config with { EvalBatchTokens = 2 * longest };
        var sim = TinySetup.Simulation(config);
        var result = sim.Run("fedavg");
        long tokenBytes = sim.Backbone.Model.LanguageModel.Config.HiddenSize * sizeof(float);
        for (int k = 0; k < 2; k++)
        {
            // training: each mini-batch's sequences up and their gradient down, padded to the batch's longest
            var rng = sim.DataOrder(1, k);
            long train = 0;
            for (int epoch = 0; epoch < config.LocalEpochs; epoch++)
                train += sim.Train[k].OrderBy(_ => rng.Next()).Chunk(config.BatchSize)
                    .Sum(b => 2L * b.Length * b.Max(s => s.PromptIds.Length + s.TargetIds.Length) * tokenBytes);
            // evaluation: each token-budget batch's prompts up, the offered letters' scores down
            var test = sim.Test[k];
            Assert.That(test.All(s => s.ChoiceIds.Length > 0), "multiple choice only");
            var batches = Evaluator.Batches(test, s => s.PromptIds.Length, config.EvalBatchTokens).ToArray();
            Assert.That(batches, Has.Length.GreaterThan(1), "several evaluation batches");
            long eval = batches.Sum(b => b.Length * b.Max(s => s.PromptIds.Length) * tokenBytes
                                         + b.Sum(s => s.ChoiceIds.Length) * sizeof(float));
            var row = result.Rounds.Single(r => r.Round == 1 && r.Client == k).Traffic;
            Assert.That((row.SplitBytesTrain, row.SplitBytesEval), Is.EqualTo((train, eval)), $"client {k}");
        }
    }
}
