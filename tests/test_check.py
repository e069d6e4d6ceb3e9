"""`dnnbench check`: the gate's statistics on constructed runs tables, profiles, the command."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from dnnbench.check import (
    IncompatibleRuns,
    ProfileError,
    Thresholds,
    compare_runs,
    github_action_benchmark,
    load_profile_data,
    load_profiles,
    report_json,
    run_profile,
)
from dnnbench.check.baseline import BASELINE_SCHEMA, BASELINE_VERSION, meta_path
from dnnbench.check.compare import resampled_km_medians
from dnnbench.check.profiles import parse_profile
from dnnbench.cli import app
from dnnbench.stats import km_median

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
ARMS = {"act=relu,depth=1,bn=off": (120.0, 0.944), "opt=sgd,lr=0.1,depth=2": (125.0, 0.938)}


def make_runs(seeds, *, steps_factor=1.0, acc_shift=0.0, arms=ARMS, sd=0.15, budget=300,
              rng_seed=0, step_ms=2.0) -> pd.DataFrame:
    """Runs like the smoke profile's: log-normal steps on an eval grid of 5, budget 300."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for arm, (median, acc) in arms.items():
        for s in seeds:
            t = 5 * math.ceil(median * steps_factor * math.exp(sd * rng.standard_normal()) / 5)
            reached = t <= budget
            rows.append({"profile": "t", "dataset": "digits", "group": "g", "arm": arm,
                         "seed": int(s), "reached": reached,
                         "steps_to_target": t if reached else None, "max_steps": budget,
                         "diverged": False,
                         "final_test_accuracy": acc + acc_shift + 0.008 * rng.standard_normal(),
                         "compile_s": 1.0, "step_ms": step_ms, "eval_ms": 0.5,
                         "spec_hash": "h"})
    df = pd.DataFrame(rows)
    df["steps_to_target"] = df["steps_to_target"].astype("Int64")
    return df


BASE = make_runs(range(128))


def verdicts(report) -> dict[tuple[str, str], str]:
    return {(m.arm, m.metric): m.verdict for m in report.metrics}


# ------------------------------------------------------------------------- the statistics

def test_same_distribution_passes():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), rng_seed=1))
    assert rep.passed and rep.exit_code == 0
    assert set(verdicts(rep).values()) == {"ok"}
    steps = next(m for m in rep.metrics if m.metric == "steps")
    assert 0.85 < steps.effect < 1.15 and steps.low < 1.0 < steps.high
    assert steps.p_regression > 0.5  # nowhere near a 15% slowdown
    assert rep.n_baseline_seeds == 128 and rep.n_current_seeds == 48


def test_thirty_percent_slowdown_is_a_regression():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), steps_factor=1.3, rng_seed=1))
    assert not rep.passed and rep.exit_code == 1
    assert {v for (a, m), v in verdicts(rep).items() if m == "steps"} == {"regression"}
    assert {v for (a, m), v in verdicts(rep).items() if m == "accuracy"} == {"ok"}
    m = rep.regressions[0]
    assert m.effect > 1.15 and m.p_regression < 0.01 and m.low > 1.0


def test_p_value_is_mann_whitney_against_the_minimum_effect():
    cur = make_runs(range(1000, 1048), steps_factor=1.3, rng_seed=1)
    rep = compare_runs(BASE, cur, n_resamples=0)
    arm = next(iter(ARMS))
    c = cur[cur["arm"] == arm]["steps_to_target"].astype(float).to_numpy()
    b = BASE[BASE["arm"] == arm]["steps_to_target"].astype(float).to_numpy()
    ref = stats.mannwhitneyu(c, 1.15 * b, alternative="greater", method="asymptotic").pvalue
    m = next(m for m in rep.metrics if m.arm == arm and m.metric == "steps")
    assert m.p_regression == pytest.approx(ref)
    assert math.isnan(m.low)  # n_resamples=0: no descriptive interval, same verdict


