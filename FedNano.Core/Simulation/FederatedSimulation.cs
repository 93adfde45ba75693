using FedNano.Data;
using FedNano.Data.Prompts;
using FedNano.Edge;
using FedNano.Fisher;
using FedNano.Models;
using FedNano.Strategies;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedNano.Simulation;

/// <summary>
/// What one client moved and held in one round, counted from the real tensors (number of values, and bytes as
/// values x element size). Parameters are model values; Fisher values are counted apart.
/// </summary>
public sealed record ClientTraffic
{
    /// <summary>Model parameters the client downloaded from the server (the global state it starts from).</summary>
    public long DownloadedParams { get; init; }
    /// <summary>Bytes of <see cref="DownloadedParams"/>.</summary>
    public long DownloadedBytes { get; init; }
    /// <summary>Model parameters the client uploaded (adapters, LoRA, connector).</summary>
    public long UploadedParams { get; init; }
    /// <summary>Diagonal-Fisher values the client uploaded besides its parameters.</summary>
    public long UploadedFisher { get; init; }
    /// <summary>Bytes of everything uploaded (parameters and Fisher values).</summary>
    public long UploadedBytes { get; init; }
    /// <summary>
    /// Activation and gradient bytes that crossed the client/server split during local training (and a Fisher pass).
    /// </summary>
    public long SplitBytesTrain { get; init; }
    /// <summary>
    /// Bytes that crossed the split to evaluate the client's test part (sequences up, scores or token ids down).
    /// </summary>
    public long SplitBytesEval { get; init; }
    /// <summary>
    /// Parameters resident on the client (frozen and trainable); null when the method has no clients (centralized).
    /// </summary>
    public long? ClientResidentParams { get; init; }

    /// <summary>Values and bytes of a set of tensors.</summary>
    public static (long values, long bytes) Measure(AdapterState? state) =>
        state is null ? (0, 0) : (state.Count, state.Tensors.Values.Sum(t => t.numel() * t.ElementSize));
}

/// <summary>One row of <c>rounds.csv</c>: a client's state after a round of a method.</summary>
/// <param name="Method">Method name.</param>
/// <param name="Round">Round, 1-based (0: before training).</param>
/// <param name="Client">Client index.</param>
/// <param name="Accuracy">Test accuracy of the client's current model on its test part.</param>
/// <param name="Loss">Mean test loss (negative log-likelihood of the answer's first token).</param>
/// <param name="TrainLoss">Mean local training loss this round (NaN if the client did not train).</param>
/// <param name="Traffic">What the client moved across the network and the split this round, and what it holds.</param>
public sealed record RoundResult(
    string Method, int Round, int Client, double Accuracy, double Loss, double TrainLoss, ClientTraffic Traffic)
{
    /// <summary>The client trained, but its loss or update was NaN or infinite, so it was left out (<c>on_nonfinite:
    /// skip</c>).</summary>
    public bool NonFinite { get; init; }

    /// <summary>Epsilon the client has spent so far at <c>dp.delta</c> (<see cref="PrivacyLedger"/>); NaN without
    /// <c>dp</c>.</summary>
    public double Epsilon { get; init; } = double.NaN;

    /// <summary>The client's privacy accountant's history so far (<see cref="Privacy.RdpAccountant.History"/>; what a
    /// resumed run restores it from); null without <c>dp</c>.</summary>
    public IReadOnlyList<Privacy.SgmSteps>? Privacy { get; init; }

    /// <summary>Parameters the client uploaded this round.</summary>
    public long UploadedParameters => Traffic.UploadedParams;
}

