"""`dnnbench claims`: evaluators and verdicts on constructed result files, and the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.analysis.checker import evaluate_claims, load_claims, packaged_claims
from dnnbench.analysis.evaluators import EVALUATORS, frac_bounds
from dnnbench.analysis.outcomes import CSV_COLUMNS, MissingData
from dnnbench.cli import app
from dnnbench.definition.claims import ClaimsError, parse_claims, read_claims_file
from dnnbench.results.io import content_digest, csv_text
from dnnbench.results.resultset import ResultSet, load_results

SEEDS = list(range(8))
runner = CliRunner()


# ----------------------------------------------------------------------- constructed results

def write_set(folder: Path, experiment: str, runs: pd.DataFrame, dataset: str = "digits",
              meta: dict | None = None, timing: pd.DataFrame | None = None) -> Path:
    """Runs (and interleaved ``timing`` rounds, if given) as the result files of a run."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{experiment}-{dataset}"
    runs.to_csv(f"{stem}-runs.csv", index=False)
    m = {"schema_version": 1, "experiment": experiment, "dataset": {"name": dataset},
         **(meta or {})}
    if timing is not None:
        data = csv_text(timing).encode("utf-8")
        Path(f"{stem}-timing.csv").write_bytes(data)
        m["files"] = {"timing": {"name": f"{stem.name}-timing.csv", "rows": len(timing),
                                 "sha256": content_digest(data)}}
    Path(f"{stem}-meta.json").write_text(json.dumps(m))
    return Path(f"{stem}-runs.csv")