def test_small_real_slowdown_within_tolerance_passes_even_with_many_seeds():
    base = make_runs(range(400), arms={"a": (120.0, 0.95)})
    cur = make_runs(range(1000, 1400), steps_factor=1.07, arms={"a": (120.0, 0.95)},
                    rng_seed=5)
    rep = compare_runs(base, cur)
    m = rep.metrics[0]
    assert m.effect > 1.0 and m.verdict == "ok" and rep.passed


def test_improvement_is_reported_and_passes():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), steps_factor=0.6, acc_shift=0.03,
                                       rng_seed=2))
    assert rep.passed and rep.exit_code == 0
    assert set(verdicts(rep).values()) == {"improvement"}
    assert len(rep.improvements) == 4


def test_accuracy_drop_beyond_one_point_is_a_regression():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), acc_shift=-0.03, rng_seed=3))
    v = verdicts(rep)
    assert {x for (a, m), x in v.items() if m == "accuracy"} == {"regression"}
    assert {x for (a, m), x in v.items() if m == "steps"} == {"ok"}
    acc = next(m for m in rep.metrics if m.metric == "accuracy")
    assert acc.effect == pytest.approx(-0.03, abs=0.005) and acc.high < 0
    # a 0.5-point drop stays within the 1-point tolerance
    assert compare_runs(BASE, make_runs(range(1000, 1048), acc_shift=-0.005, rng_seed=3)).passed


def test_runs_that_never_reach_the_target_count_as_worst_not_imputed():
    cur = make_runs(range(1000, 1048), steps_factor=3.0, rng_seed=4)  # most beyond budget
    assert (~cur["reached"]).mean() > 0.5
    rep = compare_runs(BASE, cur)
    m = next(m for m in rep.metrics if m.metric == "steps")
    assert math.isnan(m.current) and math.isinf(m.effect)  # median not reached
    assert m.verdict == "regression" and m.p_regression < 1e-6
    div = make_runs(range(1000, 1048), rng_seed=1)
    div["diverged"] = True  # diverged runs: censored and accuracy worst
    rep = compare_runs(BASE, div)
    assert set(verdicts(rep).values()) == {"regression"}


def test_wall_time_is_advisory_and_compared_like_with_like():
    cur = make_runs(range(1000, 1048), rng_seed=1, step_ms=4.0)  # twice the baseline's 2 ms
    rep = compare_runs(BASE, cur, n_resamples=0)
    assert rep.passed  # never gated
    w = rep.wall[0]
    assert (w.n_baseline, w.n_current) == (128, 48)
    assert w.ratio == pytest.approx((4.0 / 48) / (2.0 / 128))  # per seed
    wall = {"seeds": 48, "step_ms": {a: 1.0 for a in ARMS}}  # baseline timed at 48 seeds
    w = compare_runs(BASE, cur, n_resamples=0, baseline_wall=wall).wall[0]
    assert w.ratio == pytest.approx(4.0) and w.n_baseline == 48


def test_fast_resampled_km_medians_equal_km_median():
    rng = np.random.default_rng(0)
    t = rng.integers(1, 60, 30).astype(float) * 5
    r = t < 250
    c = np.full(30, 300.0)
    idx = rng.integers(0, 30, (50, 30))
    fast = resampled_km_medians(t, r, c, idx)
    slow = np.array([km_median(t[i], r[i], c[i]).median for i in idx])
    np.testing.assert_array_equal(fast, slow)
    c2 = c.copy()
    c2[~r] = 100.0  # censored before some reach steps: the general (slow) path
    fast = resampled_km_medians(t, r, c2, idx)
    slow = np.array([km_median(t[i], r[i], c2[i]).median for i in idx])
    np.testing.assert_array_equal(fast, slow)


def test_incompatible_tables():
    with pytest.raises(IncompatibleRuns, match="different arms"):
        compare_runs(BASE, make_runs(range(1000, 1010), arms={"other": (1.0, 0.9)}))
    with pytest.raises(IncompatibleRuns, match="fresh seeds"):
        compare_runs(BASE, make_runs(range(120, 130)))
    with pytest.raises(IncompatibleRuns, match="lack columns"):
        compare_runs(BASE, make_runs(range(1000, 1010)).drop(columns=["max_steps"]))