/// <summary>What a method ended with.</summary>
/// <param name="Method">Method name.</param>
/// <param name="Rounds">Per round and client.</param>
/// <param name="Final">Per client, the predictions of the final model on its test part.</param>
public sealed record MethodResult(
    string Method, IReadOnlyList<RoundResult> Rounds, IReadOnlyList<IReadOnlyList<Prediction>> Final)
{
    /// <summary>Final test accuracy per client.</summary>
    public double[] ClientAccuracy =>
        Final.Select(p => p.Count == 0 ? double.NaN : p.Count(x => x.Correct) / (double)p.Count).ToArray();
    /// <summary>Mean over the evaluated clients of the final test accuracy.</summary>
    public double MeanAccuracy => ClientAccuracy.Where(a => !double.IsNaN(a)).DefaultIfEmpty(double.NaN).Average();
    /// <summary>Most model parameters one client uploaded in one round.</summary>
    public long UploadedPerRound => Rounds.Select(r => r.Traffic.UploadedParams).DefaultIfEmpty().Max();
    /// <summary>Most Fisher values one client uploaded in one round.</summary>
    public long FisherPerRound => Rounds.Select(r => r.Traffic.UploadedFisher).DefaultIfEmpty().Max();
    /// <summary>Parameters resident on a client (null without clients).</summary>
    public long? ClientResident => Rounds.Select(r => r.Traffic.ClientResidentParams).Max();
    /// <summary>
    /// Every client's final test predictions, client by client, as scored records (for breakdowns and result files).
    /// </summary>
    public IReadOnlyList<Evaluation.PredictionRecord> FinalRecords =>
        Final.SelectMany(p => p)
            .Select(p => new Evaluation.PredictionRecord(p.Sample, p.Predicted, p.PredictedText, p.Correct)).ToArray();
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
/// data, and the one round loop of every method: sample clients, each starts from the global adapters (or its own,
/// for a personalising strategy) and trains locally, uploads, the strategy aggregates; every client's test accuracy
/// is measured after each round, and what every client moves and holds is counted (<see cref="ClientTraffic"/>).
/// What a client holds, trains and is evaluated with is the strategy's client algorithm
/// (<see cref="IClientAlgorithm"/>: NanoAdapters by default, FedDPA-F's LoRA inside the LLM).
/// </summary>
public sealed class FederatedSimulation
{

    /// <summary>
    /// A simulation of <paramref name="data"/> on <paramref name="backbone"/> with the given settings.
    /// </summary>
    public FederatedSimulation(SimulationConfig config, Backbone backbone, FederatedData data)
    {
        config.Validate();
        Config = config;
        Backbone = backbone;
        Data = data;
        manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("adapter init")));
        Edge = new NanoEdge(backbone.Model, config.Adapter, backbone.Pixels, (long)config.VisualCacheMb << 20);
        Server = new SplitServer(backbone.Model.LanguageModel, config.ActivationCheckpointing, config.TrainBatchTokens);
        Initial = Edge.AdapterState();
        Ranks = RankPlan.Of(config);
        EncodedSample Encode(MultimodalSample s) => EncodedSample.Encode(s, backbone.Template(LlavaPrompt.Build(s)),
            backbone.Tokenizer, backbone.Model.TokensPerImage);
        Train = data.Clients.Select(c => c.Train.Select(Encode).ToArray()).ToArray();
        Test = data.Clients.Select(c => c.Test.Select(Encode).ToArray()).ToArray();
        Trainer = new ClientTrainer(Edge, Server, config, Traffic);
        Evaluator = new Evaluator(Edge, Server, backbone.Tokenizer, config.EvalBatchTokens, traffic: Traffic);
        EdgeFrozenParameters = Edge.FrozenParameters().Sum(p => p.parameter.numel());
        Architecture = backbone.Model.Architecture(backbone.Name);
    }

    /// <summary>The clients' data.</summary>
    public FederatedData Data { get; }
    /// <summary>The client side (shared frozen parts and the adapters being trained).</summary>
    public NanoEdge Edge { get; }
    /// <summary>The backbone being split.</summary>
    public Backbone Backbone { get; }
    /// <summary>
    /// Parameter counts of the backbone's architecture (the whole MLLM is <c>Architecture.Total</c>).
    /// </summary>
    public Ledgers.ArchitectureParameters Architecture { get; }
    /// <summary>Adapter parameters uploaded by one client per round.</summary>
    public long AdapterParameterCount => Initial.Count;
    /// <summary>Frozen parameters of a NanoEdge: vision tower, connector, token embedding.</summary>
    public long EdgeFrozenParameters { get; }

    internal AdapterState Initial { get; }
    /// <summary>
    /// Each client's adapter rank where <c>adapter.client_ranks</c> gives them; null: all at the global rank.
    /// </summary>
    internal RankPlan? Ranks { get; }
    internal SimulationConfig Config { get; }
    internal SplitServer Server { get; }
    internal EncodedSample[][] Train { get; }
    internal EncodedSample[][] Test { get; }
    internal ClientTrainer Trainer { get; }
    internal Evaluator Evaluator { get; }
    /// <summary>What each client moved across the split, read after its training and after its evaluation.</summary>
    internal SplitTraffic Traffic { get; } = new();

    /// <summary>Reports after every round.</summary>
    public event Action<SimulationProgress>? Progress;

    /// <summary>
    /// Runs a method by name (see <see cref="MethodCatalog"/>), from the start or from <paramref name="start"/>
    /// (a state reported earlier by <paramref name="afterRound"/> for the same method), calling
    /// <paramref name="afterRound"/> after every round with the state reached (its tensors are only valid during the
    /// call).
    /// </summary>
    public MethodResult Run(string method, SimulationState? start = null, Action<SimulationState>? afterRound = null) =>
        method == MethodCatalog.ZeroShot ? ZeroShot()
            : RunStrategy(MethodCatalog.Strategy(method, Config), start, afterRound);

    /// <summary>Identity adapters on every client: the frozen backbone as it is.</summary>
    public MethodResult ZeroShot()
    {
        var rows = new List<RoundResult>();
        var resident = new ClientTraffic { ClientResidentParams = EdgeFrozenParameters + Initial.Count };
        var final = EvaluateAll(_ => resident, MethodCatalog.ZeroShot, 0, rows, _ => Initial);
        return new MethodResult(MethodCatalog.ZeroShot, rows, final);
    }

    /// <summary>
    /// Runs a federated strategy for the configured rounds, its clients as its client algorithm has them
    /// (<see cref="IStrategy.CreateClient"/>); see <see cref="Run"/> for <paramref name="start"/> and
    /// <paramref name="afterRound"/>. A personalising strategy's per-client state goes into the reported states and
    /// comes back from <paramref name="start"/> through <see cref="IStrategy.ExportClientStates"/> and
    /// <see cref="IStrategy.ImportClientStates"/>.
    /// </summary>
    public MethodResult RunStrategy(
        IStrategy strategy, SimulationState? start = null, Action<SimulationState>? afterRound = null)
    {
        CheckStart(start, strategy.Name);
        using var clientSide = strategy.CreateClient(this);
        var missing = start is null ? []
            : clientSide.Initial.Tensors.Keys.Where(k => !start.Global.Tensors.ContainsKey(k)).ToArray();
        if (missing.Length > 0)
            throw new ArgumentException(
                $"the start state lacks {missing.Length} tensor(s) of '{strategy.Name}', e.g. " +
                $"'{missing[0]}' (made with another rank or backbone?)", nameof(start));
        strategy.ImportClientStates(start?.Clients ?? NoClientState);
        var rows = new List<RoundResult>(start?.Rows ?? []);
        var global = (start?.Global ?? clientSide.Initial).Clone();
        IReadOnlyList<IReadOnlyList<Prediction>> final = start?.Final ?? [];
        var privacy = Config.Dp is { } dp && clientSide.OnNanoEdge ? new PrivacyLedger(dp, this, strategy, rows) : null;
        for (int round = (start?.Round ?? 0) + 1; round <= Config.Rounds; round++)
        {
            var updates = new List<ClientUpdate>();
            var trained = new List<AdapterState>();
            var trainLoss = Enumerable.Repeat(double.NaN, Train.Length).ToArray();
            var traffic = new ClientTraffic[Train.Length];
            var resident = new long[Train.Length];
            var nonFinite = new bool[Train.Length];
            bool pooled = strategy.PoolsData;
            var sampled = pooled ? [Pooled] : SampleClients(round);
            var fits = sampled.Select(k => strategy.ConfigureFit(round, k)).ToArray();
            var owns = sampled.Select(k => strategy.ClientState(k, global)).ToArray();
            // heterogeneous ranks: each client at its own (RankPlan)
            var ranks = pooled || !clientSide.OnNanoEdge ? null : Ranks;
            if (ranks is not null) fits = fits.Select((f, j) => ranks.Fit(sampled[j], f, global)).ToArray();
            var starts = owns.Select((o, j) => ranks?.View(sampled[j], o ?? global) ?? o ?? global).ToArray();
            var outcomes = clientSide.Fit(round, sampled, fits, starts, global);
            if (ranks is not null) foreach (var s in starts) s.Dispose();
            for (int j = 0; j < sampled.Length; j++)
            {
                var (k, fit, (state, loss, fisher, split)) = (sampled[j], fits[j], outcomes[j]);
                var (down, downBytes) = owns[j] is null && !pooled
                    ? ranks?.Measure(k, global) ?? ClientTraffic.Measure(global) : (0, 0);
                trained.Add(state);
                if (!double.IsFinite(loss) || !Finite(state) || !Finite(fisher))
                {
                    if (Config.OnNonFinite == "stop")
                        throw new NonFiniteException($"{strategy.Name}, round {round}, client {k}: the training loss " +
                            $"({loss}) or the update is NaN or infinite; lower learning_rate, set max_grad_norm, " +
                            "or set on_nonfinite: skip to leave such clients out");
                    if (!pooled) nonFinite[k] = true; // skip: left out of the aggregate and the client's own state
                    fit = fit with { Upload = false };
                }
                else strategy.OnClientTrained(round, k, state);
                var (up, upBytes) = (0L, 0L);
                var (fisherValues, fisherBytes) = (0L, 0L);
                if (fit.Upload)
                {
                    var update = new ClientUpdate(k, DataOf(k).Count, state, fisher);
                    if (ranks is not null) update = ranks.Upload(update); // its own rank's components only
                    updates.Add(update);
                    (up, upBytes) = ClientTraffic.Measure(update.Parameters);
                    (fisherValues, fisherBytes) = ClientTraffic.Measure(update.Fisher);
                }
                else fisher?.Dispose();
                if (pooled)
                {
                    Array.Fill(trainLoss, loss); // the one learner's loss, on every client's row; nothing communicated
                    continue;
                }
                trainLoss[k] = loss;
                // FedProx keeps the global adapters for its proximal term
                resident[k] = fit.ProximalMu > 0 ? ranks?.Values(k, global) ?? global.Count : 0;
                traffic[k] = new ClientTraffic
                {
                    DownloadedParams = down, DownloadedBytes = downBytes, UploadedParams = up,
                    UploadedFisher = fisherValues,
                    UploadedBytes = upBytes + fisherBytes, SplitBytesTrain = split,
                };
            }
            var next = updates.Count == 0 && nonFinite.Any(x => x) ? global.Clone()
                : ranks?.Aggregate(strategy, round, global, updates) ?? strategy.Aggregate(round, global, updates);
            global.Dispose();
            global = next;
            foreach (var u in updates) u.Fisher?.Dispose();
            if (ranks is not null) foreach (var u in updates) u.Parameters.Dispose();
            foreach (var t in trained) t.Dispose();
            if (round == Config.Rounds) clientSide.AfterLastRound(round, global);
            var g = global;
            Func<int, ClientTraffic> rowTraffic = pooled ? _ => new ClientTraffic()
                : k => (traffic[k] ?? new ClientTraffic()) with
                {
                    ClientResidentParams = clientSide.ResidentParameters(k, g) + resident[k],
                };
            using var views = ranks is null ? null : new RankPlan.Views(ranks);
            Func<int, AdapterState> stateOf = views is null ? k => strategy.ClientState(k, g) ?? g
                : k => views.Of(k, strategy.ClientState(k, g) ?? g);
            var mixed = Batched ? clientSide.EvaluationTogether(round, g) : null;
            final = EvaluateAll(rowTraffic, strategy.Name, round, rows, stateOf, trainLoss,
                mixed is null ? clientSide.Evaluation(round, g) : null, mixed,
                countSplit: !pooled && clientSide.CrossesSplit, nonFinite: nonFinite);
            privacy?.Record(rows, round, sampled, fits);
            afterRound?.Invoke(
                new SimulationState(strategy.Name, round, global, strategy.ExportClientStates(), rows, final));
            Report(strategy.Name, round, rows);
        }
        global.Dispose();
        return new MethodResult(strategy.Name, rows, final);
    }

    /// <summary>
    /// Local training of <paramref name="client"/> in <paramref name="round"/> for a client algorithm of your own
    /// (<see cref="IClientAlgorithm.Fit"/>) whose trainable <paramref name="parameters"/> replace the NanoAdapters:
    /// each step <paramref name="transform"/> maps the frozen input sequence [B, T, d] of a mini-batch (token
    /// embeddings with the visual tokens in place) and its image mask [B, T] (bool) to the sequence the client
    /// sends; the server runs the frozen LLM and the loss, the gradient comes back through
    /// <paramref name="transform"/> into the parameters. Everything else is as for NanoAdapters: AdamW with the
    /// config's learning rate, batch size and local epochs, the same data order, <paramref name="fit"/>'s proximal
    /// term (against <paramref name="global"/>), extra loss and gradient observer (an
    /// <see cref="FedNano.Fisher.IGradientFisher"/>; an exact Fisher pass needs NanoAdapters), and the split's
    /// traffic. Returns a copy of the parameters after training.
    /// </summary>
    /// <exception cref="ArgumentException">The fit asks for an exact Fisher pass, or DP is configured.</exception>
    public ClientFit TrainAcrossSplit(int round, int client,
        IReadOnlyList<(string name, Parameter parameter)> parameters, Func<Tensor, Tensor, Tensor> transform,
        FitInstructions fit, AdapterState? global)
    {
        if (fit.Fisher is IFisherPass pass)
            throw new ArgumentException($"Fisher estimator '{pass.Name}' is a pass over NanoAdapters; with a client " +
                $"model of your own use a gradient observer such as '{SquaredGradientFisher.EstimatorName}'",
                nameof(fit));
        if (Config.Dp is not null)
            throw new ArgumentException("dp applies to NanoAdapters only; remove dp from the config", nameof(fit));
        var (loss, fisher) = Trainer.TrainOwn(parameters, transform, DataOf(client), fit,
            fit.ProximalMu > 0 ? global : null, DataOrder(round, client), StepsOf(client), client);
        if (fit.Fisher is { Normalise: true } && fisher is { } raw)
            using (raw) fisher = FisherEstimators.Normalised(raw);
        var trained = new AdapterState(parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone()));
        return new ClientFit(trained, loss, fisher, Traffic.Take(client));
    }

    /// <summary>
    /// How a client algorithm of your own is evaluated (<see cref="IClientAlgorithm.Evaluation"/>): its
    /// <paramref name="transform"/>, as in <see cref="TrainAcrossSplit"/>, applied to the frozen input sequence of
    /// every test batch and to the embeddings of generated tokens (image mask all false), without gradients.
    /// </summary>
    public EvalClient EvaluationClient(Func<Tensor, Tensor, Tensor> transform) =>
        EvalClient.Transforming(Edge, transform);

    /// <summary>Whether a round's clients train and are evaluated together (<c>execution</c>; auto: on CUDA).</summary>
    internal bool Batched => Config.Execution == "batched"
        || (Config.Execution == "auto" && Edge.Device.type == TorchSharp.DeviceType.CUDA);

    /// <summary>
    /// The participant index of the single learner on pooled data (<see cref="IStrategy.PoolsData"/>).
    /// </summary>
    internal const int Pooled = -1;

    private EncodedSample[]? pooledTrain;

    /// <summary>
    /// Training data of client <paramref name="k"/>, or every client's pooled for <see cref="Pooled"/>.
    /// </summary>
    internal IReadOnlyList<EncodedSample> DataOf(int k) =>
        k == Pooled ? pooledTrain ??= Train.SelectMany(t => t).ToArray() : Train[k];

    /// <summary>Local steps of participant <paramref name="k"/>: every client's together for <see cref="Pooled"/>,
    /// else null (its configured epochs).</summary>
    private int? StepsOf(int k) => k == Pooled ? Train.Sum(t => Trainer.StepsFor(t.Length)) : null;

    private static bool Finite(AdapterState? state)
    {
        using var _ = NewDisposeScope();
        return state is null || state.Tensors.Values.All(t => isfinite(t).all().item<bool>());
    }

    /// <summary>
    /// Local training of a round's sampled <paramref name="clients"/> from <paramref name="starts"/> (and the Fisher
    /// pass where asked; each Fisher normalised where its estimator says): one after another, or batched through the
    /// frozen LLM (<c>execution</c>); each with the bytes it moved across the split.
    /// </summary>
    internal ClientOutcome[] TrainClients(
        int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global)
    {
        AdapterState? Prox(int j) => fits[j].ProximalMu > 0 ? global : null;
        Generator Answers(int j) =>
            new((ulong)Seeds.Derive(Config.Seed, Seeds.Purpose("fisher answers"), round, clients[j]));
        ClientOutcome[] outcomes;
        if (!Batched || clients.Contains(Pooled))
            outcomes = clients.Select((k, j) =>
            {
                Edge.LoadAdapterState(starts[j]);
                using var noise = DpNoise(round, k);
                var (loss, observed) = Trainer.Train(DataOf(k), fits[j], Prox(j), DataOrder(round, k), StepsOf(k),
                    noise, k);
                using var answers = Answers(j);
                var fisher = fits[j].Fisher is IFisherPass pass
                    ? Trainer.Fisher(DataOf(k), pass, answers, noise, k) : observed;
                return new ClientOutcome(Edge.AdapterState(), loss, fisher);
            }).ToArray();
        else
        {
            var jobs = clients.Select((k, j) =>
                new ClientJob(k, starts[j], Train[k], fits[j], Prox(j), DataOrder(round, k), DpNoise(round, k)))
                .ToArray();
            outcomes = Trainer.TrainBatched(jobs);
            var exact = Enumerable.Range(0, clients.Length).Where(j => fits[j].Fisher is IFisherPass).ToArray();
            if (Config.Dp is not null) // DP's noised Fisher: client by client, each continuing its noise stream
                foreach (var j in exact)
                {
                    Edge.LoadAdapterState(outcomes[j].Trained);
                    outcomes[j] = outcomes[j] with
                    {
                        Fisher = Trainer.Fisher(Train[clients[j]], noise: jobs[j].Noise, client: clients[j]),
                    };
                }
            else
            {
                var passes = exact.Select(j => new FisherJob(clients[j], outcomes[j].Trained.Tensors,
                    Train[clients[j]], (IFisherPass)fits[j].Fisher!, Answers(j))).ToArray();
                foreach (var (j, fisher) in exact.Zip(Trainer.Fisher(passes)))
                    outcomes[j] = outcomes[j] with { Fisher = fisher };
                foreach (var p in passes) p.Generator.Dispose();
            }
            foreach (var job in jobs) job.Noise?.Dispose();
        }
        for (int j = 0; j < outcomes.Length; j++)
            if (fits[j].Fisher is { Normalise: true } && outcomes[j].Fisher is { } raw)
                using (raw) outcomes[j] = outcomes[j] with { Fisher = FisherEstimators.Normalised(raw) };
        return outcomes.Select((o, j) => o with { SplitBytes = Traffic.Take(clients[j]) }).ToArray();
    }

    /// <summary>
    /// The evaluation of a test batch mixing clients' samples on the shared NanoEdge, each sample through its own
    /// client's adapters (<paramref name="stateOf"/>), stacked (<see cref="NanoEdge.Adapt(Tensor, Tensor, Tensor,
    /// IReadOnlyList{IReadOnlyDictionary{string, Tensor}})"/>).
    /// </summary>
    private Func<int[], Tensor, EvalClient> StackedAdapters(Func<int, AdapterState> stateOf) => (clients, row) =>
    {
        var adapters = clients.Select(k => stateOf(k).Tensors).ToArray();
        return EvalClient.Transforming(Edge, (x, isImage) => Edge.Adapt(x, isImage, row, adapters));
    };

    internal static readonly IReadOnlyDictionary<int, AdapterState> NoClientState = new Dictionary<int, AdapterState>();

    /// <summary>
    /// Checks that <paramref name="start"/> (if any) is a state of <paramref name="method"/> within the configured
    /// rounds.
    /// </summary>
    internal void CheckStart(SimulationState? start, string method)
    {
        if (start is null) return;
        if (start.Method != method)
            throw new ArgumentException($"the start state is of method '{start.Method}', not '{method}'",
                nameof(start));
        if (start.Round < 0 || start.Round > Config.Rounds)
            throw new ArgumentException($"the start state's round {start.Round} is outside 0..{Config.Rounds}",
                nameof(start));
    }

    internal void Report(string method, int round, List<RoundResult> rows) =>
        Progress?.Invoke(new SimulationProgress(method, round, Config.Rounds, rows
            .Where(r => r.Method == method && r.Round == round && !double.IsNaN(r.Accuracy))
            .Select(r => r.Accuracy).DefaultIfEmpty(double.NaN).Average()));

    /// <summary>Clients sampled each round: <c>client_fraction</c> of them, at least one.</summary>
    internal int ClientsPerRound => Math.Max(1, (int)Math.Round(Config.ClientFraction * Train.Length));

    internal int[] SampleClients(int round)
    {
        int k = Train.Length, m = ClientsPerRound;
        var rng = new Random(Seeds.Derive(Config.Seed, Seeds.Purpose("client sampling"), round));
        return Enumerable.Range(0, k).OrderBy(_ => rng.Next()).Take(m).Order().ToArray();
    }

    /// <summary>The generator of a client's DP noise in a round (<c>dp</c>; null without), from the seed.</summary>
    internal Generator? DpNoise(int round, int client) => Config.Dp is null ? null
        : new Generator((ulong)Seeds.Derive(Config.Seed, Seeds.Purpose("dp noise"), round, client));

    /// <summary>
    /// The data order of a client in a round: the same whatever the method, so methods differ only in what they do.
    /// </summary>
    internal Random DataOrder(int round, int client) =>
        new(Seeds.Derive(Config.Seed, Seeds.Purpose("data order"), round, client));

    /// <summary>
    /// Evaluates the clients of <paramref name="round"/> (<see cref="EvaluatedClients"/>) on their test parts: with
    /// the NanoEdge's adapters set to <paramref name="stateOf"/>'s per client, or as <paramref name="client"/> makes a
    /// client's own model; with <c>execution: batched</c> in batches mixing clients, each sample with its own
    /// client's adapters, or as <paramref name="mixed"/> makes such a batch (where a client algorithm can; else client
    /// after client). Adds a row per client to <paramref name="rows"/> with its traffic (the evaluation's split bytes
    /// filled in) and returns the predictions.
    /// </summary>
    internal IReadOnlyList<IReadOnlyList<Prediction>> EvaluateAll(Func<int, ClientTraffic> traffic, string method,
        int round, List<RoundResult> rows, Func<int, AdapterState> stateOf, double[]? trainLoss = null,
        Func<int, EvalClient>? client = null, Func<int[], Tensor, EvalClient>? mixed = null, bool countSplit = true,
        bool[]? nonFinite = null)
    {
        var preds = new IReadOnlyList<Prediction>[Test.Length];
        Array.Fill(preds, []);
        var evaluated = EvaluatedClients(round);
        bool together = mixed is not null || (Batched && client is null);
        if (together)
        {
            var ids = Enumerable.Range(0, Test.Length).Where(k => evaluated[k]).ToArray();
            var own = Evaluator.PredictClients(ids, ids.Select(k => Test[k]).ToArray(),
                mixed ?? StackedAdapters(stateOf));
            for (int j = 0; j < ids.Length; j++) preds[ids[j]] = own[j];
            // the edge ends as after sequential evaluation
            if (mixed is null && ids.Length > 0) Edge.LoadAdapterState(stateOf(ids[^1]));
        }
        for (int k = 0; k < Test.Length; k++)
        {
            bool trained = trainLoss is not null && !double.IsNaN(trainLoss[k]);
            if (!evaluated[k])
            {
                if (trained)
                    rows.Add(new RoundResult(method, round, k, double.NaN, double.NaN, trainLoss![k], traffic(k)));
                continue;
            }
            if (!together)
            {
                if (client is null) Edge.LoadAdapterState(stateOf(k));
                preds[k] = Evaluator.Predict(Test[k], client?.Invoke(k), k);
            }
            long bytes = Traffic.Take(k);
            var p = preds[k];
            var t = traffic(k) with { SplitBytesEval = countSplit ? bytes : 0 };
            rows.Add(new RoundResult(method, round, k,
                p.Count == 0 ? double.NaN : p.Count(x => x.Correct) / (double)p.Count,
                p.Count == 0 ? double.NaN : p.Average(x => x.Loss), trainLoss?[k] ?? double.NaN, t)
            {
                NonFinite = nonFinite?[k] ?? false,
            });
        }
        return preds;
    }

    /// <summary>
    /// The clients evaluated after <paramref name="round"/>: none between every <c>evaluate_every</c>-th round (the
    /// start and the last round are always evaluated), else an <c>evaluate_fraction</c> share drawn from the seed and
    /// the round (the same clients for every method), all of them by default.
    /// </summary>
    internal bool[] EvaluatedClients(int round)
    {
        int k = Test.Length;
        var chosen = new bool[k];
        if (round != 0 && round != Config.Rounds && round % Config.EvaluateEvery != 0) return chosen;
        int m = Math.Max(1, (int)Math.Round(Config.EvaluateFraction * k));
        if (m >= k) { Array.Fill(chosen, true); return chosen; }
        var rng = new Random(Seeds.Derive(Config.Seed, Seeds.Purpose("evaluation sampling"), round));
        foreach (int c in Enumerable.Range(0, k).OrderBy(_ => rng.Next()).Take(m)) chosen[c] = true;
        return chosen;
    }
}
