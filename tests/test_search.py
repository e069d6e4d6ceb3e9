"""Hyper-parameter search ([search] in experiment files): the samplers' distributions, seeded
reproducibility, designs paired point by point, the coarse-to-fine box on constructed
results, importance on a constructed function, the search claims, and a tiny run end to end
(two stages: the first stage's units reused)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from dnnbench import definition
from dnnbench.analysis import search as SA
from dnnbench.analysis.claims import check_claims
from dnnbench.cli import app
from dnnbench.definition import search as S
from dnnbench.run import plan

runner = CliRunner()

BASE = {"name": "tiny-search", "dataset": "digits", "seeds": 2,
        "base": {"widths": [8], "optimizer": "adam", "batch_size": 32, "max_steps": 20,
                 "eval_every": 20, "eval_split": "val", "target": 0.0,
                 "stop_at_target": False}}


def experiment(search: dict, claims=()) -> definition.Experiment:
    return definition.parse({**BASE, "search": search, "claims": list(claims)}, "test.toml")


# ------------------------------------------------------------------------------- samplers

def test_log_uniform_quantiles_and_one_minus_beta():
    u = S.uniforms(0, 1, 0, "learning_rate", 4000)
    lr = np.array([S.Param("log", -4, 0).value(x) for x in u])
    # log10 of the values is uniform on [-4, 0]: its quantiles are the uniform's
    q = np.quantile(np.log10(lr), [0.1, 0.25, 0.5, 0.75, 0.9])
    np.testing.assert_allclose(q, [-3.6, -3.0, -2.0, -1.0, -0.4], atol=0.1)
    assert stats.kstest(np.log10(lr), stats.uniform(-4, 4).cdf).pvalue > 1e-3
    # each decade holds a quarter of the points (uniform sampling: 90% in the top decade)
    counts = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0] / len(lr)
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    beta = np.array([S.Param("one-minus-log", -3, -1).value(x) for x in u])
    assert beta.min() >= 0.9 and beta.max() <= 0.999
    assert stats.kstest(np.log10(1 - beta), stats.uniform(-3, 2).cdf).pvalue > 1e-3
    # as many betas in [0.99, 0.999] as in [0.9, 0.99]; a uniform draw puts 9% there
    assert abs(np.mean(beta > 0.99) - 0.5) < 0.03
    flat = np.array([S.Param("uniform", 0.9, 0.999).value(x) for x in u])
    assert abs(np.mean(flat > 0.99) - 0.009 / 0.099) < 0.03
    # beta increases with u on every scale (designs drawing the same u stay in order)
    assert np.all(np.diff([S.Param("one-minus-log", -3, -1).value(x) for x in (0.1, 0.5,
                                                                               0.9)]) > 0)
    ints = [S.Param("int", 1, 4).value(x) for x in u]
    assert set(ints) == {1, 2, 3, 4} and all(isinstance(i, int) for i in ints)
    np.testing.assert_allclose(np.bincount(ints)[1:] / len(u), 0.25, atol=0.03)
    picks = [S.Param("choice", values=(32, 128)).value(x) for x in u]
    assert abs(picks.count(32) / len(u) - 0.5) < 0.03


SEARCH = {"n": 9, "seed": 3, "repeats": 2,
          "params": {"learning_rate": {"scale": "log", "low": -4, "high": -1},
                     "b1": {"scale": "one-minus-log", "low": -3, "high": -1}},
          "designs": {"random": {}, "grid": {"method": "grid"},
                      "flat": {"params": {"b1": {"scale": "uniform", "low": 0.9,
                                                 "high": 0.999}}}}}


def test_seeded_reproducible_paired_designs_and_shifted_grids():
    a, b = experiment(SEARCH), experiment(SEARCH)
    assert a.search.points == b.search.points
    assert a.named_levels["point"] == b.named_levels["point"]
    other = experiment({**SEARCH, "seed": 4})
    assert [p.values for p in other.search.points] != [p.values for p in a.search.points]
    pts = {(p.design, p.repeat, p.index): p.values for p in a.search.points}
    assert len(pts) == 3 * 2 * 9 and a.n_arms == 54
    for rep in range(2):
        for i in range(9):  # designs of equal n share every parameter's uniform numbers
            r, f = pts[("random", rep, i)], pts[("flat", rep, i)]
            assert r["learning_rate"] == f["learning_rate"] and r["b1"] != f["b1"]
        grid = [pts[("grid", rep, i)] for i in range(9)]
        lrs = sorted({math.log10(p["learning_rate"]) for p in grid})
        assert len(lrs) == 3  # 3 x 3: three levels per parameter, a third of the range apart
        np.testing.assert_allclose(np.diff(lrs), 1.0)
        assert -4 <= lrs[0] < -3
    shifts = [min(math.log10(pts[("grid", r, i)]["learning_rate"]) for i in range(9))
              for r in range(2)]
    assert shifts[0] != shifts[1]  # each repetition shifts its grid
    # the drawn points travel in the recorded definition: the same experiment read back
    again = definition.parse(definition.to_doc(a), "again.toml")
    assert again.search.points == a.search.points and again.factors == a.factors
    # one structure: every point of every design is a lane of one program
    assert len(plan.plan(a, 1000)) == 1


@pytest.mark.parametrize("search, message", [
    ({"params": {"learning_rate": {"scale": "cubic", "low": 0, "high": 1}}}, "scale must be"),
    ({"params": {"b1": {"scale": "one-minus-log", "low": -3, "high": 0}}}, "high < 0"),
    ({"params": {"learning_rate": {"scale": "log", "low": -1, "high": -4}}}, "low <= high"),
    ({"n": 10, "designs": {"g": {"method": "grid"}},
      "params": {"learning_rate": {"scale": "log", "low": -4, "high": 0},
                 "eps": {"scale": "log", "low": -8, "high": -4}}}, r"n = m\^2"),
    ({"params": {"learning_rate": {"scale": "log", "low": -4, "high": 0}}, "nn": 3},
     "unknown key 'nn'"),
    ({"params": {"width": {"scale": "choice", "values": [0, 8]}}}, "width must be in"),
])
def test_bad_search_sections_are_one_line_errors(search, message):
    with pytest.raises(definition.ExperimentError, match=message) as e:
        experiment(search)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------- constructed results

def constructed_runs(exp, outcome, seeds=(0, 1, 2), noise=0.0):
    """Runs of every point and seed with a metric given by ``outcome(values)``."""
    rng = np.random.default_rng(0)
    rows = []
    for p in exp.search.points:
        for seed in seeds:
            y = outcome(p.values) + noise * rng.normal()
            rows.append({"point": p.name, "seed": seed, "final_eval_accuracy": y,
                         "final_test_accuracy": y})
    return pd.DataFrame(rows)


def test_coarse_to_fine_box_around_the_best_points():
    exp = experiment({"n": 40, "stages": 2, "top_k": 4, "margin": 0.05, "fine_n": 20,
                      "params": {"learning_rate": {"scale": "log", "low": -4, "high": 0},
                                 "width": {"scale": "choice", "values": [8, 16, 32]}}})

    def outcome(v):  # best at lr = 1e-2, width 16
        return 1 - (math.log10(v["learning_rate"]) + 2) ** 2 - (v["width"] != 16)
    runs = constructed_runs(exp, outcome)
    fine = SA.refine(exp.search, runs, 2)
    table = SA.point_table(exp.search, runs).sort_values("final_eval_accuracy")
    top = table.tail(4)
    r = np.log10(top["value:learning_rate"])
    (record,) = fine.boxes
    assert record["from"] == list(top.sort_values("final_eval_accuracy",
                                                  ascending=False)["point"])
    assert record["box"]["learning_rate"] == {
        "scale": "log", "low": max(-4, r.min() - 0.05 * 4), "high": min(0, r.max() + 0.05 * 4)}
    assert record["box"]["width"]["values"] == sorted(set(top["value:width"]))
    new = fine.stage_points(2)
    assert len(new) == 20 and all(p.name.startswith("s2-") for p in new)
    box = record["box"]["learning_rate"]
    assert all(box["low"] <= math.log10(p.values["learning_rate"]) <= box["high"]
               for p in new)
    assert {p.values["width"] for p in new} <= set(top["value:width"])
    assert "top_k" in record["rule"]
    # the later stage is a program of its own: the first stage's units stay as they were
    staged = definition.with_search(exp, None, "x", drawn=fine)
    first = [p for p in plan.plan(exp, 1000)]
    both = plan.plan(staged, 1000)
    assert len(both) == len(first) + len({p.values["width"] for p in new})
    assert [a.name for a in both[0].arms] == [a.name for a in first[0].arms]


def test_importance_finds_the_one_parameter_that_matters(monkeypatch):
    monkeypatch.setattr(SA, "IMPORTANCE", {"folds": 3, "n_repeats": 3, "trees": 20})
    x = np.random.default_rng(1).uniform(size=(90, 3))
    y = np.sin(3 * x[:, 0]) + 0.05 * np.random.default_rng(2).normal(size=90)
    imp, r2 = SA.cross_importance(x, y, **SA.IMPORTANCE)
    assert r2 > 0.8 and imp[0] > 0.8 and abs(imp[1]) < 0.05 and abs(imp[2]) < 0.05
    # through an experiment's results: the share of variance with an interval over seeds,
    # and the claims about the search
    exp = experiment({"n": 40, "repeats": 5,
                      "params": {"learning_rate": {"scale": "log", "low": -4, "high": 0},
                                 "eps": {"scale": "log", "low": -8, "high": -4}},
                      "designs": {"random": {}, "grid": {"method": "grid", "n": 36}}},
                     claims=[{"text": "lr first", "test": "importance", "expect": "first",
                              "compare": {"parameter": "learning_rate"}},
                             {"text": "eps first", "test": "importance", "expect": "first",
                              "compare": {"parameter": "eps"}},
                             {"text": "random better", "test": "best", "expect": "higher",
                              "compare": {"design": "random", "against": "grid"}}])

    def outcome(v):
        return -abs(math.log10(v["learning_rate"]) + 2.3)
    runs = constructed_runs(exp, outcome, seeds=range(5), noise=0.01)
    table = SA.importance(exp.search, runs)
    assert list(table["parameter"]) == ["learning_rate", "eps"]
    lr, eps = table.iloc[0], table.iloc[1]
    assert lr["low"] > 0.3 and eps["high"] < 0.05 and lr["seeds"] == 5
    assert (table["low"] >= 0).all() and (table["high"] <= 1).all()  # a share: in [0, 1]
    claims = check_claims(exp, runs).set_index("claim")
    assert claims.loc["lr first", "verdict"] == "supported"
    assert claims.loc["eps first", "verdict"] == "contradicted"
    assert claims.loc["random better", "arms"] == 5  # paired over the repetitions
    few = check_claims(exp, runs[runs["seed"] < 3]).set_index("claim")  # 3 repetitions
    assert few.loc["lr first", "verdict"] == "inconclusive"
    assert "too few seeds" in few.loc["lr first", "effects"]


def test_best_claim_pairs_repetitions():
    exp = experiment(SEARCH, claims=[
        {"text": "flat better", "test": "best", "expect": "higher",
         "compare": {"design": "flat", "against": "random"}}])

    def outcome(v):  # best beta1 is 0.95: uniform sampling in [0.9, 0.999] comes closer
        return -abs(v["b1"] - 0.95) - 0.001 * abs(math.log10(v["learning_rate"]) + 2)
    runs = constructed_runs(exp, outcome)
    best = SA.chosen(exp.search, runs)
    assert len(best) == 6 and set(best["design"]) == {"random", "grid", "flat"}
    (row,) = check_claims(exp, runs).itertuples()
    assert row.arms == 2 and "flat - random" in row.effects


# -------------------------------------------------------------------------- end to end

def test_a_two_stage_search_runs_and_reuses_the_first_stage(tmp_path):
    """The packaged search's quick variant (two stages) with the catalogue contract's
    settings: its programs are the contract's (compiled once per suite)."""
    out = tmp_path / "out"
    args = ["run", "search", "--quick", "--dataset", "digits", "--out", str(out), "--set",
            "max_steps=60", "--set", "eval_every=20", "--set", "target=0.5"]
    r = runner.invoke(app, [*args, "--plot"])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(out / "search-digits-runs.csv")
    assert len(runs) == (24 + 4) * 2 and set(runs["stage"]) == {1, 2}
    assert runs.groupby("stage")["program"].nunique().to_dict() == {1: 1, 2: 1}
    for col in ("point", "design", "repeat", "learning_rate", "b1", "b2", "eps",
                "decay_steps"):
        assert col in runs.columns
    for name in ("outcome-vs-parameters", "best-so-far", "heatmap"):
        assert (out / f"search-digits-{name}.png").exists()
    import json

    meta = json.loads((out / "search-digits-meta.json").read_text())
    assert "top_k" in meta["search_refine_rule"]
    again = definition.parse(json.loads(meta["experiment_definition"]), "meta")
    assert len(again.search.points) == 28 and len(again.search.boxes) == 1
    # the second stage lies in the recorded box around the first stage's best 3 points
    box = again.search.boxes[0]["box"]["learning_rate"]
    fine = runs[runs["stage"] == 2]["learning_rate"]
    assert np.all((np.log10(fine) >= box["low"]) & (np.log10(fine) <= box["high"]))
    # run again: nothing retrained (both stages' units resumed), the same rows
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_csv(out / "search-digits-runs.csv"), runs)
