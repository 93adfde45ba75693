namespace FedNano;

/// <summary>
/// Named entries (data sets, partitioners): the built-in ones first, then those a user's code registers.
/// Thread-safe; names are case-sensitive. A built-in entry cannot be replaced; a user's entry is replaced by a later
/// one of its name.
/// </summary>
internal sealed class Registry<T>(string what, string field, Func<T, string> nameOf, params T[] builtIns)
    where T : class
{
    private readonly Lock gate = new();
    private readonly List<T> entries = [.. builtIns];

    /// <summary>Every name, built-in ones first, in registration order.</summary>
    public IReadOnlyList<string> Names
    {
        get { lock (gate) return entries.Select(nameOf).ToArray(); }
    }

    public void Register(T entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string name = nameOf(entry);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException($"a {what} needs a name", nameof(entry));
        lock (gate)
        {
            int i = entries.FindIndex(e => nameOf(e) == name);
            if (i >= 0 && i < builtIns.Length)
                throw new ArgumentException($"{what} '{name}' is built in; register yours under another name",
                    nameof(entry));
            if (i >= 0) entries[i] = entry;
            else entries.Add(entry);
        }
    }

    public T? Find(string name)
    {
        lock (gate) return entries.FirstOrDefault(e => nameOf(e) == name);
    }

    /// <summary>The entry named <paramref name="name"/>, or a <see cref="ConfigException"/> listing them.</summary>
    public T Get(string name, string howToAdd) => Find(name) ?? throw new ConfigException(
        $"{field} '{name}' is not one of {string.Join(", ", Names)} (a {what} of your own: {howToAdd})");
}
