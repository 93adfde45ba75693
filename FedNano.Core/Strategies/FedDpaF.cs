using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using TorchSharp;
using static TorchSharp.torch;

namespace FedNano.Strategies;

/// <summary>
/// FedDPA-F as the FedNano paper uses it as a baseline: dual-personalising LoRA inside the LLM. Every client holds the
/// whole MLLM (the simulation shares one frozen copy of the base weights) with a <em>global</em> LoRA and a
/// <em>local</em> LoRA of the adapter rank on every linear of every LLM block (q, k, v, o, gate, up, down), and its own
/// copy of the connector. Each round a sampled client downloads the global LoRA and connector, trains both on its data
/// and uploads them; the server averages them by sample size (FedAvg). FedDPA-F is the sequential ("fine-tuning")
/// variant: after the last round every client initialises its local LoRA from the global one and fine-tunes it on its
/// own data (global LoRA and connector frozen; the local LoRA replaces the global one while it trains) for
/// <c>feddpa.local_epochs</c>. The local LoRA never leaves the client. At test time the two are mixed per instance,
/// <c>W0 + (1 - a) dW_global + a dW_local</c>, with <c>a</c> the mean cosine similarity, clamped to [0, 1], between
/// the instance's last hidden state (final-norm output at its last prompt token, under the global model) and those of
/// <c>feddpa.instances</c> of the client's training instances. Before the last round clients are evaluated with the
/// global model. Nothing crosses a client/server split (the client holds the whole model), so split bytes are 0.
/// Yang et al., "Dual-Personalizing Adapter for Federated Foundation Models", NeurIPS 2024.
/// </summary>
public sealed class FedDpaF : IStrategy
{
    /// <summary>The method's name in configs and results (its only spelling).</summary>
    public const string MethodName = "feddpa-f";

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public FitInstructions ConfigureFit(int round, int client) => new();

