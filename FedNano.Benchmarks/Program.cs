// `step ...`: the command-line measurement (StepBenchmark); anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "step") return FedNano.Benchmarks.StepBenchmark.Run(args[1..]);
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(FedNano.Benchmarks.RoundBenchmarks).Assembly).Run(args);
return 0;