def depth_runs(steps, step_ms=None, max_steps=1000, noise=0.05, seed=0,
               seeds=SEEDS) -> pd.DataFrame:
    """steps: {(activation, depth, bn): median steps or None (never reached)}; per-seed
    multiplicative noise; step_ms: {(activation, depth, bn): ms} (default 1 / 1.3 for BN)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (act, depth, bn), s in steps.items():
        ms = (step_ms or {}).get((act, depth, bn), 1.3 if bn else 1.0)
        for seed_ in seeds:
            t = None if s is None else round(s * math.exp(noise * rng.standard_normal()))
            if t is not None and t > max_steps:
                t = None
            rows.append({
                "experiment": "depth-sweep", "dataset": "digits",
                "arm": f"act={act},depth={depth},bn={'on' if bn else 'off'}", "depth": depth,
                "widths": "32", "activation": act, "init": "he-normal", "bn": "on" if bn else "off",
                "bn_position": "before", "bn_momentum": 0.9, "optimizer": "adam",
                "learning_rate": 0.01, "batch_size": 64, "seed": seed_, "target": 0.9,
                "reached": t is not None, "steps_to_target": t, "max_steps": max_steps,
                "diverged": False, "final_test_accuracy": 0.95, "best_test_accuracy": 0.95,
                "compile_s": 1.0, "step_ms": ms, "eval_ms": 0.1,
                "time_to_target_s": t * ms / 1e3 if t else None, "spec_hash": "x"})
    df = pd.DataFrame(rows)
    df["steps_to_target"] = df["steps_to_target"].astype("Int64")
    return df


def optimizer_runs(steps: dict, acc: dict, noise=0.05, seed=1, max_steps=500) -> pd.DataFrame:
    """Runs of the optimizers at their tuned rates (lr_source "tuned": what the claims test)."""
    rng = np.random.default_rng(seed)
    rows = []
    for opt, s in steps.items():
        for seed_ in SEEDS:
            t = None if s is None else round(s * math.exp(noise * rng.standard_normal()))
            a = acc.get(opt, 0.9) + 0.003 * rng.standard_normal()
            rows.append({
                "experiment": "optimizers", "dataset": "digits", "arm": f"{opt}/tuned",
                "optimizer": opt, "learning_rate": 0.001, "lr_source": "tuned", "depth": 3,
                "widths": "100-100-100", "activation": "relu", "init": "he-normal",
                "batch_size": 32, "epochs": 10, "seed": seed_, "target": 0.9,
                "target_kind": "absolute", "reached": t is not None, "steps_to_target": t,
                "max_steps": max_steps, "diverged": False, "final_val_accuracy": a,
                "best_val_accuracy": a, "final_val_loss": 0.3, "final_test_accuracy": a,
                "compile_s": 1.0, "step_ms": 0.2, "eval_ms": 0.1,
                "time_to_target_s": None, "spec_hash": opt})
    df = pd.DataFrame(rows)
    df["steps_to_target"] = df["steps_to_target"].astype("Int64")
    return df


def transfer_runs(gains: dict, noise=0.01, seed=2, n_seeds=8) -> pd.DataFrame:
    """Runs of `dnnbench transfer` (the common table of the transfer protocol)."""
    rng = np.random.default_rng(seed)
    rows = []
    for pair, gain in gains.items():
        pos, neg = (int(c) for c in pair.split("v"))
        for s in range(n_seeds):
            base = 0.85 + 0.02 * rng.standard_normal()
            for stage, acc in (("A", 0.97), ("B", base),
                               ("B-on-A", base + gain + noise * rng.standard_normal())):
                rows.append({
                    "experiment": "transfer", "dataset": "digits",
                    "arm": f"pair={pair},stage={stage}", "pair": pair, "pos_class": pos,
                    "neg_class": neg, "stage": stage, "train_size": 200,
                    "train_examples": 1000 if stage == "A" else 200, "reuse_layers": 3,
                    "freeze_epochs": 4, "unfreeze_epochs": 16, "unfreeze_lr": 0.001,
                    "epochs_a": 20, "epochs": 20, "learning_rate": 0.001, "seed": s,
                    "reached": False, "steps_to_target": None, "diverged": False,
                    "final_test_accuracy": acc, "final_test_loss": 0.3, "compile_s": 1.0,
                    "step_ms": 0.1, "spec_hash": f"{pair}{stage}"})
    return pd.DataFrame(rows)


def evaluate(tmp_path, ids, claims=None) -> dict[str, object]:
    claims = claims or packaged_claims()
    out = evaluate_claims([c for c in claims if c.id in ids], load_results(tmp_path),
                          results_dir=tmp_path)
    return {r.claim.id: r for r in out}


BN_DEPTHS = {("relu", d, bn): s for d in (1, 3, 5, 7)
             for bn, s in ((False, 100 * (1 + 0.5 * (d - 1))), (True, 80.0))}


# ------------------------------------------------------------------------------ the claims

def test_packaged_claims_cover_the_issue():
    claims = [c for c in packaged_claims() if c.checks[0].evaluator != "experiment_file"
              and c.experiment in ("depth-sweep", "optimizers", "transfer")]
    assert [c.id for c in claims] == [str(i) for i in range(1, 11)]
    assert {c.experiment for c in claims} == {"depth-sweep", "optimizers", "transfer"}
    for c in claims:
        assert c.command.startswith("dnnbench ")
        assert all(ch.evaluator in EVALUATORS for ch in c.checks)
    assert claims[6].checks[1].params["expect"] == "not_more"  # 7: Nesterov vs momentum


def test_packaged_claims_live_in_the_experiment_files_they_belong_to():
    """Claims 1-10 come from the catalogue's files (no claims.toml), as do the timing claims
    of activation-cost and the spread claim of bn-init-scale; a file's evaluator
    claims survive the definition recorded in the metadata, and `dnnbench run` leaves them to
    `dnnbench claims` (they read another schema)."""
    from dnnbench import definition
    from dnnbench.analysis.claims import check_claims

    catalogue = definition.catalogue()
    by_file = {}
    for c in packaged_claims():
        if c.checks[0].evaluator != "experiment_file":
            by_file.setdefault(c.source, []).append(c.id)
    assert by_file == {str(catalogue["bn-depth"]): ["1", "2", "3", "4", "5"],
                       str(catalogue["optimizer-comparison"]): ["6", "7", "8"],
                       str(catalogue["transfer-learning"]): ["9", "10"],
                       str(catalogue["activation-cost"]): ["elu-costs-more",
                                                           "smooth-activations-cost-more"],
                       str(catalogue["bn-init-scale"]): ["bn-less-sensitive-to-init-scale"]}
    exp = definition.load("bn-depth")
    again = definition.parse(definition.to_doc(exp), "recorded")
    assert [c for c in again.claims if c.checks] == [c for c in exp.claims if c.checks]
    checked = check_claims(exp, pd.DataFrame(columns=["arm", "seed", *exp.factors]))
    assert list(checked["id"]) == [c.id for c in exp.claims if not c.checks]


GRID_FILE = """
name = "lr-pair"
dataset = "digits"
reference = { learning_rate = 0.001 }
[base]
widths = [8]
max_steps = 100
[factors]
learning_rate = [0.001, 0.01, 0.1]
[[claims]]
id = "fast"
text = "a larger rate needs fewer steps"
compare = { learning_rate = 0.01 }
metric = "steps_to_target"
expect = "fewer"
[[claims]]
id = "best"
text = "the largest rate ends more accurate"
compare = { learning_rate = 0.1 }
metric = "final_eval_accuracy"
expect = "higher"
"""


def test_plain_claims_of_an_experiment_file_are_checked_on_its_results(tmp_path):
    """`dnnbench claims` checks a file's plain claims (compare ... expect) as `dnnbench run`
    does, on results that record the experiment's definition (constructed runs here)."""
    from dnnbench import definition

    path = tmp_path / "lr-pair.toml"
    path.write_text(GRID_FILE)
    exp = definition.load(str(path))
    rows = []
    for lr, steps, acc in ((0.001, 80, 0.90), (0.01, 40, 0.90), (0.1, 20, 0.80)):
        for seed in range(6):
            rows.append({"experiment": "lr-pair", "dataset": "digits",
                         "arm": f"learning_rate={lr:g}", "learning_rate": lr, "seed": seed,
                         "reached": True, "steps_to_target": steps + seed % 3,
                         "steps_done": steps + seed % 3, "diverged": False,
                         "final_eval_accuracy": acc + 0.001 * seed})
    write_set(tmp_path / "r", "lr-pair", pd.DataFrame(rows), meta={
        "experiment_definition": json.dumps(definition.to_doc(exp))})
    claims = tmp_path / "c.toml"
    claims.write_text("".join(
        f'[[claim]]\nid = "{i}"\ntext = "t"\nexperiment = "lr-pair"\n'
        f'command = "dnnbench run {path}"\n[[claim.check]]\nevaluator = "experiment_file"\n'
        f'file = "{path}"\nclaim = "{i}"\n' for i in ("fast", "best")))
    out = {r.claim.id: r for r in evaluate_claims(read_claims_file(claims),
                                                  load_results(tmp_path / "r"))}
    assert out["fast"].verdict == "supported" and out["fast"].outcome.n == 6
    assert "learning_rate=0.01: x0.5" in out["fast"].row()["evidence"]
    assert out["fast"].row()["effect_text"].startswith("0.5")  # the one comparison's ratio
    assert out["best"].verdict == "contradicted"  # 0.80 < 0.90 in every seed
    write_set(tmp_path / "old", "lr-pair", pd.DataFrame(rows))  # no recorded definition
    old = evaluate_claims(read_claims_file(claims), load_results(tmp_path / "old"))
    assert {r.verdict for r in old} == {"not run"}
    # `dnnbench claims DIR` finds them by itself: a user's experiment's claims, from the
    # definition its results record (no claims file, no packaged file)
    res = runner.invoke(app, ["claims", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "r" / "claims.csv").set_index("claim_id")
    assert rows.loc["fast", "verdict"] == "supported" and rows.loc["best", "verdict"] == (
        "contradicted") and rows.loc["fast", "experiment"] == "lr-pair"
    # a claim on a metric the runs lack (measured since they were made): "not run", with why
    import dataclasses

    from dnnbench.analysis.claims import check_claims

    sparse = dataclasses.replace(exp.claims[1], metric="kernel_sparsity")
    runs = next(iter(load_results(tmp_path / "r").values())).runs
    row = check_claims(dataclasses.replace(exp, claims=(sparse,)), runs).iloc[0]
    assert row["verdict"] == "not tested" and "no kernel_sparsity" in row["effects"]


def rounds_of(runs: pd.DataFrame, rounds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Interleaved timing rounds of the runs' arms: each arm's step_ms times the load of the
    round (shared by the arms of one round) and a little noise of its own."""
    rng = np.random.default_rng(seed)
    per_arm = runs.groupby("arm", sort=False)["step_ms"].first()
    rows = []
    for r in range(rounds):
        load = math.exp(rng.normal(0, 0.3))
        rows += [{"arm": a, "round": r, "position": i, "eval_ms": 0.1,
                  "step_ms": ms * load * math.exp(rng.normal(0, 0.02))}
                 for i, (a, ms) in enumerate(per_arm.items())]
    return pd.DataFrame(rows)


def test_depth_claims_supported(tmp_path):
    runs = depth_runs(BN_DEPTHS)
    write_set(tmp_path, "depth-sweep", runs, timing=rounds_of(runs))
    r = evaluate(tmp_path, {"1", "2", "3", "4"})
    assert {k: v.verdict for k, v in r.items()} == {
        "1": "supported", "2": "supported", "3": "supported", "4": "supported"}
    one = r["1"].outcome
    assert one.effect == pytest.approx(4.0, rel=0.15)  # depth 7 / depth 1 = 400 / 100
    assert one.low > 1 and one.n == len(SEEDS)
    three = r["3"].outcome  # BN / no BN step time per depth, 5 rounds each
    assert three.effect == pytest.approx(1.3, rel=0.05) and three.n == 5
    four = r["4"].outcome  # depths 5 and 7 pooled: BN 80 x 1.3 vs no-BN 300/400 x 1
    assert four.high < 1 and four.n == 2 * len(SEEDS)
    assert r["1"].files == ("depth-sweep-digits-runs.csv",)
    assert r["1"].row()["files"] == "depth-sweep-digits-runs.csv"


def test_depth_claims_contradicted(tmp_path):
    steps = {("relu", d, bn): s for d in (1, 3, 5, 7)
             for bn, s in ((False, 400 / d), (True, 50.0 * d))}  # the folklore reversed
    ms = {k: (0.8 if k[2] else 1.0) for k in steps}  # BN steps cheaper
    runs = depth_runs(steps, ms, max_steps=2000)
    write_set(tmp_path, "depth-sweep", runs, timing=rounds_of(runs))
    r = evaluate(tmp_path, {"1", "2", "3", "4"})
    assert {k: v.verdict for k, v in r.items()} == {
        "1": "contradicted", "2": "contradicted", "3": "contradicted", "4": "contradicted"}
    assert r["1"].outcome.high < 1
    assert r["2"].outcome.low > 1.5  # 350 / 50 = 7, far outside the "flat" band


def test_depth_claims_inconclusive_with_noise(tmp_path):
    steps = {("relu", d, bn): 100.0 for d in (1, 7) for bn in (False, True)}
    write_set(tmp_path, "depth-sweep", depth_runs(steps, noise=0.6, seed=3))
    r = evaluate(tmp_path, {"1", "2"})
    assert r["1"].verdict == "inconclusive"
    o = r["1"].outcome
    assert o.low <= 1 <= (o.high if not math.isnan(o.high) else math.inf)  # spans the null
    assert r["2"].verdict == "inconclusive"  # wide interval: not inside [1/1.5, 1.5]


def test_too_few_seeds_is_never_more_than_inconclusive(tmp_path):
    runs = depth_runs(BN_DEPTHS, seeds=[0, 1, 2])
    write_set(tmp_path, "depth-sweep", runs, timing=rounds_of(runs, rounds=3))
    r = evaluate(tmp_path, {"1", "3"})
    assert r["1"].verdict == "inconclusive"  # a clear 4x effect, but 3 seeds < min_n = 5
    assert r["1"].outcome.low > 1 and "too few" in r["1"].outcome.evidence
    assert r["3"].verdict == "inconclusive"  # a clear 1.3x, but 3 timing rounds < 5
    assert r["3"].outcome.low > 1 and "too few" in r["3"].outcome.evidence


def test_censored_runs_count_without_imputation(tmp_path):
    # No-BN depth 7 never reaches the target: the steps "grow" (sign test and unbounded
    # ratio), although no step count exists for them.
    steps = {("relu", 1, False): 100.0, ("relu", 7, False): None,
             ("relu", 1, True): 80.0, ("relu", 7, True): 85.0}
    write_set(tmp_path, "depth-sweep", depth_runs(steps))
    r = evaluate(tmp_path, {"1"})
    o = r["1"].outcome
    assert r["1"].verdict == "supported"
    assert math.isnan(o.effect)  # the deep median is not reached: no made-up ratio
    assert "0/8" in o.evidence  # reached 0 of 8 at depth 7


def test_sigmoid_gap_supported_even_when_sigmoid_never_reaches(tmp_path):
    steps = {("relu", 3, False): 100.0, ("relu", 3, True): 90.0, ("sigmoid", 3, True): 110.0,
             ("sigmoid", 3, False): None}  # censored at the 1000-step budget
    write_set(tmp_path, "depth-sweep", depth_runs(steps))
    o = evaluate(tmp_path, {"5"})["5"]
    assert o.verdict == "supported", o.outcome.evidence
    assert "not reached" in o.outcome.evidence
    assert o.outcome.low > 0.5


def test_sigmoid_gap_reached_and_contradicted(tmp_path):
    closes = {("relu", 3, False): 100.0, ("sigmoid", 3, False): 600.0,
              ("relu", 3, True): 100.0, ("sigmoid", 3, True): 120.0}
    write_set(tmp_path / "a", "depth-sweep", depth_runs(closes))
    o = evaluate(tmp_path / "a", {"5"})["5"].outcome
    assert o.verdict == "supported"
    assert o.effect == pytest.approx(1 - math.log(1.2) / math.log(6), abs=0.08)
    stays = dict(closes)
    stays["sigmoid", 3, True] = 550.0  # BN leaves the gap open
    write_set(tmp_path / "b", "depth-sweep", depth_runs(stays))
    o = evaluate(tmp_path / "b", {"5"})["5"].outcome
    assert o.verdict == "contradicted"
    assert o.high < 0.5


def test_frac_bounds_interval_arithmetic():
    # f = 1 - u / v; v in [log 4, inf] (sigmoid never reached), u = log 1.2 exactly
    u = np.array([math.log(1.2)])
    lo, hi = frac_bounds(u, u, np.array([math.log(4)]), np.array([math.inf]))
    assert lo[0] == pytest.approx(1 - math.log(1.2) / math.log(4)) and hi[0] == 1.0
    lo, hi = frac_bounds(u, u, np.array([-0.1]), np.array([0.5]))  # gap may be <= 1
    assert lo[0] == -math.inf and hi[0] == math.inf


def test_optimizer_claims(tmp_path):
    steps = {"sgd": 400.0, "momentum": 150.0, "nesterov": 140.0, "adagrad": 120.0,
             "rmsprop": 100.0, "adam": 90.0, "adamax": 110.0, "nadam": 95.0, "adamw": 92.0}
    acc = {"adagrad": 0.86, "adam": 0.90}
    write_set(tmp_path, "optimizers", optimizer_runs(steps, acc))
    r = evaluate(tmp_path, {"6", "7", "8"})
    assert {k: v.verdict for k, v in r.items()} == {
        "6": "supported", "7": "supported", "8": "supported"}
    assert r["8"].outcome.effect == pytest.approx(-4.0, abs=0.5)  # points
    assert r["6"].outcome.high < 1

    steps["adamax"], steps["nesterov"] = 900.0, 300.0  # slower than SGD / than momentum
    acc["adagrad"] = 0.94
    write_set(tmp_path, "optimizers", optimizer_runs(steps, acc))
    r = evaluate(tmp_path, {"6", "7", "8"})
    assert {k: v.verdict for k, v in r.items()} == {
        "6": "contradicted", "7": "contradicted", "8": "contradicted"}
    assert "adamax" in r["6"].outcome.evidence and r["6"].outcome.low > 1


def test_optimizer_claims_not_run_when_an_optimizer_is_missing(tmp_path):
    write_set(tmp_path, "optimizers", optimizer_runs({"sgd": 300.0, "adam": 90.0}, {}))
    r = evaluate(tmp_path, {"6", "8"})
    assert r["6"].verdict == "not run"
    assert "rmsprop" in r["6"].outcome.evidence
    # the command for this data set, writing into the folder being checked
    assert r["6"].outcome.evidence.endswith(
        f"run: dnnbench optimizers --seeds 5 --tune --dataset digits --out {tmp_path}")
    assert r["8"].verdict == "not run"


def test_transfer_claims(tmp_path):
    # ten class pairs: gains of 2 to 5 points, and two with none
    gains = {"3v5": 0.04, "0v1": 0.0, "2v7": 0.03, "1v8": 0.05, "4v9": 0.02, "0v6": 0.0,
             "1v2": 0.03, "5v8": 0.04, "2v3": 0.05, "6v9": 0.02}
    write_set(tmp_path, "transfer", transfer_runs(gains, noise=0.002))
    r = evaluate(tmp_path, {"9", "10"})
    assert r["9"].verdict == "supported"  # default pair of digits is 3v5
    assert r["9"].outcome.effect == pytest.approx(4.0, abs=0.3)
    # one test across the pairs: they differ, and a new pair's gain may be 0 or below
    assert r["10"].verdict == "supported"
    assert r["10"].outcome.n == 10
    assert r["10"].outcome.effect == pytest.approx(2.8, abs=0.3)  # the mean gain over pairs
    assert r["10"].outcome.low <= 0 < r["10"].outcome.high  # a new pair's gain
    assert "prediction interval" in r["10"].outcome.evidence

    positive = {k: 0.04 + 0.001 * i for i, k in enumerate(gains)}  # 4.0 to 4.9 points
    write_set(tmp_path, "transfer", transfer_runs(positive, noise=0.002))
    r = evaluate(tmp_path, {"10"})
    assert r["10"].verdict == "contradicted"  # consistently positive
    assert r["10"].outcome.low > 0
    write_set(tmp_path, "transfer", transfer_runs(dict.fromkeys(gains, 0.01), noise=0.03))
    r = evaluate(tmp_path, {"9", "10"})
    assert r["9"].verdict == "inconclusive"  # +1 point, noise 3 points: CI spans 0
    assert r["9"].outcome.low < 0 < r["9"].outcome.high
    assert r["10"].verdict == "inconclusive"  # the pairs do not differ beyond the noise
    write_set(tmp_path, "transfer", transfer_runs({"3v5": 0.01, "2v7": 0.04, "1v8": 0.02},
                                                  noise=0.002))
    assert evaluate(tmp_path, {"10"})["10"].verdict == "not run"  # 3 pairs: too few


def test_transfer_single_pair_is_not_enough_for_claim_10(tmp_path):
    write_set(tmp_path / "sub", "transfer", transfer_runs({"2v7": 0.02}, noise=0.002),
              dataset="mnist")
    out = evaluate_claims([c for c in packaged_claims() if c.id in ("9", "10")],
                          load_results(tmp_path), results_dir=tmp_path)
    r = {x.claim.id: x for x in out}
    assert r["9"].verdict == "supported"  # the only pair is the one run
    # the packaged command names digits: the suggestion is for mnist and the checked folder
    assert r["10"].verdict == "not run" and r["10"].outcome.evidence.endswith(
        f"run: dnnbench transfer --pairs all --dataset mnist --seeds 20 --out {tmp_path / 'sub'}")


def test_sgd_never_reaching_gives_a_bounded_effect_not_nan(tmp_path):
    steps = {"sgd": None, "momentum": 150.0, "nesterov": 140.0, "adagrad": 120.0,
             "rmsprop": 100.0, "adam": 90.0, "adamax": 110.0, "nadam": 95.0, "adamw": 92.0}
    write_set(tmp_path, "optimizers", optimizer_runs(steps, {}))
    r = evaluate(tmp_path, {"6", "7"})
    assert r["6"].verdict == r["7"].verdict == "supported"
    for cid in ("6", "7"):
        text = r[cid].row()["effect_text"]
        assert "n/a" not in text and " / sgd: < 0." in text and "0/8 reached" in text
        assert "n/a [n/a" not in r[cid].outcome.evidence
    res = runner.invoke(app, ["claims", str(tmp_path)])
    assert res.exit_code == 0 and "n/a [n/a" not in res.stdout


@pytest.mark.parametrize("param, value", [("margin", "'wide'"), ("to_depth", "'7'"),
                                          ("min_n", "2.5"), ("much", "true")])
def test_non_numeric_claim_parameter_exits_2(tmp_path, param, value):
    evaluator = "sigmoid_gap" if param == "much" else "flat_with_depth"
    f = tmp_path / "c.toml"
    f.write_text(f"[[claim]]\nid='x'\ntext='t'\nexperiment='depth-sweep'\ncommand='c'\n"
                 f"[[claim.check]]\nevaluator='{evaluator}'\n{param}={value}\n")
    write_set(tmp_path / "r", "depth-sweep", depth_runs(BN_DEPTHS))
    res = runner.invoke(app, ["claims", str(tmp_path / "r"), "--claims", str(f)])
    assert res.exit_code == 2, res.output
    assert f"{param}: expected" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_missing_experiment_is_not_run_with_its_command(tmp_path):
    out = evaluate_claims(packaged_claims(), load_results(tmp_path), results_dir=tmp_path)
    assert len(out) == len(packaged_claims()) and {r.verdict for r in out} == {"not run"}
    five = next(r for r in out if r.claim.id == "5")
    assert "--activation sigmoid" in five.row()["command"]
    assert "run: dnnbench depth-sweep" in five.outcome.evidence


def test_results_in_subfolders_are_combined(tmp_path):
    relu = {k: v for k, v in BN_DEPTHS.items() if k[1] in (1, 7)}
    sig = {("sigmoid", 7, False): 900.0, ("sigmoid", 7, True): 100.0}  # relu: 400, 80
    write_set(tmp_path / "relu", "depth-sweep", depth_runs(relu))
    write_set(tmp_path / "sigmoid", "depth-sweep", depth_runs(sig))
    sets = load_results(tmp_path)
    assert list(sets) == [("depth-sweep", "digits")]
    assert len(sets["depth-sweep", "digits"].files) == 2
    r = evaluate(tmp_path, {"1", "5"})
    assert r["5"].verdict == "supported" and r["1"].verdict == "supported"


@pytest.mark.parametrize("table, results", [("claims", "results"), ("claim", "experiment")])
def test_user_claims_file_extends_and_overrides(tmp_path, table, results):
    """A claims file spelled as experiment files are ([[claims]], results), or the older way
    ([[claim]], experiment)."""
    f = tmp_path / "mine.toml"
    f.write_text(f'''
[[{table}]]
id = "1"
text = "Without BN, depth 7 needs more than twice the steps of depth 1."
{results} = "depth-sweep"
command = "dnnbench depth-sweep"
[[{table}.check]]
evaluator = "trend_with_depth"
where = {{ bn = "off" }}
from_depth = 1
to_depth = 7
[[{table}]]
id = "bn-fewer"
text = "BN needs fewer steps at depth 7."
{results} = "depth-sweep"
command = "dnnbench depth-sweep"
[[{table}.check]]
evaluator = "group_vs_reference"
where = {{ depth = 7 }}
column = "bn"
group = ["on"]
reference = "off"
''')
    claims = load_claims(f)
    assert [c.id for c in claims][-2:] == ["1", "bn-fewer"]
    assert len(claims) == len(packaged_claims()) + 1
    write_set(tmp_path / "r", "depth-sweep", depth_runs(BN_DEPTHS))
    r = evaluate(tmp_path / "r", {"1", "bn-fewer"}, claims)
    assert r["bn-fewer"].verdict == "supported"
    assert r["1"].claim.source == str(f)


@pytest.mark.parametrize("text, message", [
    ("[[claim]]\nid='x'\ntext='t'\nexperiment='e'\ncommand='c'\n", "needs at least one"),
    (("[[claim]]\nid='x'\ntext='t'\nexperiment='e'\ncommand='c'\n[[claim.check]]\n"
      "evaluator='nope'\n"), "unknown evaluator"),
    (("[[claim]]\nid='x'\ntext='t'\nexperiment='e'\ncommand='c'\n[[claim.check]]\n"
      "evaluator='trend_with_depth'\nbogus=1\n"), "no parameter"),
    (("[[claim]]\nid='x'\ntext='t'\nexperiment='e'\n[[claim.check]]\n"
      "evaluator='trend_with_depth'\n"), "'command'"),
    ("x = 1\n", "no [[claims]]"),
])
def test_bad_claims_are_rejected(text, message):
    import tomllib

    with pytest.raises(ClaimsError, match=message.replace("[", r"\[")):
        parse_claims(tomllib.loads(text), "f.toml")


# -------------------------------------------------------------------------------- the CLI

def test_cli_writes_claims_csv_and_table(tmp_path):
    runs = depth_runs(BN_DEPTHS)
    write_set(tmp_path, "depth-sweep", runs, timing=rounds_of(runs))
    res = runner.invoke(app, ["claims", str(tmp_path)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "claims.csv", dtype={"claim_id": str})
    assert list(df.columns) == CSV_COLUMNS
    assert len(df) == len(packaged_claims())
    got = dict(zip(df["claim_id"], df["verdict"], strict=True))
    assert got["1"] == "supported" and got["6"] == "not run" and got["5"] == "not run"
    assert "4 supported" in res.stdout and "not run" in res.stdout
    assert (df.loc[df["claim_id"] == "1", "n"] == len(SEEDS)).all()


def test_cli_out_folder_and_dataset_filter(tmp_path):
    write_set(tmp_path / "r", "depth-sweep", depth_runs(BN_DEPTHS), dataset="mnist")
    res = runner.invoke(app, ["claims", str(tmp_path / "r"), "--out", str(tmp_path / "o"),
                              "--dataset", "digits"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "o" / "claims.csv")
    assert set(df["verdict"]) == {"not run"}
    assert not (tmp_path / "r" / "claims.csv").exists()


def test_cli_exit_2_for_missing_folder_schema_and_claims_file(tmp_path):
    res = runner.invoke(app, ["claims", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such results folder" in res.output
    p = write_set(tmp_path / "bad", "depth-sweep", depth_runs(BN_DEPTHS))
    meta = p.with_name("depth-sweep-digits-meta.json")
    meta.write_text(json.dumps({"schema_version": 99, "experiment": "depth-sweep",
                                "dataset": {"name": "digits"}}))
    res = runner.invoke(app, ["claims", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "schema version" in res.output
    assert not (tmp_path / "bad" / "claims.csv").exists()  # no partial output
    res = runner.invoke(app, ["claims", str(tmp_path), "--claims", str(tmp_path / "x.toml")])
    assert res.exit_code == 2 and "claims file not found" in res.output
    res = runner.invoke(app, ["claims", str(tmp_path), "--only-file"])
    assert res.exit_code == 2


def test_cli_fail_on_contradicted(tmp_path):
    contradicted = {("relu", d, bn): 100.0 * (8 - d if not bn else 1) for d in (1, 7)
                    for bn in (False, True)}  # no BN: fewer steps with depth
    write_set(tmp_path, "depth-sweep", depth_runs(contradicted))
    res = runner.invoke(app, ["claims", str(tmp_path)])
    assert res.exit_code == 0 and "contradicted" in res.stdout  # reported, exit 0 unasked
    res = runner.invoke(app, ["claims", str(tmp_path), "--fail-on", "contradicted"])
    assert res.exit_code == 1 and "claim(s) contradicted: 1 on digits" in res.output
    assert (tmp_path / "claims.csv").exists()
    write_set(tmp_path, "depth-sweep", depth_runs(BN_DEPTHS))
    res = runner.invoke(app, ["claims", str(tmp_path), "--fail-on", "contradicted"])
    assert res.exit_code == 2 and "holds other claims" in res.output  # never replaced silently
    res = runner.invoke(app, ["claims", str(tmp_path), "--fail-on", "contradicted", "--force"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["claims", str(tmp_path), "--fail-on", "wrong"])
    assert res.exit_code == 2 and "unknown verdict" in res.output


def test_cli_missing_columns_is_a_schema_error(tmp_path):
    write_set(tmp_path, "depth-sweep", depth_runs(BN_DEPTHS).drop(columns=["step_ms"]))
    res = runner.invoke(app, ["claims", str(tmp_path)])
    assert res.exit_code == 2 and "step_ms" in res.output


def test_cli_lists_evaluators():
    res = runner.invoke(app, ["claims", "--list-evaluators"])
    assert res.exit_code == 0
    for name in EVALUATORS:
        assert name in res.stdout


def test_resultset_requires_no_io():
    rs = ResultSet("depth-sweep", "digits", depth_runs(BN_DEPTHS))
    one = next(c for c in packaged_claims() if c.id == "1")
    out = evaluate_claims([one], {("depth-sweep", "digits"): rs})
    assert out[0].verdict == "supported" and out[0].dataset == "digits"


def test_claims_as_json(tmp_path):
    write_set(tmp_path, "optimizers", optimizer_runs({"sgd": 300.0, "adam": 90.0}, {}))
    res = runner.invoke(app, ["claims", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    assert {r["claim_id"] for r in records} >= {"6", "8"}
    assert all(set(r) >= {"verdict", "effect", "low", "high", "n", "evidence"} for r in records)
    assert all(r["effect"] is None or isinstance(r["effect"], float) for r in records)


def test_evaluator_step_claims_apply_the_grid_rule(tmp_path):
    """The claims-file evaluators judge steps only on a grid of <= 1/10 of the reference's
    median steps, as the file claims do: the same clear 4x trend measured every 50 steps
    against a shallowest median of 100 is inconclusive (and says why); every 5, supported."""
    runs = depth_runs(BN_DEPTHS)
    runs["steps_to_target"] = (runs["steps_to_target"] // 50 * 50).astype("Int64")
    write_set(tmp_path, "depth-sweep", runs.assign(eval_every=50))
    r = evaluate(tmp_path, {"1", "2", "4"})
    assert {k: v.verdict for k, v in r.items()} == {
        "1": "inconclusive", "2": "inconclusive", "4": "inconclusive"}  # 4: medians 300-400
    assert "evaluation grid too coarse: every 50 steps" in r["1"].outcome.evidence
    assert r["1"].outcome.low > 1  # the interval is still shown
    write_set(tmp_path, "depth-sweep", depth_runs(BN_DEPTHS).assign(eval_every=5))
    r = evaluate(tmp_path, {"1", "2"})
    assert {k: v.verdict for k, v in r.items()} == {"1": "supported", "2": "supported"}

    steps = {"sgd": 400.0, "momentum": 150.0, "nesterov": 140.0, "adagrad": 120.0,
             "rmsprop": 100.0, "adam": 90.0, "adamax": 110.0, "nadam": 95.0, "adamw": 92.0}
    opt = optimizer_runs(steps, {})
    write_set(tmp_path, "optimizers", opt.assign(eval_every=100))  # SGD's median: 400
    six = evaluate(tmp_path, {"6"})["6"]
    assert six.verdict == "inconclusive" and "too coarse" in six.outcome.evidence
    write_set(tmp_path, "optimizers", opt.assign(eval_every=20))
    assert evaluate(tmp_path, {"6"})["6"].verdict == "supported"


def _timed_set(ratio: dict, noise: float, rounds: int = 6, seed: int = 0) -> ResultSet:
    """A depth sweep's runs and interleaved timing rounds: BN's step ``ratio[depth]`` times
    the no-BN step, each round's pair sharing the machine's (random) slowness of the moment."""
    rng = np.random.default_rng(seed)
    runs = depth_runs({("relu", d, bn): 100.0 for d in ratio for bn in (False, True)})
    rows = []
    for r in range(rounds):
        for d, k in ratio.items():
            load = math.exp(rng.normal(0, 0.5))  # a slow phase slows both arms of the round
            for bn, factor in (("off", 1.0), ("on", k)):
                rows.append({"arm": f"act=relu,depth={d},bn={bn}", "round": r, "position": 0,
                             "step_ms": 2.0 * d * factor * load * math.exp(
                                 rng.normal(0, noise)), "eval_ms": 1.0})
    return ResultSet("depth-sweep", "digits", runs, timing=pd.DataFrame(rows))


def test_interleaved_timing_pairs_rounds_at_every_depth():
    """Claim 3's test: BN's step cost against no BN's, the rounds of the interleaved timing
    paired (a slow phase of the machine slows both arms of a round), every depth (Holm)."""
    ev = EVALUATORS["interleaved_timing"].fn
    p = {"where": {"activation": "relu"}, "column": "step_ms", "by": "depth",
         "compare": {"column": "bn", "a": "on", "b": "off"}, "expect": "higher"}
    slower = ev(_timed_set({1: 1.3, 3: 1.3, 5: 1.3, 7: 1.3}, noise=0.03), p)
    assert slower.verdict == "supported" and slower.n == 6
    assert 1.2 < slower.effect < 1.4 and slower.low > 1
    assert "6 interleaved timing rounds, every depth (Holm over 4" in slower.evidence
    # faster at one depth: the claim says "each step slower", so it is contradicted
    assert ev(_timed_set({1: 1.3, 3: 1.3, 5: 1.3, 7: 0.7}, noise=0.03), p).verdict == \
        "contradicted"
    # no difference within the noise of the rounds: inconclusive
    assert ev(_timed_set({1: 1.0, 3: 1.0, 5: 1.0, 7: 1.0}, noise=0.3, seed=1), p).verdict == \
        "inconclusive"
    # without the interleaved rounds there is nothing to test (the claim is "not run")
    none = ResultSet("depth-sweep", "digits", depth_runs(BN_DEPTHS))
    with pytest.raises(MissingData, match="timing_rounds"):
        ev(none, p)