def test_json_reports():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), steps_factor=1.3, rng_seed=1),
                       Thresholds(), n_resamples=200)
    doc = report_json(rep, {"profile": "t"})
    assert doc["exit_code"] == 1 and doc["passed"] is False and doc["profile"] == "t"
    assert len(doc["metrics"]) == 4 and doc["metrics"][0]["verdict"] == "regression"
    json.dumps(doc, allow_nan=False)  # NaN/inf became null
    gha = github_action_benchmark(rep, {"profile": "t"})
    assert {"name", "unit", "value"} <= set(gha[0]) and gha[0]["unit"] == "steps"
    assert gha[0]["value"] == rep.metrics[0].current
    assert any(e["unit"] == "ms" for e in gha) and "regression" in gha[0]["extra"]
    json.dumps(gha, allow_nan=False)


# ------------------------------------------------------------------------------- profiles

def test_committed_profiles_parse():
    profiles = load_profiles(ROOT / "benchmarks" / "regression.toml")
    assert {"smoke", "full"} <= set(profiles)
    smoke = profiles["smoke"]
    assert smoke.dataset == "digits" and len(smoke.arms) == 7
    assert [e.name for e in smoke.experiments] == ["bn-depth", "optimizer-comparison"]
    assert [pa.group for pa in smoke.arms] == ["bn-depth"] * 4 + ["optimizer-comparison"] * 3
    specs = {pa.name: pa.spec for pa in smoke.arms}
    assert all(not s.stop_at_target and s.eval_split == "val" and s.target == 0.9
               and s.batch_size == 32 and s.eval_every == 5 for s in specs.values())
    s = specs["bn-depth/depth=3,bn=on"]  # named as `dnnbench run` names them, prefixed
    assert s.widths == (32,) * 3 and s.norm == "batch" and s.bn_momentum == 0.9
    assert (s.optimizer, s.learning_rate, s.max_steps) == ("adam", 0.003, 300)
    sgd = specs["optimizer-comparison/optimizer=sgd,lr_source=default"]
    assert sgd.widths == (32, 32) and sgd.learning_rate == 0.1  # a named level's own rate
    assert specs["optimizer-comparison/optimizer=rmsprop,lr_source=default"].learning_rate \
        == 0.003
    assert not set(smoke.baseline_seed_list()) & set(smoke.current_seed_list())
    assert len(profiles["full"].arms) == 8 + 9


def test_committed_baseline_matches_the_smoke_profile():
    """The baseline that CI checks against was made by the committed smoke profile (a changed
    profile or experiment file needs a new baseline), holds its arms, and no local paths."""
    from dnnbench.check import check_compatible, read_baseline

    smoke = load_profiles(ROOT / "benchmarks" / "regression.toml")["smoke"]
    path = ROOT / "benchmarks" / "baselines" / "smoke.csv"
    runs, meta = read_baseline(path)
    check_compatible(meta, smoke)
    assert list(runs.groupby("arm", sort=False).size().index) == [a.name for a in smoke.arms]
    assert set(runs.groupby("arm").size()) == {smoke.baseline_seeds}
    assert set(meta["wall"]["step_ms"]) == {a.name for a in smoke.arms}
    for text in (path.read_text(), meta_path(path).read_text()):
        assert str(ROOT) not in text and "/tmp" not in text and "/home/" not in text


# one arm of each of two packaged experiments, trained briefly on synthetic data
TINY = {"dataset": "synthetic", "seeds": 3, "baseline_seeds": 3, "seed_offset": 1000,
        "set": {"batch_size": 32, "eval_every": 5, "eval_split": "val", "target": 0.3},
        "experiments": [
            {"experiment": "bn-depth", "set": {"depth": [1], "width": 16, "bn": "off",
                                               "learning_rate": 0.01, "max_steps": 60}},
            {"experiment": "optimizer-comparison", "set": {"widths": [16], "epochs": 1,
                                                           "optimizer": {"rmsprop": {
                                                               "optimizer": "rmsprop",
                                                               "learning_rate": 0.01}}}}]}
