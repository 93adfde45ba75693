using FedNano.Data;
using FedNano.Data.Prompts;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Strategies;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>One row of <c>rounds.csv</c>: a client's state after a round of a method.</summary>
/// <param name="Method">Method name.</param>
/// <param name="Round">Round, 1-based (0: before training).</param>
/// <param name="Client">Client index.</param>
/// <param name="Accuracy">Test accuracy of the client's current model on its test part.</param>
/// <param name="Loss">Mean test loss (negative log-likelihood of the answer's first token).</param>
/// <param name="TrainLoss">Mean local training loss this round (NaN if the client did not train).</param>
/// <param name="UploadedParameters">Parameters the client uploaded this round.</param>
public sealed record RoundResult(string Method, int Round, int Client, double Accuracy, double Loss, double TrainLoss, long UploadedParameters);

/// <summary>What a method ended with.</summary>
/// <param name="Method">Method name.</param>
/// <param name="Rounds">Per round and client.</param>
/// <param name="Final">Per client, the predictions of the final model on its test part.</param>
public sealed record MethodResult(string Method, IReadOnlyList<RoundResult> Rounds, IReadOnlyList<IReadOnlyList<Prediction>> Final)
{
    /// <summary>Final test accuracy per client.</summary>
    public double[] ClientAccuracy => Final.Select(p => p.Count == 0 ? double.NaN : p.Count(x => x.Correct) / (double)p.Count).ToArray();
    /// <summary>Mean over clients of the final test accuracy.</summary>
    public double MeanAccuracy => ClientAccuracy.Average();
    /// <summary>Every client's final test predictions, client by client, as scored records (for breakdowns and result files).</summary>
    public IReadOnlyList<Evaluation.PredictionRecord> FinalRecords =>
        Final.SelectMany(p => p).Select(p => new Evaluation.PredictionRecord(p.Sample, p.Predicted, p.PredictedText, p.Correct)).ToArray();
}

/// <summary>Progress of a simulation.</summary>
/// <param name="Method">Method running.</param>
/// <param name="Round">Round finished (0: evaluation of the start).</param>
/// <param name="Rounds">Rounds in all.</param>
/// <param name="MeanAccuracy">Mean client test accuracy after that round.</param>
public sealed record SimulationProgress(string Method, int Round, int Rounds, double MeanAccuracy);

/// <summary>
/// The federated simulation in one process: a frozen backbone split into the server's LLM and the clients'
/// NanoEdge (one frozen copy shared by all simulated clients, adapters swapped per client), the clients'
/// data, and the round loop: sample clients, each starts from the global adapters and trains locally,
/// uploads, the strategy aggregates; every client's test accuracy is measured after each round.
/// </summary>
public sealed class FederatedSimulation
{
    private readonly SimulationConfig config;
    private readonly Backbone backbone;
    private readonly NanoEdge edge;
    private readonly SplitServer server;
    private readonly AdapterState initial;
    private readonly EncodedSample[][] train, test;
    private readonly ClientTrainer trainer;
    private readonly Evaluator evaluator;

