"""Machine-readable output (issue 31): `run --json` (and with --dry-run) and `compare --json`
print one JSON document on stdout, parsed here, instead of the tables."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dnnbench.cli import app

runner = CliRunner()
TINY = """
name = "tiny"
dataset = "synthetic"
reference = { learning_rate = 0.01 }
[base]
widths = [8]
batch_size = 50
max_steps = 40
eval_every = 10
target = 0.5
[factors]
learning_rate = [0.01, 0.1]
[[claims]]
id = "faster"
text = "lr 0.1 ends more accurate"
compare = { learning_rate = 0.1 }
metric = "final_eval_accuracy"
expect = "higher"
"""


def test_run_and_dry_run_and_compare_print_json(tmp_path):
    exp = tmp_path / "tiny.toml"
    exp.write_text(TINY)
    r = runner.invoke(app, ["run", str(exp), "--seeds", "2", "--out", str(tmp_path / "a"),
                            "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the document alone
    assert doc["schema"] == "dnnbench-run" and doc["schema_version"] == 1
    assert doc["experiment"] == "tiny" and doc["dataset"] == "synthetic" and doc["seeds"] == 2
    assert [a["arm"] for a in doc["arms"]] == ["learning_rate=0.01", "learning_rate=0.1"]
    assert 0 <= doc["arms"][1]["final_eval_accuracy"] <= 1 and doc["arms"][1]["n"] == 2
    assert doc["arms"][0]["diff"] is None and isinstance(doc["arms"][1]["diff"], float)
    assert [c["id"] for c in doc["claims"]] == ["faster"]
    assert doc["claims"][0]["verdict"] == "inconclusive"  # 2 seeds: never a verdict
    assert doc["files"]["runs"].endswith("tiny-synthetic-runs.csv")

    r = runner.invoke(app, ["run", str(exp), "--seeds", "3", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    dry = json.loads(r.stdout)
    assert dry["schema"] == "dnnbench-dry-run"
    assert (dry["arms"], dry["seeds"], dry["lanes"], dry["programs"]) == (2, 3, 6, 1)

    runner.invoke(app, ["run", str(exp), "--seeds", "2", "--out", str(tmp_path / "b")])
    r = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert r.exit_code == 0, r.output
    cmp = json.loads(r.stdout)
    assert cmp["schema"] == "dnnbench-compare" and cmp["regressions"] == 0
    (one,) = cmp["comparisons"]
    assert one["experiment"] == "tiny" and one["settings_differ"] is None
    assert {m["arm"] for m in one["metrics"]} >= {"learning_rate=0.01", "learning_rate=0.1"}


def test_the_summary_table_says_what_its_cells_are(tmp_path):
    exp = tmp_path / "tiny.toml"
    exp.write_text(TINY)
    r = runner.invoke(app, ["run", str(exp), "--seeds", "2", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "Kaplan-Meier median steps to 50% val accuracy [95% interval]" in text
    assert "Other metrics: mean over the seeds [95% t interval]" in text
    assert "Reference: learning_rate=0.01; 'vs reference': paired by seed" in text