TINY_ARMS = ["bn-depth/depth=1,bn=off", "optimizer-comparison/optimizer=rmsprop,lr_source=default"]


def test_profile_arms_named_as_run_names_them():
    prof = parse_profile("x", TINY)
    assert [a.name for a in prof.arms] == TINY_ARMS
    entry = TINY["experiments"][0]
    one = parse_profile("x", {**{k: v for k, v in TINY.items() if k != "experiments"},
                              "experiment": entry["experiment"],
                              "set": {**TINY["set"], **entry["set"]}})  # one: no prefix
    assert [a.name for a in one.arms] == ["depth=1,bn=off"]
    assert one.arms[0].spec == prof.arms[0].spec
    # the profile's set applies to every experiment, an entry's set on top of it
    both = parse_profile("x", {**TINY, "set": {**TINY["set"], "learning_rate": 0.5}})
    assert [a.spec.learning_rate for a in both.arms] == [0.01, 0.01]
    assert parse_profile("x", TINY).config == prof.config
    assert parse_profile("x", {**TINY, "seeds": 4}).config != prof.config


def _entry(experiment="bn-depth", **set_):
    return [{"experiment": experiment, "set": set_}]


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "unknown key"),
    ({"seed_offset": 1}, "overlaps"),
    ({"experiment": "bn-depth"}, "exclude each other"),
    ({"experiments": None}, "no experiment"),
    ({"experiments": []}, "at least one"),
    ({"experiments": ["bn-depth"]}, "expected a table"),
    ({"experiments": [{"experiment": "bn-depth", "sett": {}}]}, "unknown key"),
    ({"experiments": _entry("nope")}, "unknown experiment"),
    ({"experiments": _entry() + _entry()}, "listed twice"),
    ({"set": {"optimizer": "nope"}}, "unknown value"),
    ({"experiments": _entry(bn=["maybe"])}, "unknown level"),
    ({"experiments": _entry(depth=[3], widths=[8])}, "exceeds"),
    ({"experiments": _entry("optimizer-comparison", max_steps=100)}, "set epochs instead"),
    ({"experiments": _entry("optimizer-comparison", optimizer={"fast": {"learning_rate": -1}})},
     "learning_rate"),
])
def test_bad_profiles(change, message):
    table = {k: v for k, v in {**TINY, **change}.items() if v is not None}
    with pytest.raises(ProfileError, match=message):
        parse_profile("x", table)


# ----------------------------------------------------------------------------- the command

def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers, booleans and lists of them read the same


def tiny_profiles(folder: Path, **changes) -> Path:
    lines = ["[profiles.t]"]
    table = {**TINY, **changes}
    for k, v in table.items():
        if k != "experiments":
            lines.append(f"{k} = {_toml(v)}")
    for entry in table.get("experiments", []):
        lines += ["[[profiles.t.experiments]]"] + [f"{k} = {_toml(v)}" for k, v in entry.items()]
    path = folder / "profiles.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def store(path: Path, runs: pd.DataFrame, *, dataset="digits", profile="t", config=None,
          version=BASELINE_VERSION) -> Path:
    runs.to_csv(path, index=False)
    if config is None:
        config = parse_profile("t", {**TINY, "dataset": "digits"}).config
    meta = {"schema": BASELINE_SCHEMA, "schema_version": version, "profile": profile,
            "profile_config": config,
            "dataset": {"name": dataset, "fingerprint": "x"},
            "seeds": {"offset": 0, "count": 128}, "current_seed_offset": 1000}
    meta_path(path).write_text(json.dumps(meta))
    return path


@pytest.fixture
def setup(tmp_path):
    profiles = tiny_profiles(tmp_path, dataset="digits")
    base = store(tmp_path / "base.csv", BASE)

    def run(current: pd.DataFrame | None, *extra, **kw):
        args = ["check", "--profile", "t", "--profiles", str(profiles), "--baseline", str(base)]
        if current is not None:
            cur = tmp_path / "cur.csv"
            current.to_csv(cur, index=False)
            args += ["--current", str(cur)]
        return runner.invoke(app, args + list(extra))

    return tmp_path, run


