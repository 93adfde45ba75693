using FedNano.Edge;
using static TorchSharp.torch;

namespace FedNano.Fisher;

/// <summary>
/// FedNano-EF's estimate: the squared mini-batch gradient g_t^2 of every local step (element-wise, the gradient of
/// the batch-mean task loss), averaged over the steps, F = (1/T) sum_t g_t^2, at no extra pass. With batch size 1
/// and unchanged parameters it equals <see cref="EmpiricalFisher"/>; with larger batches it is the Fisher of the
/// batch-mean gradient (smaller by about the batch size, which Fisher merging's ratio cancels when every client
/// uses the same batch size). "FedNano: Toward Lightweight Federated Tuning for Pretrained Multimodal Large Language
/// Models" (2025).
/// </summary>
public sealed class SquaredGradientFisher(bool normalise = false) : IGradientFisher
{
    /// <summary>The estimator's name in configs and the CLI (its only spelling).</summary>
    public const string EstimatorName = "ef";

    /// <inheritdoc/>
    public string Name => EstimatorName;

    /// <inheritdoc/>
    public bool Normalise { get; } = normalise;

    /// <inheritdoc/>
    public IGradientObserver Observe(IReadOnlyDictionary<string, Tensor> parameters) => new Observer(parameters);

    private sealed class Observer(IReadOnlyDictionary<string, Tensor> parameters) : IGradientObserver
    {
        private readonly Dictionary<string, Tensor> sums =
            parameters.ToDictionary(p => p.Key, p => zeros_like(p.Value));
        private int steps;

        public void Step(IReadOnlyDictionary<string, Tensor> gradients)
        {
            using (no_grad())
                foreach (var (name, sum) in sums) sum.add_(gradients[name].pow(2));
            steps++;
        }

        public AdapterState Estimate() =>
            new(sums.ToDictionary(p => p.Key, p => p.Value.clone().div_(Math.Max(steps, 1))));

        public void Dispose()
        {
            foreach (var t in sums.Values) t.Dispose();
        }
    }
}