    /// <summary>The global LoRA and connector: averaged by sample size.</summary>
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates) => FedAvg.WeightedMean(global, updates);

    /// <summary>The local LoRA each client ended with (after a run; keys as <see cref="LoraSet.Parameters"/>).</summary>
    public IReadOnlyDictionary<int, AdapterState> LocalLora => local;

    /// <summary>When set, copies of every upload of a run are kept in <see cref="Uploads"/> (for inspection in tests).</summary>
    internal bool RecordUploads { get; init; }
    /// <summary>Copies of the uploads of the last run, in order, if <see cref="RecordUploads"/>.</summary>
    internal List<ClientUpdate> Uploads { get; } = [];

    private readonly Dictionary<int, AdapterState> local = [];
    private const string ConnectorPrefix = "multi_modal_projector.";

    /// <summary>
    /// Runs it from the start or from <paramref name="start"/> (its global LoRA and connector; after the last round
    /// also every client's local LoRA), calling <paramref name="afterRound"/> after every round.
    /// </summary>
    internal MethodResult Run(FederatedSimulation sim, SimulationState? start, Action<SimulationState>? afterRound)
    {
        var config = sim.Config;
        var model = sim.Backbone.Model;
        var device = sim.Edge.Device;
        int rank = config.FedDpa.LoraRank ?? config.Adapter.Rank;
        manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("feddpa init")));
        using var lora = new LoraSet(model.LanguageModel.Config, rank, device: device);
        var connector = model.CopyConnector();
        AdapterState State() => new(lora.State().Tensors.Concat(connector.named_parameters().Select(p => KeyValuePair.Create(ConnectorPrefix + p.name, p.parameter.detach().clone())))
            .ToDictionary(p => p.Key, p => p.Value));
        void Load(AdapterState s)
        {
            lora.Load(s);
            using var _ = no_grad();
            foreach (var (name, p) in connector.named_parameters()) p.copy_(s[ConnectorPrefix + name]);
        }
        AdapterState global;
        if (start is null) global = State();
        else
        {
            var missing = lora.State().Tensors.Keys.Concat(connector.named_parameters().Select(p => ConnectorPrefix + p.name)).Where(k => !start.Global.Tensors.ContainsKey(k)).ToArray();
            if (missing.Length > 0) throw new ArgumentException($"the start state lacks {missing.Length} FedDPA-F tensor(s), e.g. '{missing[0]}' (made with another LoRA rank or backbone?)", nameof(start));
            global = start.Global.Clone();
            Load(global);
        }
        long resident = sim.Architecture.Total + 2 * lora.Parameters().Sum(p => p.parameter.numel());
        var disposables = new List<IDisposable>();
        var shared = lora.Parameters().Concat(connector.named_parameters().Select(p => (ConnectorPrefix + p.name, p.parameter))).ToArray();
        Tensor Sequence(EncodedBatch b) => sim.Edge.RawSequence(b, connector);
        var rows = new List<RoundResult>(start?.Rows ?? []);
        IReadOnlyList<IReadOnlyList<Prediction>> final = start?.Final ?? [];
        foreach (var s in local.Values) s.Dispose();
        local.Clear();
        foreach (var (k, s) in start?.Clients ?? FederatedSimulation.NoClientState) local[k] = s.Clone();
        Uploads.Clear();
        for (int round = (start?.Round ?? 0) + 1; round <= config.Rounds; round++)
        {
            var updates = new List<ClientUpdate>();
            var trainLoss = Enumerable.Repeat(double.NaN, sim.Train.Length).ToArray();
            var traffic = new ClientTraffic[sim.Train.Length];
            foreach (int k in sim.SampleClients(round))
            {
                Load(global);
                var (loss, _) = ClientTrainer.Optimise(shared, sim.Train[k], new FitInstructions(), null, sim.DataOrder(round, k), config, config.LocalEpochs, null, device,
                    b => Step(sim, Sequence(b), b, lora));
                var upload = State();
                updates.Add(new ClientUpdate(k, sim.Train[k].Length, upload, null));
                if (RecordUploads) Uploads.Add(new ClientUpdate(k, sim.Train[k].Length, upload.Clone(), null));
                trainLoss[k] = loss;
                var (down, downBytes) = ClientTraffic.Measure(global);
                var (up, upBytes) = ClientTraffic.Measure(upload);
                traffic[k] = new ClientTraffic { DownloadedParams = down, DownloadedBytes = downBytes, UploadedParams = up, UploadedBytes = upBytes };
            }
            var next = Aggregate(round, global, updates);
            global.Dispose();
            global = next;
            foreach (var u in updates) u.Parameters.Dispose();
            Load(global);
            using var globalLora = lora.State();
            if (round == config.Rounds)
            {
                foreach (var (_, p) in connector.named_parameters()) p.requires_grad = false;
                for (int k = 0; k < sim.Train.Length; k++)
                {
                    lora.Load(globalLora);                      // local LoRA initialised from the global one
                    ClientTrainer.Optimise(lora.Parameters().ToArray(), sim.Train[k], new FitInstructions(), null, sim.DataOrder(round, 1000 + k), config,
                        config.FedDpa.LocalEpochs, null, device, b => Step(sim, Sequence(b), b, lora));
                    local[k] = lora.State();
                }
            }
            lora.Load(globalLora);
            var t = traffic;
            final = sim.EvaluateAll(null, k => (t[k] ?? new ClientTraffic()) with { ClientResidentParams = resident }, Name, round, rows, trainLoss: trainLoss,
                client: round == config.Rounds ? k => Mixed(sim, k, lora, rank, Sequence, disposables)
                    : _ => new EvalClient(Sequence, sim.Edge.Embed, (_, _) => lora), countSplit: false);
            afterRound?.Invoke(new SimulationState(Name, round, global, local, rows, final));
            sim.Report(Name, round, rows);
        }
        global.Dispose();
        connector.Dispose();
        foreach (var d in disposables) d.Dispose();
        return new MethodResult(Name, rows, final);
    }

    private static Tensor Step(FederatedSimulation sim, Tensor sequence, EncodedBatch batch, ILinearDelta delta)
    {
        var (nll, grad) = sim.Server.LossAndGradient(sequence.detach(), batch.Labels, delta: delta);
        if (sequence.requires_grad) sequence.backward([grad]); // into the client's own connector
        return nll.mean();
    }

    /// <summary>The evaluation of client k: per batch, its sequence and the instance-wise mixture of the global and its local LoRA.</summary>
    private EvalClient Mixed(FederatedSimulation sim, int k, LoraSet global, int rank, Func<EncodedBatch, Tensor> sequence, List<IDisposable> disposables)
    {
        var device = sim.Edge.Device;
        var localSet = new LoraSet(sim.Backbone.Model.LanguageModel.Config, rank, device: device);
        localSet.Load(local[k]);
        var rng = sim.DataOrder(0, k);
        var references = sim.Train[k].OrderBy(_ => rng.Next()).Take(sim.Config.FedDpa.Instances).ToArray();
        Tensor refs;
        using (no_grad())
        using (var batch = EncodedBatch.Create(references, false, sim.Backbone.Tokenizer.PadId, device))
            refs = nn.functional.normalize(LastHidden(sim, sequence(batch), batch, global), dim: -1).DetachFromDisposeScope();
        disposables.Add(localSet);
        disposables.Add(refs);
        return new EvalClient(sequence, sim.Edge.Embed, (batch, seq) =>
        {
            var h = nn.functional.normalize(LastHidden(sim, seq, batch, global), dim: -1);
            return new MixedDelta(global, localSet, h.matmul(refs.T).mean([1L]).clamp(0, 1));
        });
    }

    private static Tensor LastHidden(FederatedSimulation sim, Tensor sequence, EncodedBatch batch, ILinearDelta delta)
    {
        var hidden = sim.Server.Llm.Hidden(sequence, delta);
        var idx = tensor(batch.AnswerPositions, device: hidden.device);
        return hidden[arange(hidden.shape[0], device: hidden.device), idx];
    }
}
