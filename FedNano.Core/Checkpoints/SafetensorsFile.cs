using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace FedNano.Checkpoints;

/// <summary>One tensor listed in a safetensors header: dtype, shape and byte range in the data section.</summary>
/// <param name="Name">Key of the tensor.</param>
/// <param name="DType">Safetensors dtype name (<c>F32</c>, <c>F16</c>, <c>BF16</c>, ...).</param>
/// <param name="Shape">Shape.</param>
/// <param name="Begin">First byte in the data section.</param>
/// <param name="End">One past the last byte in the data section.</param>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>The TorchSharp element type of this tensor.</summary>
    public ScalarType ScalarType => SafetensorsFile.DTypes[DType];

    /// <summary>The shape as <c>[a, b]</c>.</summary>
    public string ShapeText => SafetensorsFile.ShapeText(Shape);
}

/// <summary>
/// A <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header
/// <c>{name: {dtype, shape, data_offsets}}</c> and the raw little-endian tensor data. Opening reads and checks
/// the header only (known dtypes, byte sizes that match the shapes, ranges inside the file, so a truncated file
/// is caught before any tensor is read); tensors are read one at a time. Nothing in the file is ever executed.
/// </summary>
public sealed class SafetensorsFile
{
    internal static readonly IReadOnlyDictionary<string, ScalarType> DTypes = new Dictionary<string, ScalarType>
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16, ["I8"] = ScalarType.Int8, ["U8"] = ScalarType.Byte, ["BOOL"] = ScalarType.Bool,
    };

    private const long MaxHeader = 100_000_000;
    private readonly long dataStart;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, SafetensorsEntry> entries,
        Dictionary<string, string> metadata)
    {
        Path = path; this.dataStart = dataStart; Entries = entries; Metadata = metadata;
    }

    /// <summary>The file.</summary>
    public string Path { get; }
    /// <summary>The tensors listed in the header, by key.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    /// <summary>The header's <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    internal static string ShapeText(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    internal static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new ArgumentException($"no safetensors dtype for {t}"),
    };

    /// <summary>
    /// Reads and checks the header of <paramref name="path"/>; throws <see cref="ConfigException"/> naming the file
    /// and key.
    /// </summary>
    public static SafetensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors reading needs a little-endian machine");
        if (!File.Exists(path)) throw new ConfigException($"{path}: file not found");
        using var stream = File.OpenRead(path);
        long length = stream.Length;
        if (length < 8)
            throw new ConfigException(
                $"{path}: truncated safetensors file ({length} bytes, not even the 8-byte header length)");
        var lenBytes = new byte[8];
        stream.ReadExactly(lenBytes);
        long headerLength = BitConverter.ToInt64(lenBytes);
        if (headerLength <= 0 || headerLength > MaxHeader)
            throw new ConfigException($"{path}: not a safetensors file (header length {headerLength}); " +
                                      "only .safetensors checkpoints are read, never pickled .bin/.pt files");
        if (8 + headerLength > length)
            throw new ConfigException($"{path}: truncated safetensors file: the header needs {headerLength} bytes " +
                                      $"but the file has {length - 8} after the length");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataLength = length - 8 - headerLength;

        try { new UTF8Encoding(false, true).GetCharCount(header); }
        catch (DecoderFallbackException)
        {
            throw new ConfigException($"{path}: the safetensors header is not valid UTF-8 (a corrupt file)");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: the safetensors header is not valid JSON: {e.Message}");
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ConfigException($"{path}: the safetensors header is not a JSON object");

        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                if (p.Value.ValueKind == JsonValueKind.Object)
                    foreach (var m in p.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                continue;
            }
            if (entries.ContainsKey(p.Name))
                throw new ConfigException($"{path}: tensor '{p.Name}' is listed twice in the header");
            entries[p.Name] = ParseEntry(path, p.Name, p.Value, dataLength);
        }
        SafetensorsEntry? previous = null;
        foreach (var e in entries.Values.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && e.Begin < previous.End)
                throw new ConfigException($"{path}: tensors '{previous.Name}' [{previous.Begin}, " +
                                          $"{previous.End}) and '{e.Name}' [{e.Begin}, {e.End}) " +
                                          "overlap in the data section (a corrupt or hand-edited header)");
            previous = e;
        }
        return new SafetensorsFile(path, 8 + headerLength, entries, metadata);
    }

    private static SafetensorsEntry ParseEntry(string path, string key, JsonElement e, long dataLength)
    {
        string Bad(string what) => $"{path}: tensor '{key}': {what}";
        try
        {
            var dtype = e.GetProperty("dtype").GetString() ?? "";
            if (!DTypes.TryGetValue(dtype, out var st))
                throw new ConfigException(Bad($"unknown dtype '{dtype}' (readable: {string.Join(", ", DTypes.Keys)})"));
            var shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (shape.Any(d => d < 0))
                throw new ConfigException(Bad($"negative dimension in shape {ShapeText(shape)}"));
            var offsets = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
                throw new ConfigException(Bad($"malformed data_offsets [{string.Join(", ", offsets)}]"));
            long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(st);
            if (offsets[1] - offsets[0] != expected)
                throw new ConfigException(Bad($"{dtype} {ShapeText(shape)} needs {expected} bytes " +
                                              $"but data_offsets span {offsets[1] - offsets[0]}"));
            if (offsets[1] > dataLength)
                throw new ConfigException(Bad($"truncated file: the tensor's bytes [{offsets[0]}, {offsets[1]}) " +
                                              $"end past the {dataLength} bytes of data the file holds"));
            return new SafetensorsEntry(key, dtype, shape, offsets[0], offsets[1]);
        }
        catch (Exception x) when (x is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ConfigException(
                Bad($"malformed header entry ({x.Message}); expected {{dtype, shape, data_offsets}}"));
        }
    }

    /// <summary>Reads tensor <paramref name="key"/> into a new CPU tensor of the file's dtype and shape.</summary>
    public Tensor Read(string key)
    {
        if (!Entries.TryGetValue(key, out var e)) throw new ConfigException($"{Path}: no tensor '{key}'");
        using var stream = File.OpenRead(Path);
        return Read(stream, e);
    }

    internal Tensor Read(FileStream stream, SafetensorsEntry e)
    {
        var bytes = new byte[e.End - e.Begin];
        stream.Seek(dataStart + e.Begin, SeekOrigin.Begin);
        try { stream.ReadExactly(bytes); }
        catch (EndOfStreamException)
        {
            throw new ConfigException($"{Path}: tensor '{e.Name}': the file ended while reading it " +
                                      "(truncated or changed while loading)");
        }
        var t = empty(e.Shape, e.ScalarType, CPU);
        if (bytes.Length > 0) t.bytes = bytes;
        return t;
    }

    /// <summary>Reads a frozen weight: as <see cref="Read(FileStream, SafetensorsEntry)"/>, refusing NaN or infinite
    /// values.</summary>
    internal Tensor ReadFinite(FileStream stream, SafetensorsEntry e)
    {
        var t = Read(stream, e);
        if (t.is_floating_point() && t.numel() > 0 && !isfinite(t).all().item<bool>())
        {
            long bad = t.numel() - isfinite(t).sum().item<long>();
            t.Dispose();
            throw new ConfigException($"{Path}: tensor '{e.Name}' holds {bad} NaN or infinite value(s) " +
                                      $"of {e.Shape.Aggregate(1L, (a, b) => a * b)}: the weights are corrupt");
        }
        return t;
    }

    /// <summary>
    /// Checks, before any model is allocated, that the file holds exactly the <paramref name="expected"/> weights,
    /// each a float tensor of its shape; errors are <see cref="ConfigException"/>s naming the file and the key.
    /// </summary>
    public void CheckWeights(IEnumerable<(string Name, long[] Shape)> expected, string configName = "config.json")
    {
        var shapes = expected.ToDictionary(p => p.Name, p => p.Shape, StringComparer.Ordinal);
        foreach (var key in Entries.Keys)
            if (!shapes.ContainsKey(key)) throw new ConfigException($"{Path}: unexpected key '{key}': " +
                                                                    $"the model of {configName} has no such parameter");
        foreach (var (key, shape) in shapes)
        {
            if (!Entries.TryGetValue(key, out var e))
                throw new ConfigException($"{Path}: parameter '{key}' is missing (checkpoint incomplete, " +
                                          $"or {configName} disagrees with the weights)");
            if (e.ScalarType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16
                                     or ScalarType.Float64))
                throw new ConfigException($"{Path}: key '{key}' has dtype {e.DType}; weights must be F32, F16, " +
                                          $"BF16 or F64");
            if (!e.Shape.SequenceEqual(shape))
                throw new ConfigException($"{Path}: key '{key}' has shape {e.ShapeText} but {configName} gives " +
                                          $"{ShapeText(shape)}: {configName} disagrees with the weights");
        }
    }

    /// <summary>
    /// Copies every tensor of the file into <paramref name="module"/>'s parameter of the same name (checked first
    /// with <see cref="CheckWeights"/>), converting dtype and device; NaN or infinite weights are refused.
    /// </summary>
    public void LoadInto(TorchSharp.torch.nn.Module module)
    {
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using var _ = no_grad();
        using var stream = File.OpenRead(Path);
        foreach (var (key, e) in Entries)
        {
            if (!parameters.TryGetValue(key, out var p))
                throw new ConfigException($"{Path}: the model has no parameter '{key}'");
            using var t = ReadFinite(stream, e);
            p.copy_(t);
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> as a safetensors file (to a temporary file first, then renamed, so no
    /// half-written file is left). Tensors are written contiguous and little-endian in their own dtype.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors writing needs a little-endian machine");
        var names = DTypes.ToDictionary(p => p.Value, p => p.Key);
        var list = tensors.ToList();
        var header = new MemoryStream();
        using (var j = new Utf8JsonWriter(header))
        {
            j.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                j.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) j.WriteString(k, v);
                j.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                if (!names.TryGetValue(t.dtype, out var dtype))
                    throw new ArgumentException($"tensor '{name}': dtype {t.dtype} has no safetensors name");
                long size = t.numel() * ElementSize(t.dtype);
                j.WriteStartObject(name);
                j.WriteString("dtype", dtype);
                j.WriteStartArray("shape");
                foreach (var d in t.shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteStartArray("data_offsets");
                j.WriteNumberValue(offset);
                j.WriteNumberValue(offset + size);
                j.WriteEndArray();
                j.WriteEndObject();
                offset += size;
            }
            j.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var f = File.Create(tmp))
            {
                f.Write(BitConverter.GetBytes(header.Length));
                header.Position = 0;
                header.CopyTo(f);
                foreach (var (_, t) in list)
                {
                    using var c = t.detach().cpu().contiguous();
                    if (c.numel() > 0) f.Write(c.bytes);
                }
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }
}
