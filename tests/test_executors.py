"""Executors (issue 21): an experiment's units on a Dask cluster or a submitit job array give the
same result files as local execution; a worker killed mid-unit loses and duplicates nothing;
`merge` of parts equals the whole; bad settings and missing engines are refused in one line.

The engines are optional (`uv sync --extra dask --extra slurm`, as CI installs them): the tests
that need one skip without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.results.io import content_digest, csv_text

runner = CliRunner()
TIMING = ["compile_s", "step_ms", "eval_ms", "time_to_target_s"]
TINY = """
name = "tiny"
dataset = "synthetic"
[base]
widths = [16]
batch_size = 50
max_steps = 400
eval_every = 100
target = 0.5
[factors]
activation = ["relu", "tanh"]
learning_rate = [0.01, 0.1]
"""
N_UNITS, N_RUNS = 2, 8  # two programs (one per activation), 4 arms x 2 seeds


def run(exp: Path, out: Path, *extra: str):
    r = runner.invoke(app, ["run", str(exp), "--seeds", "2", "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    return r


def tables(out: Path):
    runs = pd.read_csv(out / "tiny-synthetic-runs.csv")
    curves = pd.read_csv(out / "tiny-synthetic-curves.csv")
    return runs, curves


def assert_same_results(a: Path, b: Path) -> None:
    """Equal runs and curves files, timing columns aside (rows in the same order)."""
    (ra, ca), (rb, cb) = tables(a), tables(b)
    assert len(ra) == N_RUNS and not ra.duplicated(["arm", "seed"]).any()
    pd.testing.assert_frame_equal(ra.drop(columns=TIMING), rb.drop(columns=TIMING))
    pd.testing.assert_frame_equal(ca, cb)


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def local(exp) -> Path:
    out = exp.parent / "local"
    run(exp, out)
    return out


# ------------------------------------------------------------------------------------- dask

def test_dask_local_cluster_with_a_worker_killed_mid_unit_gives_the_local_results(
        exp, local, tmp_path):
    pytest.importorskip("distributed")
    from distributed import Scheduler

    killed: list[str] = []
    stop = threading.Event()

    def killer():  # SIGKILL the worker that computes the first unit, while it does
        while not stop.is_set() and not killed:
            for scheduler in list(Scheduler._instances):  # the run's LocalCluster
                for ws in list(scheduler.workers.values()):
                    if any(str(ts.key).startswith("dnnbench-") for ts in list(ws.processing)):
                        os.kill(ws.pid, signal.SIGKILL)
                        killed.append(ws.address)
                        return
            time.sleep(0.01)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    try:
        r = run(exp, tmp_path / "dask", "--executor", "dask", "--workers", "2")
    finally:
        stop.set()
        watcher.join()
    assert killed, "no worker was killed while it computed a unit"
    assert_same_results(local, tmp_path / "dask")
    units = list((tmp_path / "dask" / ".dnnbench-units").rglob("*.unit"))
    assert len(units) == N_UNITS  # each unit saved once, by the client
    meta = json.loads((tmp_path / "dask" / "tiny-synthetic-meta.json").read_text())
    assert meta["executor"] == "dask"
    assert "Traceback" not in r.output


@pytest.mark.slow
def test_dask_scheduler_address_from_the_environment(exp, local, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        monkeypatch.setenv("DNNBENCH_DASK_SCHEDULER", cluster.scheduler_address)
        run(exp, tmp_path / "dask", "--executor", "dask")
    assert_same_results(local, tmp_path / "dask")


def test_merge_of_two_halves_equals_the_whole(exp, local, tmp_path):
    run(exp, tmp_path / "a", "--set", "activation=relu")
    run(exp, tmp_path / "b", "--set", "activation=tanh")
    # a part given twice (the same numbers) is kept once
    r = runner.invoke(app, ["merge", str(tmp_path / "a"), str(tmp_path / "b"),
                            str(tmp_path / "a"), "--out", str(tmp_path / "whole")])
    assert r.exit_code == 0, r.output
    assert_same_results(local, tmp_path / "whole")
    meta = json.loads((tmp_path / "whole" / "tiny-synthetic-meta.json").read_text())
    assert meta["config"]["factors"]["activation"] == ["relu", "tanh"]
    assert [p["rows"] for p in meta["merged_from"]] == [4, 4, 4]
    whole = json.loads((local / "tiny-synthetic-meta.json").read_text())
    if "experiment_definition" in whole:  # the report rebuilds the experiment from it
        assert json.loads(meta["experiment_definition"]) == json.loads(
            whole["experiment_definition"])
    # merged results are read like any other result set
    r = runner.invoke(app, ["compare", str(local / "tiny-synthetic-runs.csv"),
                            str(tmp_path / "whole" / "tiny-synthetic-runs.csv")])
    assert r.exit_code in (0, 1), r.output


# ---------------------------------------------------------------------------------- submitit

def test_submitit_local_executor_gives_the_local_results(exp, local, tmp_path):
    pytest.importorskip("submitit")
    if shutil.which("srun"):
        pytest.skip("SLURM is present: --executor slurm would submit to the cluster")
    run(exp, tmp_path / "slurm", "--executor", "slurm", "--slurm-param", "timeout_min=10")
    assert_same_results(local, tmp_path / "slurm")
    assert not (tmp_path / "slurm" / ".dnnbench-submitit").exists()  # job files cleaned up


def test_depth_sweep_units_travel_as_small_recipes_that_rebuild_the_same_unit(tmp_path):
    """What an executor ships (pickled), run in this process: the same tables as the unit."""
    from _recipes import assert_recipe_rebuilds_the_unit

    from dnnbench.cli.executor import worker_data
    from dnnbench.data import load_dataset
    from dnnbench.definition import depth_sweep
    from dnnbench.run import plan
    from dnnbench.run.units import UnitStore

    data = load_dataset("digits")
    experiment = depth_sweep.experiment(depths=(1,), width=16, max_steps=30, eval_every=10,
                                        batch_size=64, seeds=2)
    units = plan.build_units(experiment, data, range(2),
                             worker_data=worker_data(data, None, False))
    store = UnitStore(tmp_path, depth_sweep.EXPERIMENT, data.name, data.fingerprint)
    assert_recipe_rebuilds_the_unit(units[0], store)


@pytest.mark.slow
def test_depth_sweep_on_submitit_gives_the_local_results(tmp_path):
    pytest.importorskip("submitit")
    if shutil.which("srun"):
        pytest.skip("SLURM is present: --executor slurm would submit to the cluster")
    sweep = ["depth-sweep", "--dataset", "digits", "--depths", "1", "--width", "16",
             "--max-steps", "30", "--eval-every", "10", "--seeds", "2", "--batch-size", "64"]
    files = []
    for name, extra in (("local", []), ("slurm", ["--executor", "slurm"])):
        r = runner.invoke(app, [*sweep, "--out", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        files.append(pd.read_csv(tmp_path / name / "depth-sweep-digits-runs.csv"))
    assert len(files[0]) == 4  # BN on and off, 2 seeds
    pd.testing.assert_frame_equal(*(f.drop(columns=[c for c in TIMING if c in f.columns])
                                    for f in files))


# ------------------------------------------------------------------------------------ merge

def _rewrite(folder: Path, change) -> None:
    """Change a result set's tables in place, keeping its metadata consistent with them."""
    meta_path = folder / "tiny-synthetic-meta.json"
    meta = json.loads(meta_path.read_text())
    runs, _ = tables(folder)
    runs = change(runs, meta)
    data = csv_text(runs).encode()
    (folder / "tiny-synthetic-runs.csv").write_bytes(data)
    meta["files"]["runs"].update(rows=len(runs), sha256=content_digest(data))
    meta_path.write_text(json.dumps(meta))


