using System.CommandLine;
using FedNano.Models;

namespace FedNano.Cli.Commands;

internal static class PretrainCommand
{
    public static Command Build()
    {
        var outOpt = new Option<string>("--out")
        {
            Description = "Folder to write the backbone to.",
            DefaultValueFactory = _ => TinyBackbone.DefaultDirectory,
        };
        var seed = new Option<int>("--seed")
        {
            Description = "Seed of data, initialisation and order.",
            DefaultValueFactory = _ => new PretrainOptions().Seed,
        };
        var samples = new Option<int>("--samples")
        {
            Description = "General-split training samples.",
            DefaultValueFactory = _ => new PretrainOptions().Samples,
        };
        var lr = new Option<double>("--learning-rate")
        {
            Description = "Peak learning rate of Adam.",
            DefaultValueFactory = _ => new PretrainOptions().LearningRate,
        };
        var epochs = new Option<int>("--epochs")
        {
            Description = "Passes over the samples.",
            DefaultValueFactory = _ => new PretrainOptions().Epochs,
        };
        var threads = RunOptions.ThreadsOption();
        var cmd = new Command("pretrain", "Pretrain the tiny backbone (vision tower, connector, LLM) on the synthetic "
            + "general split and save it as safetensors + config.json.")
        {
            outOpt, seed, samples, epochs, lr, threads,
        };
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            var o = new PretrainOptions
            {
                Seed = r.GetValue(seed), Samples = r.GetValue(samples), Epochs = r.GetValue(epochs),
                LearningRate = r.GetValue(lr),
            };
            o.Validate();
            if (r.GetValue(threads) is { } t) ConfigException.Positive(t, "--threads");
            Console.WriteLine($"libtorch threads: {FedNano.Simulation.TorchThreads.Apply(r.GetValue(threads))}");
            var (general, client) = TinyBackbone.Pretrain(r.GetValue(outOpt)!, o, Console.WriteLine);
            Console.WriteLine(
                $"wrote {r.GetValue(outOpt)} (general {general:P1}, client dialect zero-shot {client:P1})");
            return 0;
        }));
        return cmd;
    }
}
