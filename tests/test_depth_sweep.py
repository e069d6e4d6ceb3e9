"""`dnnbench depth-sweep` end to end, its arms, its summary and its bad-input handling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench import definition
from dnnbench.cli import app
from dnnbench.definition import depth_sweep as exp

runner = CliRunner()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`depth-sweep --quick` as a user without MNIST and without network runs it: the default
    data set (mnist) cannot be had, so it falls back to digits with a warning."""
    from dnnbench.data import mnist

    out = tmp_path_factory.mktemp("quick")

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DNNBENCH_DATA_DIR", raising=False)
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(mnist.urllib.request, "urlopen", offline)
        result = runner.invoke(app, ["depth-sweep", "--quick", "--out", str(out)])
    return out, result


def test_offline_default_falls_back_to_digits_with_warning(quick_run):
    _, result = quick_run
    assert result.exit_code == 0, result.output
    assert "Warning" in result.stderr and "digits" in result.stderr
    assert "mnist" in result.stderr


def test_quick_writes_three_files_with_documented_columns(quick_run):
    out, result = quick_run
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(out / "depth-sweep-digits-runs.csv")
    curves = pd.read_csv(out / "depth-sweep-digits-curves.csv")
    meta = json.loads((out / "depth-sweep-digits-meta.json").read_text())
    recorded = definition.parse(json.loads(meta["experiment_definition"]), "<meta>")
    assert recorded.name == "depth-sweep" and list(recorded.factors) == ["depth", "bn"]
    # the common schema of the file layer: factors, every setting, the same metric columns
    for column in ("depth", "bn", "widths", "norm", "bn_logits", "learning_rate", "batch_size",
                   "eval_split", "steps_to_target", "final_eval_accuracy",
                   "best_eval_accuracy", "final_test_accuracy", "step_ms", "spec_hash"):
        assert column in runs.columns, column
    assert list(curves.columns[:4]) == ["arm", "seed", "step", "train_loss"]
    assert "eval_accuracy" in curves.columns
    assert len(runs) == 2 * 2 * 2  # depths 1-2, bn off/on, 2 seeds
    assert set(runs["arm"]) == {f"depth={d},bn={b}" for d in (1, 2) for b in ("off", "on")}
    assert set(runs.loc[runs["bn"] == "on", "norm"]) == {"batch"}
    assert (runs["eval_split"] == "val").all()  # selection never on test
    assert meta["schema_version"] == 1 and meta["dataset"]["name"] == "digits"
    assert meta["command"].startswith("dnnbench depth-sweep")
    # steps_to_target is filled exactly when reached, and is a multiple of eval_every
    reached = runs[runs["reached"]]
    assert reached["steps_to_target"].notna().all()
    assert (reached["steps_to_target"] % reached["eval_every"] == 0).all()
    assert runs.loc[~runs["reached"], "steps_to_target"].isna().all()
    assert "depth-sweep on digits" in result.stdout


def test_curves_agree_with_runs(quick_run):
    out, _ = quick_run
    runs = pd.read_csv(out / "depth-sweep-digits-runs.csv")
    curves = pd.read_csv(out / "depth-sweep-digits-curves.csv")
    for _, r in runs[runs["reached"]].iterrows():
        c = curves[(curves["arm"] == r["arm"]) & (curves["seed"] == r["seed"])]
        first = c.loc[c["eval_accuracy"] >= r["target"], "step"].min()
        assert first == r["steps_to_target"]
        assert c["step"].max() == r["steps_to_target"]  # early stop at the target


def test_preset_arms_defaults_and_init_by_activation():
    """The preset's arms (the packaged file with the command's defaults): tapered widths, BN
    with momentum 0.9, the activation's default initializer; --width for deeper nets."""
    def specs(options):
        return {a.name: definition.make_spec(a.settings, None)
                for a in definition.expand(exp.experiment(**options))}

    by_name = specs({"depths": (1, 3), "activations": ("relu", "sigmoid")})
    assert len(by_name) == 2 * 2 * 2
    s = by_name["depth=3,bn=on,activation=relu"]
    assert s.widths == (500, 400, 300) and s.norm == "batch" and s.init == "he-normal"
    assert s.learning_rate == 0.01 and s.batch_size == 500 and s.bn_momentum == 0.9
    assert by_name["depth=1,bn=off,activation=sigmoid"].init == "glorot-uniform"
    assert by_name["depth=1,bn=off,activation=relu"].norm == "none"
    wide = specs({"depths": (9,), "width": 64})
    assert {s.widths for s in wide.values()} == {(64,) * 9}