def one_line_refusal(r, message: str) -> None:
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_merge_refuses_conflicting_rows_and_other_settings(local, tmp_path):
    def bump(runs, meta):
        runs.loc[3, "final_test_accuracy"] += 0.01
        return runs

    shutil.copytree(local, tmp_path / "changed")
    _rewrite(tmp_path / "changed", bump)
    r = runner.invoke(app, ["merge", str(local), str(tmp_path / "changed"), "--out",
                            str(tmp_path / "m")])
    one_line_refusal(r, "conflicting rows: arm=")
    assert "final_test_accuracy" in r.output and "--tolerance 1e-5" in r.output

    def rounded(runs, meta):  # float32 rounding: a run as lanes and as its own program
        runs["final_test_accuracy"] *= 1 + 3e-7
        return runs

    shutil.copytree(local, tmp_path / "rounded")
    _rewrite(tmp_path / "rounded", rounded)
    args = ["merge", str(local), str(tmp_path / "rounded"), "--out"]
    one_line_refusal(runner.invoke(app, [*args, str(tmp_path / "m")]), "conflicting rows")
    r = runner.invoke(app, [*args, str(tmp_path / "m"), "--tolerance", "1e-5"])
    assert r.exit_code == 0, r.output
    shutil.rmtree(tmp_path / "m")
    # ... but not a real difference
    r = runner.invoke(app, ["merge", str(local), str(tmp_path / "changed"), "--out",
                            str(tmp_path / "m"), "--tolerance", "1e-5"])
    one_line_refusal(r, "conflicting rows: arm=")

    def other_code(runs, meta):  # a part made by edited code
        meta["code"] = "0" * 16
        return runs

    shutil.copytree(local, tmp_path / "edited")
    _rewrite(tmp_path / "edited", other_code)
    r = runner.invoke(app, ["merge", str(local), str(tmp_path / "edited"), "--out",
                            str(tmp_path / "m")])
    one_line_refusal(r, "made with other settings (they differ in: code)")

    def other_budget(runs, meta):
        meta["config"]["base"]["max_steps"] = 999
        return runs

    shutil.copytree(local, tmp_path / "other")
    _rewrite(tmp_path / "other", other_budget)
    r = runner.invoke(app, ["merge", str(local), str(tmp_path / "other"), "--out",
                            str(tmp_path / "m")])
    one_line_refusal(r, "made with other settings (they differ in: config)")
    assert not (tmp_path / "m").exists()

    r = runner.invoke(app, ["merge", str(local), str(tmp_path / "nowhere"), "--out",
                            str(tmp_path / "m")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = runner.invoke(app, ["merge", str(local), str(local), "--out", str(local)])
    one_line_refusal(r, "already holds tiny results on synthetic")


# --------------------------------------------------------------------------- bad settings

def test_missing_engines_are_explained_in_one_line(exp, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in (
        "distributed", "submitit") else real(name, *a))
    for kind, hint in (("dask", "uv sync --extra dask"), ("slurm", "uv sync --extra slurm")):
        r = runner.invoke(app, ["run", str(exp), "--out", str(tmp_path / "o"),
                                "--executor", kind])
        one_line_refusal(r, hint)


@pytest.mark.parametrize("args,message", [
    (["--executor", "ray"], "--executor: unknown value 'ray'"),
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is for --executor dask"),
    (["--workers", "2"], "--workers is for --executor dask"),
    (["--executor", "slurm", "--slurm-param", "timeout_min"], "is not KEY=VALUE"),
])
def test_bad_executor_options_are_refused(exp, tmp_path, args, message):
    r = runner.invoke(app, ["run", str(exp), "--out", str(tmp_path / "o"), *args])
    one_line_refusal(r, message)
    assert not (tmp_path / "o").exists()


def test_an_unreachable_scheduler_is_refused_in_one_line(exp, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    for address in ("tcp://127.0.0.1:9", "no-such-protocol://x"):
        monkeypatch.setenv("DNNBENCH_DASK_SCHEDULER", address)
        t0 = time.perf_counter()
        r = runner.invoke(app, ["run", str(exp), "--out", str(tmp_path / "o"),
                                "--executor", "dask"])
        one_line_refusal(r, f"--scheduler {address}: cannot reach a Dask scheduler")
        assert time.perf_counter() - t0 < 15


# ------------------------------------------------------------------- parts of a program's lanes

def test_a_programs_lanes_cut_into_units_give_the_same_numbers(exp, local, tmp_path):
    """--lanes-per-unit 2: each program (2 arms x 2 seeds) becomes 2 units of one arm, so an
    executor can spread one structure's arms over workers; equal parts share one compiled
    program. The numbers are those of the whole program up to float32 reassociation (a
    smaller vmapped batch orders reductions differently, see tests/_lanes.py), and a part
    rebuilt from its recipe (what a worker runs) is the same unit."""
    import pickle

    import numpy as np
    from _lanes import LANE_RTOL

    from dnnbench import definition
    from dnnbench.cli.executor import worker_data
    from dnnbench.data import load_dataset
    from dnnbench.run import plan
    from dnnbench.run.executors import task_for
    from dnnbench.run.units import UnitStore

    run(exp, tmp_path / "parts", "--lanes-per-unit", "2")
    meta = json.loads((tmp_path / "parts" / "tiny-synthetic-meta.json").read_text())
    assert (meta["units"], meta["compiled_programs"]) == (2 * N_UNITS, N_UNITS)
    (ra, ca), (rb, cb) = tables(local), tables(tmp_path / "parts")
    assert len(rb) == N_RUNS and not rb.duplicated(["arm", "seed"]).any()
    keys = ["arm", "seed"]
    ra, rb = ra.sort_values(keys, ignore_index=True), rb.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(ra[keys], rb[keys])
    assert (ra["reached"] == rb["reached"]).all()
    for col in ("final_eval_loss", "final_train_loss", "final_test_loss"):
        np.testing.assert_allclose(ra[col], rb[col], rtol=LANE_RTOL)
    # negative control: the same tolerance tells the two learning rates of an activation apart
    lr = ra.set_index(["activation", "learning_rate", "seed"])["final_train_loss"]
    assert not np.allclose(lr.xs(0.01, level=1), lr.xs(0.1, level=1), rtol=LANE_RTOL)
    assert len(ca) == len(cb)

    data = load_dataset("synthetic")
    units = plan.build_units(definition.load(exp), data, range(2), lanes_per_unit=2,
                                worker_data=worker_data(data, None, False))
    assert [u.label for u in units] == [  # a part of one arm is named by its arm
        f"activation={a},learning_rate={lr}" for a in ("relu", "tanh") for lr in (0.01, 0.1)]
    assert [u.program for u in units] == [(0, 1), (0, 1), (1, 1), (1, 1)]
    store = UnitStore(tmp_path, "tiny", data.name, data.fingerprint)
    task = pickle.loads(pickle.dumps(task_for(units[3], store)))
    assert store.key_material(task.rebuild()) == store.key_material(units[3])


def test_merge_carries_the_per_layer_diagnostics_of_every_part():
    """Parts with -layers.csv give a merged set with their layers, a run's rows kept once."""
    from dnnbench.cli.merge import merge_sets

    def part(arms):
        runs = pd.DataFrame([{"arm": a, "seed": s, "steps_to_target": 10, "x": 1.0}
                             for a in arms for s in (0, 1)])
        curves = runs[["arm", "seed"]].assign(step=10, eval_accuracy=0.5)
        layers = runs[["arm", "seed"]].assign(step=0, layer=0, act_std=1.0)
        return runs, curves, {"experiment": "e", "config": {"factors": {"a": arms}}}, layers

    (ra, ca, ma, la), (rb, cb, mb, lb) = part(["a=1", "a=2"]), part(["a=2", "a=3"])
    runs, curves, _meta, layers = merge_sets([(Path("A"), ra, ca, ma, la),
                                             (Path("B"), rb, cb, mb, lb)])
    assert len(runs) == len(curves) == len(layers) == 6  # a=2 kept once
    assert sorted(set(layers["arm"])) == ["a=1", "a=2", "a=3"]
    assert merge_sets([(Path("A"), ra, ca, ma, la), (Path("B"), rb, cb, mb, None)])[3] is None
