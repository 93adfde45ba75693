using System.Globalization;
using Spectre.Console;

namespace FedNano.Cli.Commands;

/// <summary>
/// How a command reports progress: live bars on an interactive terminal, timestamped lines otherwise.
/// </summary>
internal interface IProgressLines
{
    /// <summary>A task of <paramref name="max"/> steps, <paramref name="done"/> of them done already.</summary>
    void Add(string key, string label, double max, double done = 0);
    /// <summary>
    /// <paramref name="done"/> steps of the task are done; <paramref name="status"/> says where it stands.
    /// </summary>
    void Update(string key, double done, string status);
    /// <summary>A note between the progress reports.</summary>
    void Log(string text, string? style = null);
}

/// <summary>
/// Terminal-aware output: progress (see <see cref="IProgressLines"/>) and tables that fit the console's width.
/// </summary>
internal static class ConsoleOutput
{
    /// <summary>Whether the console is an interactive terminal (not piped, not redirected to a file).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>
    /// Output to a file or a pipe gets no colours, no control codes and 80 columns (tables are cut to fit them); call
    /// once at start.
    /// </summary>
    public static void UsePlainOutputWhenRedirected()
    {
        if (!Console.IsOutputRedirected) return;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        AnsiConsole.Profile.Width = 80;
    }

    /// <summary>
    /// Runs <paramref name="body"/> with live progress bars on a terminal, else with timestamped lines.
    /// </summary>
    public static void Progress(Action<IProgressLines> body)
    {
        if (!Interactive)
        {
            body(new PlainLines());
            return;
        }
        AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bars = new Bars(ctx);
                body(bars);
                bars.Complete();
            });
    }

    private sealed class Bars(ProgressContext ctx) : IProgressLines
    {
        private readonly Dictionary<string, (ProgressTask Task, string Label)> tasks = [];

        public void Add(string key, string label, double max, double done = 0)
        {
            var task = ctx.AddTask(Markup.Escape(label), maxValue: max);
            task.Value = done;
            tasks[key] = (task, label);
        }

        public void Update(string key, double done, string status)
        {
            if (!tasks.TryGetValue(key, out var t)) return;
            t.Task.Value = done;
            t.Task.Description = Markup.Escape($"{t.Label} {status}");
        }

        public void Log(string text, string? style) =>
            AnsiConsole.MarkupLine(style is null ? Markup.Escape(text) : $"[{style}]{Markup.Escape(text)}[/]");

        /// <summary>
        /// The work is over: every bar full (a task whose steps were not all reported ends at 100 %, not short of it).
        /// </summary>
        public void Complete()
        {
            foreach (var (task, _) in tasks.Values) task.Value = task.MaxValue;
        }
    }

    /// <summary>
    /// One line per report, <c>HH:mm:ss [ NN%] label status (about T left)</c>, for a log file or a pipe.
    /// </summary>
    private sealed class PlainLines : IProgressLines
    {
        private readonly Dictionary<string, (double Max, double Done, string Label)> tasks = [];
        private readonly DateTime start = DateTime.Now;
        private double startDone = double.NaN;

        public void Add(string key, string label, double max, double done = 0) => tasks[key] = (max, done, label);

        public void Update(string key, double done, string status)
        {
            if (!tasks.TryGetValue(key, out var t)) return;
            tasks[key] = t with { Done = done };
            double max = tasks.Values.Sum(x => x.Max), all = tasks.Values.Sum(x => Math.Min(x.Done, x.Max));
            if (double.IsNaN(startDone)) startDone = all - (done - t.Done); // what was done before this run (a resume)
            double fraction = max > 0 ? all / max : 1, rate = (all - startDone) / (DateTime.Now - start).TotalSeconds;
            string left = rate > 0 && all < max ? $" (about {Duration((max - all) / rate)} left)" : "";
            Line($"[{(100 * fraction).ToString("F0", CultureInfo.InvariantCulture),3}%] {t.Label} {status}{left}");
        }

        public void Log(string text, string? style) => Line(text);

        private static void Line(string text) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {text}");
    }

    /// <summary>Seconds as <c>42 s</c>, <c>3 min 20 s</c> or <c>2 h 05 min</c>.</summary>
    internal static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours} h {t.Minutes:00} min"
            : t.TotalMinutes >= 1 ? $"{t.Minutes} min {t.Seconds:00} s" : $"{t.Seconds} s";
    }

    /// <summary>
    /// A table as one or more Spectre tables no wider than <paramref name="width"/> (default: the console's): the first
    /// <paramref name="keyColumns"/> columns repeat in each, the others are shared out in order. Cells are plain text;
    /// columns are right-aligned except the key columns.
    /// </summary>
    public static IReadOnlyList<Table> Fit(string title, IReadOnlyList<string> headers, IReadOnlyList<string[]> rows,
        int keyColumns = 1, int? width = null)
    {
        int max = width ?? AnsiConsole.Profile.Width;
        // a column's width: its widest text, padding and border
        int Cost(int c) => Math.Max(headers[c].Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length)) + 3;
        int keyCost = 1 + Enumerable.Range(0, keyColumns).Sum(Cost);
        var chunks = new List<List<int>>();
        var current = new List<int>();
        int used = keyCost;
        for (int c = keyColumns; c < headers.Count; c++)
        {
            if (current.Count > 0 && used + Cost(c) > max)
            {
                chunks.Add(current);
                current = [];
                used = keyCost;
            }
            current.Add(c);
            used += Cost(c);
        }
        chunks.Add(current);
        var tables = new List<Table>();
        for (int i = 0; i < chunks.Count; i++)
        {
            string part = chunks.Count == 1 ? title : $"{title} ({i + 1}/{chunks.Count})";
            var table = new Table().Title(Markup.Escape(part));
            int[] columns = [.. Enumerable.Range(0, keyColumns), .. chunks[i]];
            foreach (int c in columns)
            {
                var column = new TableColumn(Markup.Escape(headers[c])).NoWrap();
                table.AddColumn(c < keyColumns ? column : column.RightAligned());
            }
            foreach (var row in rows) table.AddRow(columns.Select(c => Markup.Escape(row[c])).ToArray());
            tables.Add(table);
        }
        return tables;
    }

    /// <summary>
    /// Writes <see cref="Fit"/>'s tables to <paramref name="console"/> (default: the console), then the legend as a
    /// plain paragraph.
    /// </summary>
    public static void WriteTable(string title, IReadOnlyList<string> headers, IReadOnlyList<string[]> rows,
        int keyColumns = 1, string? legend = null, IAnsiConsole? console = null)
    {
        console ??= AnsiConsole.Console;
        foreach (var t in Fit(title, headers, rows, keyColumns, console.Profile.Width)) console.Write(t);
        if (legend is not null) console.WriteLine(legend, Style.Plain);
    }
}