    /// <summary>A simulation of <paramref name="data"/> on <paramref name="backbone"/> with the given settings.</summary>
    public FederatedSimulation(SimulationConfig config, Backbone backbone, FederatedData data)
    {
        config.Validate();
        this.config = config;
        this.backbone = backbone;
        Data = data;
        manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("adapter init")));
        edge = new NanoEdge(backbone.Model, config.Adapter, backbone.Pixels);
        server = new SplitServer(backbone.Model.LanguageModel);
        initial = edge.AdapterState();
        EncodedSample Encode(MultimodalSample s) => EncodedSample.Encode(s, backbone.Template(LlavaPrompt.Build(s)), backbone.Tokenizer, backbone.Model.Config.ImageTokens);
        train = data.Clients.Select(c => c.Train.Select(Encode).ToArray()).ToArray();
        test = data.Clients.Select(c => c.Test.Select(Encode).ToArray()).ToArray();
        trainer = new ClientTrainer(edge, server, config);
        evaluator = new Evaluator(edge, server, backbone.Tokenizer);
    }

    /// <summary>The backbone being split.</summary>
    public Backbone Backbone => backbone;
    /// <summary>The clients' data.</summary>
    public FederatedData Data { get; }
    /// <summary>The client side (shared frozen parts and the adapters being trained).</summary>
    public NanoEdge Edge => edge;
    /// <summary>Adapter parameters uploaded by one client per round.</summary>
    public long AdapterParameterCount => initial.Count;

    /// <summary>Reports after every round.</summary>
    public event Action<SimulationProgress>? Progress;

    /// <summary>
    /// Runs a method by name (see <see cref="MethodCatalog"/>), from the start or from <paramref name="start"/>
    /// (a state reported earlier by <paramref name="afterRound"/> for the same method), calling
    /// <paramref name="afterRound"/> after every round with the state reached (its tensors are only valid during the call).
    /// </summary>
    public MethodResult Run(string method, SimulationState? start = null, Action<SimulationState>? afterRound = null) => method switch
    {
        "zero-shot" => ZeroShot(),
        "centralized" => Centralized(start, afterRound),
        _ => RunStrategy(MethodCatalog.Strategy(method, config)!, start, afterRound),
    };

    /// <summary>Identity adapters on every client: the frozen backbone as it is.</summary>
    public MethodResult ZeroShot()
    {
        var final = EvaluateAll(initial);
        return new MethodResult("zero-shot", RoundRows("zero-shot", 0, final, new double[train.Length], new long[train.Length]).ToArray(), final);
    }

    /// <summary>Runs a federated strategy for the configured rounds (see <see cref="Run"/> for <paramref name="start"/> and <paramref name="afterRound"/>).</summary>
    public MethodResult RunStrategy(IStrategy strategy, SimulationState? start = null, Action<SimulationState>? afterRound = null)
    {
        CheckStart(start, strategy.Name);
        var rows = new List<RoundResult>(start?.Rows ?? []);
        var global = (start?.Global ?? initial).Clone();
        IReadOnlyList<IReadOnlyList<Prediction>> final = start?.Final ?? [];
        for (int round = (start?.Round ?? 0) + 1; round <= config.Rounds; round++)
        {
            var sampled = SampleClients(round);
            var updates = new List<ClientUpdate>();
            var trainLoss = Enumerable.Repeat(double.NaN, train.Length).ToArray();
            var uploaded = new long[train.Length];
            foreach (int k in sampled)
            {
                var fit = strategy.ConfigureFit(round, k);
                edge.LoadAdapterState(global);
                var (loss, squared) = trainer.Train(train[k], fit, fit.ProximalMu > 0 ? global : null, DataOrder(round, k));
                var fisher = fit.ComputeFisher ? trainer.Fisher(train[k]) : squared;
                updates.Add(new ClientUpdate(k, train[k].Length, edge.AdapterState(), fisher));
                trainLoss[k] = loss;
                uploaded[k] = initial.Count;
            }
            var next = strategy.Aggregate(round, global, updates);
            global.Dispose();
            global = next;
            foreach (var u in updates) { u.Parameters.Dispose(); u.Fisher?.Dispose(); }
            final = EvaluateAll(global);
            rows.AddRange(RoundRows(strategy.Name, round, final, trainLoss, uploaded));
            afterRound?.Invoke(new SimulationState(strategy.Name, round, global, NoClientState, rows, final));
            Progress?.Invoke(new SimulationProgress(strategy.Name, round, config.Rounds, rows.TakeLast(train.Length).Average(r => r.Accuracy)));
        }
        global.Dispose();
        return new MethodResult(strategy.Name, rows, final);
    }

    /// <summary>
    /// The centralized upper bound: one learner on all clients' training data pooled, with the same budget
    /// (each round, the configured local epochs over the pooled data), evaluated on every client's test part.
    /// </summary>
    public MethodResult Centralized(SimulationState? start = null, Action<SimulationState>? afterRound = null)
    {
        CheckStart(start, "centralized");
        var pooled = train.SelectMany(t => t).ToArray();
        var rows = new List<RoundResult>(start?.Rows ?? []);
        edge.LoadAdapterState(start?.Global ?? initial);
        IReadOnlyList<IReadOnlyList<Prediction>> final = start?.Final ?? [];
        for (int round = (start?.Round ?? 0) + 1; round <= config.Rounds; round++)
        {
            var (loss, _) = trainer.Train(pooled, new FitInstructions(), null, DataOrder(round, -1));
            using var state = edge.AdapterState();
            final = EvaluateAll(state);
            rows.AddRange(RoundRows("centralized", round, final, Enumerable.Repeat(loss, train.Length).ToArray(), new long[train.Length]));
            afterRound?.Invoke(new SimulationState("centralized", round, state, NoClientState, rows, final));
            Progress?.Invoke(new SimulationProgress("centralized", round, config.Rounds, rows.TakeLast(train.Length).Average(r => r.Accuracy)));
        }
        return new MethodResult("centralized", rows, final);
    }

    private static readonly IReadOnlyDictionary<int, AdapterState> NoClientState = new Dictionary<int, AdapterState>();

    private void CheckStart(SimulationState? start, string method)
    {
        if (start is null) return;
        if (start.Method != method) throw new ArgumentException($"the start state is of method '{start.Method}', not '{method}'", nameof(start));
        if (start.Round < 0 || start.Round > config.Rounds) throw new ArgumentException($"the start state's round {start.Round} is outside 0..{config.Rounds}", nameof(start));
    }

    private int[] SampleClients(int round)
    {
        int k = train.Length, m = Math.Max(1, (int)Math.Round(config.ClientFraction * k));
        var rng = new Random(Seeds.Derive(config.Seed, Seeds.Purpose("client sampling"), round));
        return Enumerable.Range(0, k).OrderBy(_ => rng.Next()).Take(m).Order().ToArray();
    }

    /// <summary>The data order of a client in a round: the same whatever the method, so methods differ only in what they do.</summary>
    private Random DataOrder(int round, int client) => new(Seeds.Derive(config.Seed, Seeds.Purpose("data order"), round, client));

    private IReadOnlyList<IReadOnlyList<Prediction>> EvaluateAll(AdapterState state)
    {
        edge.LoadAdapterState(state);
        return test.Select(t => evaluator.Predict(t)).ToArray();
    }

    private static IEnumerable<RoundResult> RoundRows(string method, int round, IReadOnlyList<IReadOnlyList<Prediction>> preds, double[] trainLoss, long[] uploaded) =>
        preds.Select((p, k) => new RoundResult(method, round, k,
            p.Count == 0 ? double.NaN : p.Count(x => x.Correct) / (double)p.Count,
            p.Count == 0 ? double.NaN : p.Average(x => x.Loss), trainLoss[k], uploaded[k]));
}