def test_cli_pass_regression_improvement(setup):
    tmp_path, run = setup
    res = run(make_runs(range(1000, 1048), rng_seed=1))
    assert res.exit_code == 0, res.output
    assert "PASS" in res.stdout and "regression │" not in res.stdout
    res = run(make_runs(range(1000, 1048), steps_factor=1.4, rng_seed=1),
              "--json", str(tmp_path / "r.json"))
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.stdout and "regression │" in res.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["exit_code"] == 1 and doc["current_seeds"] == {"offset": 1000, "count": 48}
    res = run(make_runs(range(1000, 1048), steps_factor=0.6, rng_seed=1),
              "--json", str(tmp_path / "g.json"), "--json-format", "github-action-benchmark")
    assert res.exit_code == 0, res.output
    assert "improvement" in res.stdout
    gha = json.loads((tmp_path / "g.json").read_text())
    assert isinstance(gha, list) and {e["unit"] for e in gha} >= {"steps", "ms"}


def test_cli_thresholds_can_be_overridden(setup):
    _, run = setup
    cur = make_runs(range(1000, 1048), steps_factor=1.4, rng_seed=1)
    assert run(cur, "--max-steps-ratio", "2.0").exit_code == 0
    assert run(cur, "--max-steps-ratio", "0.5").exit_code == 2


def test_cli_incompatible_baselines_exit_2(setup, tmp_path):
    _, run = setup
    cur = make_runs(range(1000, 1048), rng_seed=1)
    for kwargs, message in (({"dataset": "mnist"}, "data set"),
                            ({"config": {**TINY, "dataset": "digits", "seeds": 4}},
                             "settings differ"),
                            ({"profile": "smoke"}, "profile"),
                            ({"version": 99}, "schema")):
        store(tmp_path / "base.csv", BASE, **kwargs)
        res = run(cur)
        assert res.exit_code == 2, (kwargs, res.output)
        assert "incompatible baseline" in res.output and message in res.output
    store(tmp_path / "base.csv", BASE)
    res = run(make_runs(range(100, 148), rng_seed=1))  # seeds shared with the baseline
    assert res.exit_code == 2 and "fresh seeds" in res.output
    res = run(make_runs(range(1000, 1010), arms={"x": (1.0, 0.9)}))
    assert res.exit_code == 2 and "different arms" in res.output
    res = run(cur.drop(columns=["seed"]))
    assert res.exit_code == 2 and "lack columns" in res.output


