namespace FedNano.Ledgers;

/// <summary>
/// What one federated method trains, sends and keeps on a client, in scalar parameters, for one architecture and
/// adapter/LoRA rank. Shares are fractions (0..1) of the whole MLLM (<see cref="ModelTotal"/>).
/// </summary>
/// <param name="Method">Method name as the CLI and reports spell it (FedNano, FedNano-EF, FedAvg, FedProx, FedDPA-F,
/// Local, Centralized).</param>
/// <param name="Trainable">Parameters a client (for Centralized: the server) trains.</param>
/// <param name="Uploaded">Model parameters a client uploads per round (0 when nothing is communicated).</param>
/// <param name="FisherUploaded">Diagonal-Fisher values a client uploads per round besides
/// <paramref name="Uploaded"/> (Fisher merging only).</param>
/// <param name="ClientResident">Parameters a client holds, frozen and trainable; <c>null</c> when the method has no
/// clients.</param>
/// <param name="ModelTotal">Parameters of the whole MLLM, the denominator of the shares.</param>
/// <param name="Note">How the numbers come about.</param>
public sealed record MethodParameters(
    string Method, long Trainable, long Uploaded, long FisherUploaded, long? ClientResident, long ModelTotal,
    string Note)
{
    /// <summary>Trainable parameters as a fraction of the whole MLLM.</summary>
    public double TrainableShare => (double)Trainable / ModelTotal;
    /// <summary>Uploaded model parameters per round as a fraction of the whole MLLM.</summary>
    public double UploadShare => (double)Uploaded / ModelTotal;
    /// <summary>Client-resident parameters as a fraction of the whole MLLM (<c>null</c> without clients).</summary>
    public double? ClientShare => ClientResident is { } c ? (double)c / ModelTotal : null;
    /// <summary>Client storage saved against holding the whole MLLM: 1 − <see cref="ClientShare"/> (negative when a
    /// client holds more).</summary>
    public double? StorageSaving => 1 - ClientShare;
}

/// <summary>
/// Per-method parameter accounting under FedNano.Sim's setup: every method except FedDPA-F uses the NanoEdge
/// split (client: frozen vision encoder, connector and token-embedding copy plus NanoAdapter-I/-T of rank r; server:
/// the frozen LLM). FedDPA-F puts a global and a local LoRA of rank r on q/k/v/o/gate/up/down of every LLM block,
/// trains them with the connector's tunable projector, and needs the whole MLLM on the client.
/// </summary>
public static class ParameterLedger
{
    /// <summary>The methods with a stated ledger, in report order (their titles).</summary>
    public static IReadOnlyList<string> Methods =>
        Simulation.MethodCatalog.Entries.Where(e => e.Ledger is not null).Select(e => e.Title).ToArray();

    /// <summary>One row per method in <see cref="Methods"/> order for <paramref name="arch"/> at adapter/LoRA rank
    /// <paramref name="rank"/>.</summary>
    /// <exception cref="ConfigException"><paramref name="rank"/> is not positive.</exception>
    public static IReadOnlyList<MethodParameters> Compute(ArchitectureParameters arch, int rank)
    {
        ConfigException.Positive(rank, "rank");
        return Simulation.MethodCatalog.Entries.Where(e => e.Ledger is not null).Select(e => e.Ledger!(arch, rank))
            .ToArray();
    }
}
