using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace FedNano.Reports;

/// <summary>The PNG plots of a <see cref="SweepReport"/> (ScottPlot), one colour per method across all plots, legends
/// beside the data.</summary>
internal sealed class ReportPlots(SweepReport report, string dir)
{
    private const int Width = 960, Height = 540;
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    private static readonly MarkerShape[] Shapes =
    [
        MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare
    ];

    /// <summary>A marker shape per method, so methods whose lines coincide stay told apart.</summary>
    private MarkerShape ShapeOf(string method) =>
        Shapes[Math.Max(0, report.Methods.ToList().IndexOf(method)) % Shapes.Length];

    private Color ColorOf(string method) => method == Simulation.MethodCatalog.ZeroShot
        ? Colors.Gray
        : Palette.GetColor(report.Methods.ToList().IndexOf(method));

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

    /// <summary>
    /// Mean client accuracy against round, one line per method (band: ± std over seeds), each starting at round 0 from
    /// the zero-shot accuracy (every method starts from the identity adapters), zero-shot dashed across.
    /// </summary>
    public string AccuracyVsRound(int clients, double alpha, out string relative)
    {
        var plot = NewPlot(
            $"Mean client accuracy per round ({report.Setting}; {clients} clients, α = {SweepReport.F(alpha)})",
            "Communication round (0: zero-shot)", "Mean client test accuracy (%)");
        int maxRound = 1;
        var zeroShot = report.Curve(clients, alpha, Simulation.MethodCatalog.ZeroShot);
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
            if (zeroShot.Count > 0 && curve[0].Round > 0) curve = [zeroShot[0], .. curve];
            double[] xs = curve.Select(c => (double)c.Round).ToArray(),
                ys = curve.Select(c => c.Accuracy.Mean).ToArray();
            maxRound = Math.Max(maxRound, curve[^1].Round);
            if (curve.All(c => c.Accuracy.Std is not null))
            {
                var band = plot.Add.FillY(xs, curve.Select(c => c.Accuracy.Mean - c.Accuracy.Std!.Value).ToArray(),
                    curve.Select(c => c.Accuracy.Mean + c.Accuracy.Std!.Value).ToArray());
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
        plot.Axes.SetLimitsX(-0.3, maxRound + 0.3);
        PercentAxis(plot);
        return Save(plot, $"accuracy-vs-round_{Tag(clients, alpha)}.png", out relative);
    }

    /// <summary>Final mean client accuracy against alpha (log axis), one line per method with ± std error
    /// bars.</summary>
    public string AccuracyVsAlpha(int clients, out string relative)
    {
        var plot = NewPlot($"Final mean client accuracy against α ({report.Setting}; {clients} clients)",
            "Dirichlet concentration α (log scale; smaller = more heterogeneous)",
            "Final mean client test accuracy (%)");
        foreach (var m in report.Methods)
        {
            var points = report.Alphas.Select(a => (a, v: report.Final(clients, a, m, "mean")))
                .Where(p => p.v is not null).ToArray();
            if (points.Length == 0) continue;
            double[] xs = points.Select(p => Math.Log10(p.a)).ToArray(),
                ys = points.Select(p => p.v!.Value.Mean).ToArray();
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
        plot.Axes.Bottom.SetTicks(report.Alphas.Select(Math.Log10).ToArray(),
            report.Alphas.Select(SweepReport.F).ToArray());
        double lo = Math.Log10(report.Alphas[0]), hi = Math.Log10(report.Alphas[^1]),
            pad = Math.Max(0.1, (hi - lo) * 0.06);
        plot.Axes.SetLimitsX(lo - pad, hi + pad);
        PercentAxis(plot);
        return Save(plot, $"accuracy-vs-alpha_clients-{clients}.png", out relative);
    }

    /// <summary>
    /// Mean client accuracy against the largest client epsilon after each round
    /// (<see cref="SweepReport.PrivacyCurve"/>), one line per method; null when no round has a finite epsilon (runs
    /// without <c>dp</c>, or sigma 0).
    /// </summary>
    public string? AccuracyVsEpsilon(int clients, double alpha, out string relative)
    {
        relative = "";
        var curves = report.Methods.Select(m => (m, curve: report.PrivacyCurve(clients, alpha, m)
            .Where(c => double.IsFinite(c.Epsilon.Mean)).ToArray())).Where(x => x.curve.Length > 0).ToArray();
        if (curves.Length == 0) return null;
        var plot = NewPlot(
            $"Mean client accuracy against ε ({report.Setting}; {clients} clients, α = {SweepReport.F(alpha)})",
            "ε spent by the most exposed client (after each round)", "Mean client test accuracy (%)");
        foreach (var (m, curve) in curves)
        {
            var s = plot.Add.Scatter(curve.Select(c => c.Epsilon.Mean).ToArray(),
                curve.Select(c => c.Accuracy.Mean).ToArray(), ColorOf(m));
            s.LineWidth = 2;
            s.MarkerSize = 9;
            s.MarkerShape = ShapeOf(m);
            s.LegendText = m;
        }
        PercentAxis(plot);
        return Save(plot, $"accuracy-vs-epsilon_{Tag(clients, alpha)}.png", out relative);
    }

    /// <summary>Final accuracy of each client, bars grouped by client, one colour per method (± std over
    /// seeds).</summary>
    public string ClientBars(int clients, double alpha, out string relative)
    {
        var plot = NewPlot(
            $"Final accuracy per client ({report.Setting}; {clients} clients, α = {SweepReport.F(alpha)})",
            "Client", "Final test accuracy (%)");
        var methods = report.Methods.Where(m => report.Final(clients, alpha, m, "mean") is not null).ToArray();
        double width = 0.8 / methods.Length;
        var bars = new List<Bar>();
        for (int i = 0; i < methods.Length; i++)
        {
            for (int k = 0; k < clients; k++)
                if (report.Final(clients, alpha, methods[i], k.ToString(CultureInfo.InvariantCulture)) is { } v)
                    bars.Add(new Bar
                    {
                        Position = k - 0.4 + width * (i + 0.5), Value = v.Mean, Error = v.Std ?? 0,
                        ErrorSize = width * 0.4, Size = width * 0.9, FillColor = ColorOf(methods[i]), LineWidth = 1.2f,
                        LineColor = Colors.Black.WithAlpha(0.7)
                    });
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[i], FillColor = ColorOf(methods[i]) });
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, clients).Select(k => (double)k).ToArray(),
            Enumerable.Range(0, clients).Select(k => $"Client {k}").ToArray());
        plot.Axes.SetLimitsX(-0.5, clients - 0.5);
        PercentAxis(plot);
        return Save(plot, $"client-accuracy_{Tag(clients, alpha)}.png", out relative);
    }

    /// <summary>
    /// What one client uploads in a round it takes part in, per method (linear axis): model parameters and Fisher
    /// values stacked apart, the bytes of both on top; null if no method uploads.
    /// </summary>
    public string? UploadsPerRound(out string relative)
    {
        relative = "";
        var methods = report.Methods.Select(m => (m, u: report.UploadPerRound(m))).Where(x => x.u is not null)
            .ToArray();
        if (methods.Length == 0) return null;
        var plot = NewPlot($"Uploaded by one client per round ({report.Setting})", "Method",
            "Values uploaded per client per round");
        Color parameters = Palette.GetColor(0).WithAlpha(0.85), fisher = Palette.GetColor(1).WithAlpha(0.85);
        var bars = new List<Bar>();
        for (int i = 0; i < methods.Length; i++)
        {
            var (p, f, bytes) = methods[i].u!.Value;
            bars.Add(new Bar { Position = i, Value = p, FillColor = parameters, LineWidth = 0, Size = 0.6 });
            bars.Add(new Bar
            {
                Position = i, ValueBase = p, Value = p + f, FillColor = fisher, LineWidth = 0, Size = 0.6,
                Label = SweepReport.Bytes(bytes),
            });
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 14;
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "model parameters", FillColor = parameters });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "Fisher values", FillColor = fisher });
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, methods.Length).Select(i => (double)i).ToArray(),
            methods.Select(x => x.m).ToArray());
        plot.Axes.Left.TickGenerator = new NumericAutomatic
        {
            LabelFormatter = y => y.ToString("N0", CultureInfo.InvariantCulture),
        };
        plot.Axes.SetLimitsX(-0.5, methods.Length - 0.5);
        plot.Axes.SetLimitsY(0, methods.Max(x => x.u!.Value.Parameters + x.u!.Value.Fisher) * 1.15);
        return Save(plot, "uploads-per-round.png", out relative);
    }
}