def test_cli_usage_errors(setup, tmp_path):
    _, run = setup
    cur = make_runs(range(1000, 1048), rng_seed=1)
    assert run(cur, "--json-format", "xml").exit_code == 2
    assert run(cur, "--alpha", "2").exit_code == 2
    res = runner.invoke(app, ["check", "--profile", "nope", "--profiles",
                              str(tmp_path / "profiles.toml")])
    assert res.exit_code == 2 and "unknown profile" in res.output
    res = runner.invoke(app, ["check", "--profile", "t", "--profiles",
                              str(tmp_path / "profiles.toml"), "--baseline",
                              str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "--update-baseline" in res.output
    res = runner.invoke(app, ["check", "--profiles", str(tmp_path / "none.toml")])
    assert res.exit_code == 2 and "not found" in res.output


def quarter_lr(exp):
    """An injected regression (as benchmarks/gate.py injects them): every learning rate of an
    experiment divided by 4, its base value and its named levels' own."""
    named = {k: {level: {**s, "learning_rate": s["learning_rate"] / 4}
                 if "learning_rate" in s else s for level, s in levels.items()}
             for k, levels in exp.named_levels.items()}
    return dataclasses.replace(exp, named_levels=named, base={
        **exp.base, "learning_rate": exp.base["learning_rate"] / 4})


def test_cli_trains_updates_baseline_checks_and_detects_a_slowdown(tmp_path, data_env):
    """End to end on a tiny profile of two experiments (one arm each, synthetic data, 60
    steps, 16 seeds): a new baseline; a check of the same code passes; a run with a quarter
    of every learning rate fails it (exit 1); an edited profile makes the baseline
    incompatible (exit 2)."""
    profiles = tiny_profiles(tmp_path, seeds=16, baseline_seeds=16)
    args = ["check", "--profile", "t", "--profiles", str(profiles), "--baseline",
            str(tmp_path / "b" / "t.csv")]
    res = runner.invoke(app, args + ["--update-baseline"])
    assert res.exit_code == 0, res.output
    base = pd.read_csv(tmp_path / "b" / "t.csv")
    meta = json.loads((tmp_path / "b" / "t.meta.json").read_text())
    assert list(base["arm"].unique()) == TINY_ARMS
    assert list(base["group"].unique()) == ["bn-depth", "optimizer-comparison"]
    assert list(base["seed"]) == list(range(16)) * 2 and meta["current_seed_offset"] == 1000
    assert (base["eval_split"] == "val").all() and not base["stop_at_target"].any()
    assert list(base["max_steps"].unique()) == [60] and base["reached"].mean() > 0.5
    assert meta["dataset"]["name"] == "synthetic" and meta["profile"] == "t"
    # a step time is measured, or NaN where a short run's time is lost in the noise of a
    # loaded machine (engine: "lost in the noise of the reference calls"), never <= 0
    assert "step_ms" in base and (base["step_ms"].isna() | (base["step_ms"] > 0)).all()
    assert base["reached"].dtype == bool
    assert meta["wall"]["seeds"] == 16 and set(meta["wall"]["step_ms"]) == set(TINY_ARMS)
    res = runner.invoke(app, args + ["--save-current", str(tmp_path / "cur.csv")])
    assert res.exit_code == 0 and "PASS" in res.stdout, res.output
    cur = pd.read_csv(tmp_path / "cur.csv")
    assert list(cur["seed"]) == list(range(1000, 1016)) * 2
    # the saved current run can be compared again without training
    res = runner.invoke(app, args + ["--current", str(tmp_path / "cur.csv")])
    assert res.exit_code == 0, res.output
    # an injected slowdown is a regression
    prof = load_profiles(profiles)["t"]
    slow = run_profile(prof, load_profile_data(prof), prof.current_seed_list(),
                       transform=quarter_lr)
    assert list(slow["arm"].unique()) == TINY_ARMS
    assert set(slow["learning_rate"]) == {0.0025}
    slow.to_csv(tmp_path / "slow.csv", index=False)
    res = runner.invoke(app, args + ["--current", str(tmp_path / "slow.csv"), "--json",
                                     str(tmp_path / "slow.json")])
    assert res.exit_code == 1 and "FAIL" in res.stdout, res.output
    doc = json.loads((tmp_path / "slow.json").read_text())
    assert {m["arm"] for m in doc["metrics"] if m["metric"] == "steps"
            and m["verdict"] == "regression"} == set(TINY_ARMS)
    # a profile edit makes the baseline incompatible
    tiny_profiles(tmp_path, seeds=17, baseline_seeds=16)
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "settings differ" in res.output
    assert "seeds: 16 -> 17" in " ".join(res.output.split())  # the setting named, old -> new


# ------------------------------------------- damaged baselines, p-values, JSON, compare

def no_traceback(res) -> None:
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, \
        res.output


@pytest.mark.parametrize("column, value, message", [
    ("steps_to_target", "abc", "not numbers"),  # refused on reading, as by every reader
    ("steps_to_target", None, "number of steps"),  # reached, but no step: not "not reached"
    ("final_test_accuracy", "", "accuracy in [0, 1]"),  # the accuracy gate must not go off
    ("final_test_accuracy", "high", "not numbers"),
    ("reached", "maybe", "true or false"),
    ("seed", "x", "not numbers"),
    ("max_steps", "", "positive step budget"),
    ("step_ms", "fast", "numbers"),
])
def test_cli_baseline_with_bad_values_is_incompatible(setup, tmp_path, column, value, message):
    _, run = setup
    bad = BASE.astype(object)
    bad[column] = value
    store(tmp_path / "base.csv", bad)
    res = run(make_runs(range(1000, 1048), rng_seed=1))
    assert res.exit_code == 2, res.output
    assert "incompatible baseline" in res.output and message in res.output
    no_traceback(res)


def test_cli_empty_baseline_is_incompatible(setup, tmp_path):
    _, run = setup
    store(tmp_path / "base.csv", BASE.iloc[0:0])
    res = run(make_runs(range(1000, 1048), rng_seed=1))
    assert res.exit_code == 2 and "no rows" in res.output
    no_traceback(res)


@pytest.mark.parametrize("field, value", [
    ("dataset", "digits"), ("profile", 3), ("profile_config", [1]),
    ("current_seed_offset", "abc"), ("seeds", "x"), ("wall", {"seeds": "3", "step_ms": {}}),
])
def test_cli_metadata_with_wrong_types_is_incompatible(setup, tmp_path, field, value):
    _, run = setup
    path = store(tmp_path / "base.csv", BASE)
    meta = json.loads(meta_path(path).read_text())
    meta[field] = value
    meta_path(path).write_text(json.dumps(meta))
    res = run(make_runs(range(1000, 1048), rng_seed=1))
    assert res.exit_code == 2 and "incompatible baseline" in res.output and field in res.output
    no_traceback(res)
    meta_path(path).write_text("[1, 2]")
    res = run(make_runs(range(1000, 1048), rng_seed=1))
    assert res.exit_code == 2 and "JSON object" in res.output


def test_p_values_tell_any_difference_from_the_gate():
    """The gate's p (against the minimum effect) is ~1 for a 7% slowdown within tolerance;
    the two-sided p of any difference sees it."""
    base = make_runs(range(400), arms={"a": (120.0, 0.95)})
    same = compare_runs(base, make_runs(range(1000, 1400), arms={"a": (120.0, 0.95)},
                                        rng_seed=5), n_resamples=0).metrics[0]
    slow = compare_runs(base, make_runs(range(1000, 1400), steps_factor=1.07,
                                        arms={"a": (120.0, 0.95)}, rng_seed=5),
                        n_resamples=0).metrics[0]
    assert slow.verdict == "ok" and slow.p_gate > 0.5
    assert slow.p_difference < 0.01 < same.p_difference
    assert slow.p_gate == slow.p_regression


def test_github_action_benchmark_states_each_entry_in_one_unit():
    rep = compare_runs(BASE, make_runs(range(1000, 1048), acc_shift=-0.03, rng_seed=3),
                       n_resamples=200)
    gha = github_action_benchmark(rep, {"profile": "t"})
    acc = next(m for m in rep.metrics if m.metric == "accuracy")
    err = next(e for e in gha if e["name"] == f"t/{acc.arm}/final test error")
    assert err["unit"] == "%" and err["value"] == pytest.approx(100 * (1 - acc.current))
    # baseline and change in the entry's unit (error %, points of error), not accuracy
    assert f"baseline {100 * (1 - acc.baseline):.4g} %" in err["extra"]
    assert f"change {-100 * acc.effect:+.3g} pt" in err["extra"]
    lo, hi = (float(x) for x in err["range"].split(" %")[0].split(" to "))
    assert lo <= err["value"] <= hi
    steps = next(e for e in gha if e["name"].endswith("steps to target"))
    assert steps["range"].endswith("steps (95% CI)") and " steps; ratio ×" in steps["extra"]
    assert {e["unit"] for e in gha} == {"steps", "%", "ms"}


def write_result(folder: Path, runs: pd.DataFrame, experiment="depth-sweep",
                 dataset="digits", **meta) -> Path:
    """A results file as the experiment commands write it (runs CSV + meta JSON)."""
    from dnnbench.results.io import SCHEMA_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{experiment}-{dataset}-runs.csv"
    runs.to_csv(path, index=False)
    (folder / f"{experiment}-{dataset}-meta.json").write_text(json.dumps(
        {"schema_version": SCHEMA_VERSION, "experiment": experiment, "dataset": {"name": dataset},
         **meta}))
    return path


def test_compare_says_when_a_and_b_were_made_with_other_settings(tmp_path):
    config = {"base": {"learning_rate": 0.01}, "seeds": 48}
    a = write_result(tmp_path / "a", BASE, config=config)
    same = write_result(tmp_path / "b", BASE, config=config)
    res = runner.invoke(app, ["compare", str(a), str(same)])
    assert res.exit_code == 0 and "different settings" not in res.output
    other = write_result(tmp_path / "c", BASE, config={**config, "base": {
        "learning_rate": 0.1}}, quick=True)
    res = runner.invoke(app, ["compare", str(a), str(other)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert "made with different settings" in said
    assert "config.base.learning_rate: 0.01 -> 0.1" in said and "quick: null -> true" in said


def test_compare_command(tmp_path):
    a = write_result(tmp_path / "a", BASE)
    write_result(tmp_path / "b", make_runs(range(48), rng_seed=1))  # same seeds: allowed
    res = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "0 regression(s)" in res.output and "regression │" not in res.stdout
    assert "p any" in res.stdout and "p gate" in res.stdout
    slow = write_result(tmp_path / "c", make_runs(range(48), steps_factor=1.4, rng_seed=1))
    res = runner.invoke(app, ["compare", str(a), str(slow)])
    assert res.exit_code == 0 and "regression │" in res.stdout  # reported, exit 0 unasked
    res = runner.invoke(app, ["compare", str(a), str(slow), "--fail-on-regression"])
    assert res.exit_code == 1 and "2 regression(s)" in res.output
    res = runner.invoke(app, ["compare", str(slow), str(a), "--fail-on-regression"])
    assert res.exit_code == 0 and "improvement │" in res.stdout


@pytest.mark.parametrize("case, message", [
    ("other dataset", "same experiment and data set"),
    ("other arms", "different arms"),
    ("bad values", "not numbers"),  # refused on reading, by every reader alike
    ("missing", "no such file"),
    ("not results", "metadata file"),
])
def test_compare_incompatible_inputs_exit_2(tmp_path, case, message):
    a = write_result(tmp_path / "a", BASE)
    b = {"other dataset": lambda: write_result(tmp_path / "b", BASE, dataset="mnist"),
         "other arms": lambda: write_result(tmp_path / "b", make_runs(
             range(5), arms={"x": (1.0, 0.9)})),
         "bad values": lambda: write_result(tmp_path / "b", BASE.assign(
             steps_to_target="abc")),
         "missing": lambda: tmp_path / "nope",
         "not results": lambda: write_result(tmp_path / "b", BASE).with_name("x.txt"),
         }[case]()
    if case == "not results":
        b.write_text("a,b\n")
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    no_traceback(res)


def test_compare_transfer_results_on_accuracy(tmp_path):
    """No target (the transfer stages): each arm compared on its final test accuracy."""
    rng = np.random.default_rng(0)

    def transfer(shift):
        return pd.DataFrame([{"experiment": "transfer", "arm": f"pair=3v5,stage={stage}",
                              "pair": "3v5", "stage": stage, "seed": s, "target": 0.0,
                              "reached": False, "steps_to_target": None, "max_steps": 120,
                              "final_test_accuracy": acc + (shift if stage == "B-on-A" else 0)
                              + 0.005 * rng.standard_normal(), "diverged": False,
                              "step_ms": 1.0}
                             for stage, acc in (("B", 0.80), ("B-on-A", 0.85))
                             for s in range(20)])

    a = write_result(tmp_path / "a", transfer(0.0), experiment="transfer")
    b = write_result(tmp_path / "b", transfer(-0.05), experiment="transfer")
    res = runner.invoke(app, ["compare", str(a), str(b), "--fail-on-regression"])
    assert res.exit_code == 1, res.output
    assert "pair=3v5,stage=B-on-A" in res.stdout and "│ steps" not in res.stdout
    assert "1 regression(s)" in res.output
    fixtures = ROOT / "tests" / "fixtures" / "results"
    res = runner.invoke(app, ["compare", str(fixtures), str(fixtures)])
    assert res.exit_code == 0 and "B-on-A" in res.stdout and "0 regression(s)" in res.output
