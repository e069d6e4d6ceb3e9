"""Repeated, interleaved step timings (issue 27, claim 3): an experiment file's
``timing_rounds`` adds a timing pass after training whose rounds time every program once each,
in alternating order; the runs' step times become the rounds' medians."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.results.resultset import load_results

runner = CliRunner()
TINY = """
name = "tiny"
dataset = "synthetic"
timing_rounds = {rounds}
[base]
widths = [16]
batch_size = 50
max_steps = 60
eval_every = 20
target = 0.5
[factors]
activation = ["relu", "tanh"]
learning_rate = [0.01, 0.1]
"""


def test_timing_rounds_write_an_interleaved_table(tmp_path):
    exp = tmp_path / "tiny.toml"
    exp.write_text(TINY.format(rounds=3))
    out = tmp_path / "o"
    r = runner.invoke(app, ["run", str(exp), "--seeds", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    timing = pd.read_csv(out / "tiny-synthetic-timing.csv")
    runs = pd.read_csv(out / "tiny-synthetic-runs.csv")
    assert len(timing) == 3 * runs["arm"].nunique()  # every arm in every round
    assert sorted(timing["round"].unique()) == [0, 1, 2]
    # two programs (one per activation): their order alternates between the rounds
    first = timing[timing["position"] == 0].groupby("round")["arm"].first()
    assert first[0].startswith("activation=relu") and first[1].startswith("activation=tanh")
    assert (timing["step_ms"] > 0).all()
    med = timing.groupby("arm")["step_ms"].median()
    per_arm = runs.groupby("arm")["step_ms"].first()
    pd.testing.assert_series_equal(per_arm.sort_index(), med.sort_index(), check_names=False)
    meta = json.loads((out / "tiny-synthetic-meta.json").read_text())
    assert meta["timing_rounds"] == 3 and "timing" in meta["files"]
    rs = load_results(out)["tiny", "synthetic"]
    assert rs.timing is not None and len(rs.timing) == len(timing)


def test_bad_timing_rounds_is_one_line(tmp_path):
    exp = tmp_path / "tiny.toml"
    exp.write_text(TINY.format(rounds=-1))
    r = runner.invoke(app, ["run", str(exp), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "timing_rounds must be a whole number from 0 to 50" in r.output


def test_the_depth_sweep_times_in_rounds_unless_told_not_to(tmp_path):
    """bn-depth's timing_rounds (5) apply to full runs; --quick and --timing-rounds 0 skip
    the pass (no timing table), --timing-rounds N sets it."""
    from dnnbench.definition import experiment as files

    assert files.load("bn-depth").timing_rounds == 5
    assert files.quick_variant(files.load("bn-depth")).timing_rounds == 0
    base = ["depth-sweep", "--quick", "--dataset", "digits", "--depths", "1", "--seeds", "2"]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "a" / "depth-sweep-digits-timing.csv").exists()
    r = runner.invoke(app, [*base, "--timing-rounds", "2", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    timing = pd.read_csv(tmp_path / "b" / "depth-sweep-digits-timing.csv")
    assert sorted(timing["round"].unique()) == [0, 1] and timing["arm"].nunique() == 2
