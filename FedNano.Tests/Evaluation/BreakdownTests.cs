using System.Text.Json.Nodes;
using FedNano.Data;
using FedNano.Evaluation;
using NUnit.Framework;

namespace FedNano.Tests.Evaluation;

public class BreakdownTests
{
    static MultimodalSample Sqa(string id, string subject, string grade, bool hint, bool image, int answer = 0) => new()
    {
        Id = id, Question = "q", Choices = ["a", "b", "c"], AnswerIndex = answer,
        Meta = new Dictionary<string, string>
        {
            ["subject"] = subject, ["grade"] = grade,
            ["has_context"] = hint ? "true" : "false", ["has_image"] = image ? "true" : "false",
        },
    };

    [Test]
    public void ScienceQaBreakdownFollowsTheOfficialDefinitions()
    {
        // id, subject, grade, hint, image; predicted index (answer is 0)
        var preds = new[]
        {
            // right: NAT TXT IMG G1-6
            PredictionRecord.ForChoice(Sqa("1", "natural science", "grade2", hint: true, image: true), 0),
            // wrong: NAT IMG G7-12
            PredictionRecord.ForChoice(Sqa("2", "natural science", "grade8", hint: false, image: true), 1),
            // right: SOC NO G1-6
            PredictionRecord.ForChoice(Sqa("3", "social science", "grade6", hint: false, image: false), 0),
            // unparsable: LAN TXT G7-12
            PredictionRecord.ForChoice(Sqa("4", "language science", "grade12", hint: true, image: false), -1),
            // right: LAN NO G7-12
            PredictionRecord.ForChoice(Sqa("5", "language science", "grade7", hint: false, image: false), 0),
        };
        var rows = Breakdowns.ScienceQa(preds).ToDictionary(r => r.Category);
        Assert.That(rows.Keys, Is.EqualTo(new[] { "NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg" }));
        void Check(string cat, int count, int correct)
        {
            Assert.That((rows[cat].Count, rows[cat].Correct), Is.EqualTo((count, correct)), cat);
            Assert.That(rows[cat].Accuracy, Is.EqualTo(100.0 * correct / count).Within(1e-9), cat);
        }
        Check("NAT", 2, 1); Check("SOC", 1, 1); Check("LAN", 2, 1);
        Check("TXT", 2, 1); Check("IMG", 2, 1); Check("NO", 2, 2);
        Check("G1-6", 2, 2); Check("G7-12", 3, 1); Check("Avg", 5, 3);
    }

    [Test]
    public void IconQaBreakdownPerTaskAndSkill()
    {
        MultimodalSample S(string id, string task, string skill) => new()
        {
            Id = id, Question = "q", Choices = task == "fill_in_blank" ? [] : ["a", "b"],
            AnswerIndex = task == "fill_in_blank" ? -1 : 1,
            AnswerText = task == "fill_in_blank" ? "12" : null,
            Meta = new Dictionary<string, string> { ["task"] = task, ["skill"] = skill },
        };
        var preds = new[]
        {
            PredictionRecord.FromGeneration(S("1", "choose_txt", "S2"), "B"),
            PredictionRecord.FromGeneration(S("2", "choose_txt", "G5"), "A"),
            PredictionRecord.FromGeneration(S("3", "choose_img", "S2"), "The answer is B."),
            PredictionRecord.FromGeneration(S("4", "fill_in_blank", "S2"), "12."),
            PredictionRecord.FromGeneration(S("5", "fill_in_blank", "A10"), "13"),
        };
        Assert.That(preds.Select(p => p.Correct), Is.EqualTo(new[] { true, false, true, true, false }));
        var rows = Breakdowns.IconQa(preds).ToDictionary(r => (r.Group, r.Category), r => (r.Count, r.Correct));
        Assert.That(rows[("task", "choose_img")], Is.EqualTo((1, 1)));
        Assert.That(rows[("task", "choose_txt")], Is.EqualTo((2, 1)));
        Assert.That(rows[("task", "fill_in_blank")], Is.EqualTo((2, 1)));
        Assert.That(rows[("skill", "S2")], Is.EqualTo((3, 3)));
        Assert.That(rows[("skill", "G5")], Is.EqualTo((1, 0)));
        Assert.That(rows[("skill", "A10")], Is.EqualTo((1, 0)));
        Assert.That(rows[("all", "Avg")], Is.EqualTo((5, 3)));
    }

    [Test]
    public void LikelihoodScoringPicksTheMostLikelyOption()
    {
        var s = Sqa("1", "natural science", "grade1", false, false, answer: 2);
        var r = PredictionRecord.FromOptionScores(s, [-3f, -1f, -0.5f]);
        Assert.That((r.PredictedIndex, r.PredictedText, r.Correct), Is.EqualTo((2, "C", true)));
    }

    [Test]
    public void EmptyCategoryHasNoAccuracyAndFilesAreWritten()
    {
        var preds = new[] { PredictionRecord.ForChoice(Sqa("7", "natural science", "grade3", false, false), 2) };
        var rows = Breakdowns.ScienceQa(preds);
        Assert.That(rows.Single(r => r.Category == "SOC").Accuracy, Is.NaN);
        string dir = Path.Combine(Path.GetTempPath(), "fednano-eval-" + Guid.NewGuid().ToString("N"));
        try
        {
            Breakdowns.WriteCsv(Path.Combine(dir, "breakdown.csv"), rows);
            var lines = File.ReadAllLines(Path.Combine(dir, "breakdown.csv"));
            Assert.That(lines[0], Is.EqualTo("group,category,count,correct,accuracy_pct"));
            Assert.That(lines, Does.Contain("subject,NAT,1,0,0.00").And.Contain("subject,SOC,0,0,"));
            Breakdowns.WriteResultsJson(Path.Combine(dir, "results.json"), preds);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
            Assert.That((int)json["results"]!["7"]!, Is.EqualTo(2));
            Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(2)); // no temp files left
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
