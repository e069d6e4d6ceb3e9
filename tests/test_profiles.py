"""Optimizer performance profiles (issue 30, item 2): the profiles of a constructed runs
table with a known answer, the bootstrap band over seeds, and `dnnbench profiles DIR`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.analysis.profiles import (
    ProfileError,
    folder_profiles,
    performance_profiles,
    problems_of,
)
from dnnbench.cli import app
from dnnbench.report.profiles import profile_figure, profiles_section

runner = CliRunner()
SEEDS = 5
BUDGET = 350
NEVER = None  # a cell whose runs never reach the target
# (depth, optimizer) -> steps to target of every seed at the tuned rate. Ratios to the
# fastest of each depth: depth 1: sgd 1, adam 1, momentum 2; depth 2: sgd 3, adam 1,
# momentum never (3 of 5 seeds diverge, 2 reach at 120: the KM median is never reached);
# depth 3: sgd 1.5, momentum 1, adam absent.
TUNED = {(1, "sgd"): 100, (1, "adam"): 100, (1, "momentum"): 200,
         (2, "sgd"): 300, (2, "adam"): 100, (2, "momentum"): "diverging",
         (3, "sgd"): 150, (3, "momentum"): 100}
# the same optimizers at their default rate: momentum the fastest everywhere (only counted
# by a profile that does not keep the tuned rows)
DEFAULT = {(d, o): 10 if o == "momentum" else 300 for d in (1, 2, 3)
           for o in ("sgd", "adam", "momentum") if (d, o) != (3, "adam")}
EXPECTED = {  # optimizer -> (problems, rho at tau 1, 1.5, 2, 4, score, median ratio)
    "sgd": (3, [1 / 3, 2 / 3, 2 / 3, 1.0], (3 + 1 + 2.5) / 9, 1.5),
    "adam": (2, [1.0, 1.0, 1.0, 1.0], 1.0, 1.0),
    "momentum": (3, [1 / 3, 1 / 3, 2 / 3, 2 / 3], (2 + 0 + 3) / 9, 2.0),
}
GRID = """
name = "opt-grid"
dataset = "synthetic"
[base]
width = 8
max_steps = 350
target = 0.5
stop_at_target = false
[factors]
depth = [1, 2, 3]
optimizer = ["sgd", "adam", "momentum"]
lr_source = ["default", "tuned"]
[tune]
learning_rate = [0.01, 0.1]
"""


def runs_table(tuned=TUNED, default=DEFAULT, jitter: int = 0, seed: int = 0) -> pd.DataFrame:
    """The runs of both lr_sources; ``jitter``: each seed's steps move by up to that many
    steps (the medians stay near the hand-set values)."""
    rng = np.random.default_rng(seed)
    rows = []
    for source, cells in (("tuned", tuned), ("default", default)):
        for (depth, opt), steps in cells.items():
            for s in range(SEEDS):
                row = {"experiment": "opt-grid", "dataset": "synthetic",
                       "arm": f"depth={depth},optimizer={opt},lr_source={source}",
                       "depth": depth, "optimizer": opt, "lr_source": source,
                       "learning_rate": 0.1 if source == "tuned" else 0.01, "target": 0.5,
                       "seed": s, "max_steps": BUDGET, "steps_done": BUDGET,
                       "diverged": False}
                if steps == "diverging":
                    reached = s >= 3
                    row |= {"reached": reached, "steps_to_target": 120 if reached else None,
                            "diverged": not reached, "steps_done": BUDGET if reached else 30}
                elif steps is NEVER:
                    row |= {"reached": False, "steps_to_target": None}
                else:
                    t = steps + (int(rng.integers(-jitter, jitter + 1)) if jitter else 0)
                    row |= {"reached": True, "steps_to_target": t}
                rows.append(row)
    return pd.DataFrame(rows)


def profiles_of(runs: pd.DataFrame, **kwargs):
    problems, why = problems_of(runs, "opt-grid", "synthetic", ["depth", "optimizer",
                                                                 "lr_source"])
    assert why is None
    return performance_profiles(problems, **kwargs)


def test_the_profiles_of_a_constructed_table_are_the_known_ones():
    p = profiles_of(runs_table())
    assert [q.label for q in p.problems] == [f"opt-grid on synthetic (depth={d})"
                                             for d in (1, 2, 3)]
    assert p.optimizers == ["sgd", "adam", "momentum"]
    assert p.problems[1].medians["momentum"] == math.inf  # 2 of 5 reached: no median
    assert p.problems[1].ratios == {"sgd": 3.0, "adam": 1.0, "momentum": math.inf}
    assert "adam" not in p.problems[2].medians  # absent there: not in its denominator
    table = p.table().set_index("optimizer")
    for opt, (n, rhos, score, median_ratio) in EXPECTED.items():
        assert table.loc[opt, "problems"] == p.n_problems(opt) == n
        got = [table.loc[opt, f"rho@{t:g}"] for t in (1, 1.5, 2, 4)]
        assert got == pytest.approx(rhos, abs=1e-12), opt
        assert table.loc[opt, "score"] == pytest.approx(score, abs=1e-12), opt
        assert table.loc[opt, "median_ratio"] == median_ratio
        # the curve on the grid is the same step function
        for tau, rho in zip((1.0, 1.5, 2.0, 4.0), rhos, strict=True):
            i = np.searchsorted(p.taus, tau, side="right") - 1
            assert p.rho[opt][i] == pytest.approx(rho, abs=1e-12), (opt, tau)
    # just below a ratio the fraction is lower: 1.5 is sgd's ratio at depth 3
    assert p.at("sgd", 1.49)[0] == pytest.approx(1 / 3)


def test_seeds_that_agree_give_bands_that_collapse_onto_the_profile():
    tuned = {**TUNED, (2, "momentum"): NEVER}  # every cell's seeds alike
    p = profiles_of(runs_table(tuned))
    for o in p.optimizers:
        assert np.array_equal(p.low[o], p.rho[o]) and np.array_equal(p.high[o], p.rho[o]), o
        est, low, high = p.score(o)
        assert low == est == high
    assert p.table().set_index("optimizer").loc["momentum", "rho@4"] == pytest.approx(2 / 3)


def test_the_band_over_seeds_holds_the_profile_and_is_reproducible():
    runs = runs_table(jitter=20, seed=3)
    p = profiles_of(runs, n_resamples=400, seed=7)
    widths = 0.0
    for o in p.optimizers:
        assert np.all(p.low[o] <= p.rho[o] + 1e-12) and np.all(p.rho[o] <= p.high[o] + 1e-12)
        est, low, high = p.score(o)
        assert low <= est <= high
        widths += float(np.sum(p.high[o] - p.low[o]))
    assert widths > 0  # seeds that differ give bands
    # depth 2: momentum's 2 reached seeds of 5 become 3+ in some resamples: its band at
    # tau = 1.2 (120 / adam's ~100) reaches above 1/3... while its point value stays 1/3
    rho, low, high = p.at("momentum", 1.5)
    assert low <= rho <= high and high > rho
    again = profiles_of(runs, n_resamples=400, seed=7)
    assert all(np.array_equal(p.low[o], again.low[o]) for o in p.optimizers)


def test_only_tuned_rows_count_and_unequal_settings_give_no_problem():
    runs = runs_table()
    tuned_only = profiles_of(runs[runs["lr_source"] == "tuned"]).table()
    pd.testing.assert_frame_equal(profiles_of(runs).table(), tuned_only)
    # the default rows, were they the tuned ones, make momentum the fastest everywhere
    swapped = runs.assign(lr_source=runs["lr_source"].map({"tuned": "default",
                                                            "default": "tuned"}))
    assert profiles_of(swapped).table().set_index("optimizer").loc["momentum", "rho@1"] == 1
    # a result set whose optimizer changes only with a named level of another factor
    runs = runs_table()
    runs = runs[runs["depth"] != 3].assign(config=lambda d: d["optimizer"] + "-cfg")
    problems, why = problems_of(runs, "x", "synthetic", ["depth", "config"])
    assert problems == [] and "no level of depth, config holds two optimizers" in why
    problems, why = problems_of(runs.assign(lr_source="default"), "x", "synthetic", ["depth"])
    assert problems == [] and "tuned" in why
    problems, why = problems_of(runs.assign(target=0.0), "x", "synthetic", ["depth"])
    assert problems == [] and "no target" in why
    with pytest.raises(ProfileError):
        performance_profiles([])


def test_a_wrong_denominator_or_censoring_would_be_caught():
    """The known answer tells the right computation from plausible wrong ones."""
    p = profiles_of(runs_table())
    table = p.table().set_index("optimizer")
    # counting a problem an optimizer is absent from: adam's rho would be 2/3
    assert table.loc["adam", "rho@1"] == 1.0
    # dropping the diverged runs of momentum at depth 2 (2 of 2 reached at 120): ratio 1.2
    # and rho(1.5) = 2/3; censoring them as reached at the budget (350 / 100 = 3.5): rho(4) = 1
    assert table.loc["momentum", "rho@1.5"] == pytest.approx(1 / 3)
    assert table.loc["momentum", "rho@4"] == pytest.approx(2 / 3)


def test_the_figure_has_a_line_and_a_band_per_optimizer():
    p = profiles_of(runs_table(jitter=20))
    fig = profile_figure(p)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.lines]
    assert [label.split(" ")[0] for label in labels] == ["sgd", "adam", "momentum"]
    assert labels[1].startswith("adam (2, score")
    assert ax.get_xscale() == "log" and ax.get_xlim() == (1.0, 4.0)
    assert len(ax.collections) == 3
    assert "3 problems from 1 result set" in fig._suptitle.get_text()


def write_result_set(folder: Path, runs: pd.DataFrame, doc: dict | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / "opt-grid-synthetic"
    runs.to_csv(f"{stem}-runs.csv", index=False)
    meta = {"schema_version": 1, "experiment": "opt-grid", "dataset": {"name": "synthetic"},
            **({"experiment_definition": json.dumps(doc)} if doc else {})}
    Path(f"{stem}-meta.json").write_text(json.dumps(meta))


def grid_doc(tmp_path: Path) -> dict:
    from dnnbench import definition

    path = tmp_path / "opt-grid.toml"
    path.write_text(GRID)
    return definition.to_doc(definition.load(str(path)))


def test_the_command_prints_the_table_json_and_writes_the_figure(tmp_path):
    write_result_set(tmp_path / "r" / "sub", runs_table(), grid_doc(tmp_path))
    folder = folder_profiles(tmp_path / "r")  # found recursively, split by depth
    assert len(folder.problems) == 3
    res = runner.invoke(app, ["profiles", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "Optimizer performance profiles over 3 problems from 1 result set" in text
    assert "│ momentum │ 3 │ 0.33 [0.33, 0.33] │" in text
    res = runner.invoke(app, ["profiles", str(tmp_path / "r"), "--json", "--out",
                              str(tmp_path / "o"), "--tau-max", "10"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "dnnbench-profiles" and doc["schema_version"] == 1
    assert doc["tau_max"] == 10 and doc["resamples"] == 1000
    adam = next(o for o in doc["optimizers"] if o["optimizer"] == "adam")
    assert adam["problems"] == 2 and adam["rho"][0] == {"tau": 1.0, "rho": 1.0, "low": 1.0,
                                                        "high": 1.0}
    assert doc["problems"][1]["levels"] == {"depth": 2}
    assert doc["problems"][1]["optimizers"]["momentum"] == {
        "seeds": 5, "reached": 2, "median_steps": None, "ratio": None}
    for name in ("performance-profiles.png", "performance-profiles.svg",
                 "performance-profiles.csv", "performance-profiles-problems.csv",
                 "performance-profiles-curves.csv"):
        assert (tmp_path / "o" / name).is_file(), name
    assert sorted(doc["files"]) == sorted(str(p) for p in (tmp_path / "o").iterdir())
    written = pd.read_csv(tmp_path / "o" / "performance-profiles.csv")
    assert list(written["optimizer"]) == ["sgd", "adam", "momentum"]
    # the report's section: the same table, and none where nothing varies the optimizer
    section = profiles_section(tmp_path / "r", render_figures=False)
    table = section.tables[0].df.set_index("optimizer")
    assert table.loc["momentum", "rho at tau = 1"] == "0.33 [0.33, 0.33]"
    assert table.loc["adam", "problems"] == "2"
    (tmp_path / "none").mkdir()
    assert profiles_section(tmp_path / "none") is None


def test_a_folder_without_an_optimizer_comparison_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        res = runner.invoke(app, ["profiles", str(folder)])
        assert res.exit_code == 2, res.output
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("Error: "), res.stderr
    one = runs_table()
    write_result_set(tmp_path / "one", one[one["optimizer"] == "sgd"], grid_doc(tmp_path))
    res = runner.invoke(app, ["profiles", str(tmp_path / "one")])
    assert res.exit_code == 2 and "no result set compares two or more optimizers" in res.stderr
    res = runner.invoke(app, ["profiles", str(tmp_path / "one"), "--tau-max", "1"])
    assert res.exit_code == 2 and "--tau-max must be" in res.stderr