def _runs(steps_on, steps_off, budget=100):
    rows = []
    for bn, steps in (("on", steps_on), ("off", steps_off)):
        for seed, s in enumerate(steps):
            rows.append({"arm": f"depth=3,bn={bn}", "depth": 3, "bn": bn, "seed": seed,
                         "steps_to_target": s, "reached": s is not None, "max_steps": budget,
                         "steps_done": s or budget,
                         "diverged": False, "step_ms": 2.0, "compile_s": 1.0,
                         "final_test_accuracy": 0.9})
    df = pd.DataFrame(rows)
    df["steps_to_target"] = df["steps_to_target"].astype("Float64")
    return df


def _summary(runs):
    from dnnbench.analysis.summary import summarize

    s = summarize(exp.experiment(depths=(3,)), runs)
    return s[s["bn"] == "on"].iloc[0], s[s["bn"] == "off"].iloc[0]


def test_summary_bn_verdicts_on_constructed_runs():
    on, _ = _summary(_runs([20, 20, 30, 20, 20, 30], [60, 70, 60, 80, 60, 70]))
    assert on["median_steps"] == 20 and on["reached"] == 6
    assert on["steps_verdict"] == "fewer steps" and on["ratio_high"] < 1
    on, _ = _summary(_runs([20, 30, 20, 30, 20, 30], [30, 20, 30, 20, 30, 20]))
    assert on["steps_verdict"] == "no clear difference"


def test_summary_censored_arm_is_not_imputed():
    on, off = _summary(_runs([20] * 6, [None] * 6))
    assert off["reached"] == 0 and np.isnan(off["median_steps"])
    assert on["steps_verdict"] == "fewer steps"


def test_preset_is_the_packaged_file_with_the_options():
    """The command's experiment is bn-depth with its options applied: the file's claims about
    levels the options leave out are dropped; --no-bn-logits reaches the BN level."""
    e = exp.experiment(depths=(1, 3), activations=("relu", "sigmoid"), bn_arms=(True,),
                       bn_logits=False, width=32)
    assert e.factors == {"depth": (1, 3), "bn": ("on",), "activation": ("relu", "sigmoid")}
    assert e.named_levels["bn"]["on"] == {"norm": "batch", "bn_logits": False}
    assert e.base["width"] == 32 and "widths" not in e.base and not e.reference
    assert e.expected and not e.cost  # the file's cost text describes the file's own grid
    assert "bn-fewer-steps-deep" not in {c.id for c in e.claims}  # needs the reference
    full = exp.experiment()
    assert {c.id for c in full.claims} >= {"bn-fewer-steps-deep", "1", "2", "3", "4", "5"}
    assert full.figures == ("metric", "kaplan-meier", "curves", "timing")


@pytest.mark.parametrize("args, needle", [
    (["--depths", "0"], "--depths"),
    (["--depths", ""], "--depths"),
    (["--depths", "1-x"], "--depths"),
    (["--width", "0"], "--width"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "100000"], "--batch-size"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--learning-rate", "inf"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--target", "1.5"], "--target"),
    (["--target", "0"], "--target"),
    (["--seeds", "0"], "--seeds"),
    (["--eval-every", "0"], "--eval-every"),
    (["--activation", "swishy"], "relu"),
    (["--init", "zeros"], "he-normal"),
    (["--optimizer", "lbfgs"], "adam"),
    (["--depths", "9"], "--width"),
    (["--bn", "--no-bn"], "at most one"),
    (["--dataset", "cifar"], "mnist"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    out = tmp_path / "out"
    result = runner.invoke(app, ["depth-sweep", "--dataset", "synthetic", "--out", str(out),
                                 *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()  # no partial output


def test_explicit_unavailable_dataset_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DNNBENCH_DATA_DIR", raising=False)
    from dnnbench.data import mnist

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline, raising=False)
    result = runner.invoke(app, ["depth-sweep", "--dataset", "mnist", "--out",
                                 str(tmp_path / "o"), "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "--dataset digits" in result.stderr
