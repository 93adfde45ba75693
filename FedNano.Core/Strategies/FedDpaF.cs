using FedNano.Adapters;
using FedNano.Edge;
using FedNano.Models;
using FedNano.Simulation;
using TorchSharp;
using TorchSharp.Modules;
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
/// It runs in the one round loop with its own client algorithm (<see cref="CreateClient"/>); under <c>execution:
/// batched</c> a round's clients train together, each sample with its own client's LoRA and connector, and so do
/// the fine-tuning clients (as many at a time as a round trains) and the evaluation (each sample with its own
/// client's mixture).
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
    public AdapterState Aggregate(int round, AdapterState global, IReadOnlyList<ClientUpdate> updates)
    {
        if (RecordUploads) Uploads.AddRange(updates.Select(u => u with { Parameters = u.Parameters.Clone() }));
        return FedAvg.WeightedMean(global, updates);
    }

    /// <summary>The local LoRA each client ended with (after a run; keys as <see cref="LoraSet.Parameters"/>).
    /// </summary>
    public IReadOnlyDictionary<int, AdapterState> LocalLora => local;

    /// <summary>
    /// When set, copies of every upload of a run are kept in <see cref="Uploads"/> (for inspection in tests).
    /// </summary>
    internal bool RecordUploads { get; init; }
    /// <summary>Copies of the uploads of the last run, in order, if <see cref="RecordUploads"/>.</summary>
    internal List<ClientUpdate> Uploads { get; } = [];

    private readonly Dictionary<int, AdapterState> local = [];
    private const string ConnectorPrefix = "multi_modal_projector.";

    /// <summary>
    /// The client side (<see cref="DualLora"/>): the global LoRA and the connector copy train and travel; after the
    /// last round every client fine-tunes its local LoRA; evaluation with the global model, then the mixture.
    /// </summary>
    public IClientAlgorithm CreateClient(FederatedSimulation simulation)
    {
        Uploads.Clear();
        return new DualLora(this, simulation);
    }

    /// <summary>Every client's local LoRA after the last round (none before it).</summary>
    public IReadOnlyDictionary<int, AdapterState> ExportClientStates() => local;

    /// <inheritdoc/>
    public void ImportClientStates(IReadOnlyDictionary<int, AdapterState> states)
    {
        foreach (var s in local.Values) s.Dispose();
        local.Clear();
        foreach (var (k, s) in states) local[k] = s.Clone();
    }

    /// <summary>
    /// FedDPA-F's client: the whole MLLM (the shared frozen base) with a trainable LoRA inside the LLM and its own
    /// connector copy; its state is the LoRA and connector tensors, the LoRA applied to the shared LLM as a delta per
    /// call.
    /// </summary>
    private sealed class DualLora : IClientAlgorithm
    {
        private readonly FedDpaF owner;
        private readonly FederatedSimulation sim;
        private readonly int rank;
        private readonly LoraSet lora;
        private readonly nn.Module<Tensor, Tensor> connector;
        private readonly (string name, Parameter parameter)[] shared;
        private readonly long resident;
        private readonly List<IDisposable> disposables = [];

        public DualLora(FedDpaF owner, FederatedSimulation sim)
        {
            (this.owner, this.sim) = (owner, sim);
            var config = sim.Config;
            rank = config.FedDpa.LoraRank ?? config.Adapter.Rank;
            manual_seed(Seeds.Derive(config.Seed, Seeds.Purpose("feddpa init")));
            lora = new LoraSet(sim.Backbone.Model.LanguageModel.Config, rank, device: sim.Edge.Device);
            connector = sim.Backbone.Model.CopyConnector();
            Initial = State();
            resident = sim.Architecture.Total + 2 * lora.Parameters().Sum(p => p.parameter.numel());
            shared = lora.Parameters()
                .Concat(connector.named_parameters().Select(p => (ConnectorPrefix + p.name, p.parameter))).ToArray();
        }

        public AdapterState Initial { get; }

        /// <summary>Nothing crosses a split: the client holds the whole model.</summary>
        public bool CrossesSplit => false;

        /// <summary>The whole MLLM and two LoRA sets (global and local).</summary>
        public long ResidentParameters(int client, AdapterState global) => resident;

        /// <summary>The global LoRA and connector: client after client, or with <c>execution: batched</c> together
        /// (<see cref="FitTogether"/>).</summary>
        public ClientFit[] Fit(
            int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global) =>
            sim.Batched && clients.Length > 1 ? FitTogether(round, clients, fits, starts, global) :
            clients.Select((k, j) =>
            {
                Load(starts[j]);
                var prox = fits[j].ProximalMu > 0 ? global : null;
                var (loss, squared) = ClientTrainer.Optimise(shared, sim.DataOf(k), fits[j], prox,
                    sim.DataOrder(round, k), sim.Config, sim.Config.LocalEpochs, null, sim.Edge.Device, Step);
                return new ClientFit(State(), loss, squared, 0);
            }).ToArray();

        /// <summary>The round's clients trained together (<see cref="Together"/>), each with its own connector copy.
        /// </summary>
        private ClientFit[] FitTogether(
            int round, int[] clients, FitInstructions[] fits, AdapterState[] starts, AdapterState global) =>
            Together(clients, starts, fits, global, k => sim.DataOrder(round, k), sim.Config.LocalEpochs, true)
                .Select(r => new ClientFit(r.state, r.loss, r.squared, 0)).ToArray();

        /// <summary>
        /// Every client fine-tunes its local LoRA, initialised from the global one (connector frozen): client after
        /// client, or with <c>execution: batched</c> as many together as a round trains (<see cref="Together"/>).
        /// </summary>
        public void AfterLastRound(int round, AdapterState global)
        {
            Load(global);
            using var globalLora = lora.State();
            foreach (var (_, p) in connector.named_parameters()) p.requires_grad = false;
            Random Order(int k) => sim.DataOrder(round, 1000 + k);
            var tuning = new FitInstructions();
            foreach (var group in Enumerable.Range(0, sim.Train.Length).Chunk(sim.Batched ? sim.ClientsPerRound : 1))
            {
                var states = group.Length == 1 ? [FineTune(group[0], globalLora, Order(group[0]))]
                    : Together(group, group.Select(_ => globalLora).ToArray(), group.Select(_ => tuning).ToArray(),
                        null, Order, sim.Config.FedDpa.LocalEpochs, false).Select(r => r.state).ToArray();
                foreach (var (k, state) in group.Zip(states))
                {
                    if (owner.local.Remove(k, out var old)) old.Dispose();
                    owner.local[k] = state;
                }
            }
        }

        private AdapterState FineTune(int k, AdapterState globalLora, Random order)
        {
            lora.Load(globalLora);
            ClientTrainer.Optimise(lora.Parameters().ToArray(), sim.Train[k], new FitInstructions(), null, order,
                sim.Config, sim.Config.FedDpa.LocalEpochs, null, sim.Edge.Device, Step);
            return lora.State();
        }

        /// <summary>
        /// Clients trained together, each with its own LoRA from <paramref name="starts"/>, AdamW state and data order
        /// (<see cref="ClientTrainer.StepTogether"/>): a pass's samples go through the shared LLM with their own
        /// client's LoRA (<see cref="StackedLora"/>), on the visual tokens of their own client's connector copy (from
        /// <paramref name="starts"/>, trained too) with <paramref name="ownConnectors"/>, else of the frozen shared
        /// one. The pass back-propagates the sum of the samples' losses, so each client's LoRA gradient is divided by
        /// its batch size afterwards (the connectors get the weighted gradient directly). The same result as client
        /// after client, to float rounding; each state holds the LoRA and, with own connectors, the connector.
        /// </summary>
        private (AdapterState state, double loss, AdapterState? squared)[] Together(int[] clients,
            AdapterState[] starts, FitInstructions[] fits, AdapterState? global, Func<int, Random> order, int epochs,
            bool ownConnectors)
        {
            var copies = ownConnectors ? starts.Select(s =>
            {
                var c = sim.Backbone.Model.CopyConnector();
                Load(c, s);
                return c;
            }).ToArray() : null;
            var loras = starts.Select(s => lora.Parameters().Select(p => (p.name, new Parameter(s[p.name].clone())))
                .ToArray()).ToArray();
            var parameters = loras.Select((l, j) => copies is null ? l : l.Concat(copies[j].named_parameters()
                .Select(p => (ConnectorPrefix + p.name, p.parameter))).ToArray()).ToArray();
            var runs = clients.Select((k, j) => new LocalOptimisation(parameters[j], sim.DataOf(k), fits[j],
                fits[j].ProximalMu > 0 ? global : null, order(k), sim.Config, epochs, null)).ToArray();
            try
            {
                Tensor Pass(EncodedBatch batch, Tensor index, Tensor weight, int[] active)
                {
                    var of = index.cpu().data<long>().ToArray();
                    var owner = batch.Samples.SelectMany((s, b) => Enumerable.Repeat(active[of[b]], s.Images.Length))
                        .ToArray();
                    Tensor Connect(Tensor feats) // [images x tokens, width], image after image
                    {
                        var perImage = feats.view(owner.Length, -1, feats.shape[^1]);
                        var groups = Enumerable.Range(0, owner.Length).GroupBy(i => owner[i]).ToArray();
                        var parts = groups.Select(g => copies![g.Key].forward(
                            perImage[tensor(g.Select(i => (long)i).ToArray(), device: feats.device)])).ToArray();
                        var rows = groups.SelectMany(g => g).ToArray();
                        var visual = cat(parts, 0)[tensor(ClientTrainer.Inverse(rows), device: feats.device)];
                        return visual.view(-1, visual.shape[^1]);
                    }
                    var sequence = copies is null ? Sequence(batch) : sim.Edge.RawSequence(batch, Connect);
                    var delta = new StackedLora(active.Select(i => runs[i].Live).ToArray(), index, lora.Scale);
                    var (nll, grad) = sim.Server.LossAndGradient(sequence.detach(), batch.Labels, sum: true,
                        delta: delta);
                    if (sequence.requires_grad) sequence.backward([ClientTrainer.Weighted(grad, weight)]);
                    return nll;
                }
                void Mean(int[] active, int[] counts, Tensor _)
                {
                    using var __ = no_grad();
                    for (int a = 0; a < active.Length; a++)
                        foreach (var (_, p) in loras[active[a]]) p.grad?.div_(counts[a]);
                }
                ClientTrainer.StepTogether(runs, sim.Config.TrainBatchTokens, sim.Edge.Device, Pass, Mean);
                return runs.Select((run, j) =>
                {
                    var (loss, squared) = run.Result();
                    var state = parameters[j].ToDictionary(p => p.Item1, p => p.Item2.detach().clone());
                    return (new AdapterState(state), loss, squared);
                }).ToArray();
            }
            finally
            {
                foreach (var run in runs) run.Dispose();
                foreach (var (_, p) in loras.SelectMany(l => l)) p.Dispose();
                foreach (var c in copies ?? []) c.Dispose();
            }
        }

        /// <summary>The global model before the last round, the instance-wise mixture after it.</summary>
        public Func<int, EvalClient> Evaluation(int round, AdapterState global)
        {
            Load(global);
            return round == sim.Config.Rounds ? Mixed : _ => GlobalModel;
        }

        private EvalClient GlobalModel => new(Sequence, sim.Edge.Embed, (_, _) => lora);

        /// <summary>
        /// As <see cref="Evaluation"/>, for a batch mixing clients: after the last round each sample gets the mixture
        /// with its own client's local LoRA (stacked per sample, <see cref="StackedLora"/>) and its own client's
        /// reference instances.
        /// </summary>
        Func<int[], Tensor, EvalClient> IClientAlgorithm.EvaluationTogether(int round, AdapterState global)
        {
            Load(global);
            if (round != sim.Config.Rounds) return (_, _) => GlobalModel;
            var locals = new Dictionary<int, (IReadOnlyDictionary<string, Tensor> lora, Tensor refs)>();
            (IReadOnlyDictionary<string, Tensor> lora, Tensor refs) Of(int k) => locals.TryGetValue(k, out var known)
                ? known
                : locals[k] = (LocalSet(k).Parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter),
                    References(k));
            return (clients, row) => new EvalClient(Sequence, sim.Edge.Embed, (batch, seq) =>
            {
                var present = clients.Select(Of).ToArray();
                var h = nn.functional.normalize(LastHidden(seq, batch, lora), dim: -1);
                var weights = zeros(h.shape[0], h.dtype, h.device);
                for (int j = 0; j < present.Length; j++)
                {
                    var rows = nonzero(row.eq(j)).squeeze(1);
                    weights.index_copy_(0, rows, h[rows].matmul(present[j].refs.T).mean([1L]));
                }
                var local = new StackedLora(present.Select(p => p.lora).ToArray(), row, lora.Scale);
                return new MixedDelta(lora, local, weights.clamp(0, 1));
            });
        }

        public void Dispose()
        {
            Initial.Dispose();
            connector.Dispose();
            lora.Dispose();
            foreach (var d in disposables) d.Dispose();
        }

        private Tensor Sequence(EncodedBatch batch) => sim.Edge.RawSequence(batch, connector.forward);

        /// <summary>The task loss of a batch, backpropagated into the LoRA and, while it trains, the connector.
        /// </summary>
        private Tensor Step(EncodedBatch batch)
        {
            var sequence = Sequence(batch);
            var (nll, grad) = sim.Server.LossAndGradient(sequence.detach(), batch.Labels, delta: lora);
            if (sequence.requires_grad) sequence.backward([grad]); // into the client's own connector
            return nll.mean();
        }

        /// <summary>The final-norm hidden state at each sample's last prompt token, under <paramref name="delta"/>.
        /// </summary>
        private Tensor LastHidden(Tensor sequence, EncodedBatch batch, ILinearDelta delta)
        {
            var hidden = sim.Server.Llm.Hidden(sequence, delta);
            var idx = tensor(batch.AnswerPositions, device: hidden.device);
            return hidden[arange(hidden.shape[0], device: hidden.device), idx];
        }

        private AdapterState State() => new(lora.State().Tensors
            .Concat(connector.named_parameters()
                .Select(p => KeyValuePair.Create(ConnectorPrefix + p.name, p.parameter.detach().clone())))
            .ToDictionary(p => p.Key, p => p.Value));

        private void Load(AdapterState s)
        {
            lora.Load(s);
            Load(connector, s);
        }

        private static void Load(nn.Module<Tensor, Tensor> connector, AdapterState s)
        {
            using var _ = no_grad();
            foreach (var (name, p) in connector.named_parameters()) p.copy_(s[ConnectorPrefix + name]);
        }

        /// <summary>Client k's evaluation: per batch, its sequence and the mixture of the global and its local LoRA.
        /// </summary>
        private EvalClient Mixed(int k)
        {
            var (localSet, refs) = (LocalSet(k), References(k));
            return new EvalClient(Sequence, sim.Edge.Embed, (batch, seq) =>
            {
                var h = nn.functional.normalize(LastHidden(seq, batch, lora), dim: -1);
                return new MixedDelta(lora, localSet, h.matmul(refs.T).mean([1L]).clamp(0, 1));
            });
        }

        /// <summary>Client k's local LoRA (kept until the client is disposed, whatever dispose scope is open).
        /// </summary>
        private LoraSet LocalSet(int k)
        {
            var set = new LoraSet(sim.Backbone.Model.LanguageModel.Config, rank, device: sim.Edge.Device);
            foreach (var (_, p) in set.Parameters()) p.DetachFromDisposeScope();
            set.Load(owner.local[k]);
            disposables.Add(set);
            return set;
        }

        /// <summary>
        /// Client k's reference instances: the normalised last hidden states, under the global model, of
        /// <c>feddpa.instances</c> of its training instances drawn from the seed (kept until the client is disposed).
        /// </summary>
        private Tensor References(int k)
        {
            var rng = sim.DataOrder(0, k);
            var references = sim.Train[k].OrderBy(_ => rng.Next()).Take(sim.Config.FedDpa.Instances).ToArray();
            using var _ = no_grad();
            using var batch = EncodedBatch.Create(references, false, sim.Backbone.Tokenizer.PadId, sim.Edge.Device);
            var refs = nn.functional.normalize(LastHidden(Sequence(batch), batch, lora), dim: -1)
                .DetachFromDisposeScope();
            disposables.Add(refs);
            return refs;
        }
    }
}
