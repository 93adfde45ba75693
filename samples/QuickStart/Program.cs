using FedNano.Simulation;

// the shipped quickstart config (synthetic benchmark, tiny backbone, 5 clients) or a config file named as argument
var config = (args.Length > 0 ? SimulationConfig.Load(args[0]) : Shipped.QuickstartConfig()) with { Alpha = 0.1 };
var sim = Experiment.Create(config);
var zeroShot = sim.ZeroShot();
var fednano = sim.Run("fednano");                  // or sim.RunStrategy(new MyStrategy())
Console.WriteLine($"zero-shot {zeroShot.MeanAccuracy:P1} -> fednano {fednano.MeanAccuracy:P1}");
