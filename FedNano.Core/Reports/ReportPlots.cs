using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace FedNano.Reports;

/// <summary>The PNG plots of a <see cref="SweepReport"/> (ScottPlot), one colour per method across all plots, legends beside the data.</summary>
internal sealed class ReportPlots(SweepReport report, string dir)
{
    private const int Width = 960, Height = 540;
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    private static readonly MarkerShape[] Shapes = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare];

    /// <summary>A marker shape per method, so methods whose lines coincide stay told apart.</summary>
    private MarkerShape ShapeOf(string method) => Shapes[Math.Max(0, report.Methods.ToList().IndexOf(method)) % Shapes.Length];

    private Color ColorOf(string method) => method == Simulation.MethodCatalog.ZeroShot ? Colors.Gray : Palette.GetColor(report.Methods.ToList().IndexOf(method));

    private static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        plot.Title(title, 18);
        plot.XLabel(x, 15);
        plot.YLabel(y, 15);
        plot.ShowLegend(ScottPlot.Edge.Right);
        return plot;
    }

    private string Save(Plot plot, string name, out string relative)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        plot.SavePng(path, Width, Height);
        relative = $"plots/{name}";
        return path;
    }

    private static string Tag(int clients, double alpha) => $"clients-{clients}_alpha-{SweepReport.F(alpha)}";

    private static void PercentAxis(Plot plot) => plot.Axes.SetLimitsY(0, 100);

    /// <summary>Mean client accuracy against round, one line per method (band: ± std over seeds), zero-shot dashed.</summary>
    public string AccuracyVsRound(int clients, double alpha, out string relative)
    {
        var plot = NewPlot($"Mean client accuracy per round ({clients} clients, α = {SweepReport.F(alpha)})", "Communication round", "Mean client test accuracy (%)");
        int maxRound = 1;
        foreach (var m in report.Methods)
        {
            var curve = report.Curve(clients, alpha, m);
            if (curve.Count == 0) continue;
            if (m == Simulation.MethodCatalog.ZeroShot)
            {
                var line = plot.Add.HorizontalLine(curve[0].Accuracy.Mean, 2, ColorOf(m), LinePattern.Dashed);
                line.LegendText = Simulation.MethodCatalog.ZeroShot;
                continue;
            }
            double[] xs = curve.Select(c => (double)c.Round).ToArray(), ys = curve.Select(c => c.Accuracy.Mean).ToArray();
            maxRound = Math.Max(maxRound, curve[^1].Round);
            if (curve.All(c => c.Accuracy.Std is not null))
            {
                var band = plot.Add.FillY(xs, curve.Select(c => c.Accuracy.Mean - c.Accuracy.Std!.Value).ToArray(), curve.Select(c => c.Accuracy.Mean + c.Accuracy.Std!.Value).ToArray());
                band.FillColor = ColorOf(m).WithAlpha(0.15);
                band.LineWidth = 0;
            }
            var s = plot.Add.Scatter(xs, ys, ColorOf(m));
            s.LineWidth = 2;
            s.MarkerSize = 9;
            s.MarkerShape = ShapeOf(m);
            s.LegendText = $"{m} (n = {curve[0].Accuracy.N})";
        }
        plot.Axes.Bottom.TickGenerator = new NumericAutomatic { IntegerTicksOnly = true };
        plot.Axes.SetLimitsX(0.5, maxRound + 0.5);
        PercentAxis(plot);
        return Save(plot, $"accuracy-vs-round_{Tag(clients, alpha)}.png", out relative);
    }

    /// <summary>Final mean client accuracy against alpha (log axis), one line per method with ± std error bars.</summary>
    public string AccuracyVsAlpha(int clients, out string relative)
    {
        var plot = NewPlot($"Final mean client accuracy against α ({clients} clients)", "Dirichlet concentration α (log scale; smaller = more heterogeneous)", "Final mean client test accuracy (%)");
        foreach (var m in report.Methods)
        {
            var points = report.Alphas.Select(a => (a, v: report.Final(clients, a, m, "mean"))).Where(p => p.v is not null).ToArray();
            if (points.Length == 0) continue;
            double[] xs = points.Select(p => Math.Log10(p.a)).ToArray(), ys = points.Select(p => p.v!.Value.Mean).ToArray();
            var s = plot.Add.Scatter(xs, ys, ColorOf(m));
            s.LineWidth = 2;
            s.MarkerSize = 9;
            s.MarkerShape = ShapeOf(m);
            if (m == Simulation.MethodCatalog.ZeroShot) s.LinePattern = LinePattern.Dashed;
            s.LegendText = m;
            if (points.All(p => p.v!.Value.Std is not null))
            {
                var e = plot.Add.ErrorBar(xs, ys, points.Select(p => p.v!.Value.Std!.Value).ToArray());
                e.LineColor = ColorOf(m);
            }
        }
        plot.Axes.Bottom.SetTicks(report.Alphas.Select(Math.Log10).ToArray(), report.Alphas.Select(SweepReport.F).ToArray());
        double lo = Math.Log10(report.Alphas[0]), hi = Math.Log10(report.Alphas[^1]), pad = Math.Max(0.1, (hi - lo) * 0.06);
        plot.Axes.SetLimitsX(lo - pad, hi + pad);
        PercentAxis(plot);
        return Save(plot, $"accuracy-vs-alpha_clients-{clients}.png", out relative);
    }

    /// <summary>Final accuracy of each client, bars grouped by client, one colour per method (± std over seeds).</summary>
    public string ClientBars(int clients, double alpha, out string relative)
    {
        var plot = NewPlot($"Final accuracy per client ({clients} clients, α = {SweepReport.F(alpha)})", "Client", "Final test accuracy (%)");
        var methods = report.Methods.Where(m => report.Final(clients, alpha, m, "mean") is not null).ToArray();
        double width = 0.8 / methods.Length;
        var bars = new List<Bar>();
        for (int i = 0; i < methods.Length; i++)
        {
            for (int k = 0; k < clients; k++)
                if (report.Final(clients, alpha, methods[i], k.ToString(CultureInfo.InvariantCulture)) is { } v)
                    bars.Add(new Bar { Position = k + 1 - 0.4 + width * (i + 0.5), Value = v.Mean, Error = v.Std ?? 0, ErrorSize = width * 0.4, Size = width * 0.9, FillColor = ColorOf(methods[i]), LineWidth = 1.2f, LineColor = Colors.Black.WithAlpha(0.7) });
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[i], FillColor = ColorOf(methods[i]) });
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(1, clients).Select(k => (double)k).ToArray(), Enumerable.Range(1, clients).Select(k => $"Client {k}").ToArray());
        plot.Axes.SetLimitsX(0.5, clients + 0.5);
        PercentAxis(plot);
        return Save(plot, $"client-accuracy_{Tag(clients, alpha)}.png", out relative);
    }

    /// <summary>Bytes uploaded over a run by all clients, per method (log axis), one bar per client count; null if no method uploads.</summary>
    public string? UploadedBytes(out string relative)
    {
        relative = "";
        var methods = report.Methods.Where(m => report.ClientCounts.Any(k => report.UploadedBytes(k, m) is { Mean: > 0 })).ToArray();
        if (methods.Length == 0) return null;
        var plot = NewPlot("Uploaded bytes per run (all clients, all rounds)", "Method", "Uploaded (bytes, log scale)");
        var counts = report.ClientCounts;
        double width = 0.8 / counts.Count;
        var bars = new List<Bar>();
        double top = 1;
        for (int j = 0; j < counts.Count; j++)
        {
            var color = Palette.GetColor(report.Methods.Count + j);
            for (int i = 0; i < methods.Length; i++)
                if (report.UploadedBytes(counts[j], methods[i]) is { Mean: > 0 } b)
                {
                    double y = Math.Log10(b.Mean);
                    top = Math.Max(top, y);
                    bars.Add(new Bar { Position = i + 1 - 0.4 + width * (j + 0.5), Value = y, Size = width * 0.9, FillColor = color, LineWidth = 0, Label = SweepReport.Bytes(b.Mean) });
                }
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"{counts[j]} clients", FillColor = color });
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 13;
        plot.Axes.Bottom.SetTicks(Enumerable.Range(1, methods.Length).Select(i => (double)i).ToArray(), methods);
        plot.Axes.Left.TickGenerator = new NumericAutomatic
        {
            MinorTickGenerator = new LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => SweepReport.Bytes(Math.Pow(10, y)),
        };
        plot.Axes.SetLimitsX(0.5, methods.Length + 0.5);
        plot.Axes.SetLimitsY(0, Math.Ceiling(top + 0.5));
        return Save(plot, "uploaded-bytes.png", out relative);
    }
}
