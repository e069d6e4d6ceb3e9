"""Interrupt, resume, nothing lost (issue 8).

Unit-store mechanics are tested with tiny fake units (no training); the end-to-end tests kill a
real ``python -m dnnbench depth-sweep`` subprocess after k units are saved (SIGTERM and
SIGKILL), resume it with the same command, and compare the files with an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import dnnbench
from dnnbench.cli import app
from dnnbench.run import units as U

REPO = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = ["compile_s", "step_ms", "eval_ms", "time_to_target_s"]
SWEEP = ["depth-sweep", "--dataset", "digits", "--depths", "1-3", "--width", "16",
         "--max-steps", "30", "--eval-every", "10", "--seeds", "2", "--batch-size", "64"]
N_UNITS = 6  # depths 1-3, BN on and off


# ----------------------------------------------------------------------- fake-unit mechanics

def fake_unit(i: int, calls: list, *, label: str | None = None, extra=()) -> U.Unit:
    def compute():
        calls.append(i)
        runs = pd.DataFrame({"arm": [f"a{i}"] * 2, "seed": [0, 1], "x": [i + 0.1, i + 0.2],
                             "steps": pd.array([10 * i, None], dtype="Int64")})
        curves = pd.DataFrame({"arm": [f"a{i}"], "step": [10], "loss": [1.0 / (i + 1)]})
        return runs, curves

    return U.Unit(label or f"unit {i}", ("fake", i, *extra), compute)


def store_at(tmp_path, **kw) -> U.UnitStore:
    return U.UnitStore(tmp_path, "fake-exp", "toy", "f00d", **kw)


def test_units_are_saved_and_skipped_on_resume(tmp_path):
    calls: list = []
    units = [fake_unit(i, calls) for i in range(4)]
    runs, curves = U.run_units(units, store_at(tmp_path))
    assert calls == [0, 1, 2, 3]
    assert len(list(store_at(tmp_path).dir.glob("*.unit"))) == 4
    calls.clear()
    runs2, curves2 = U.run_units([fake_unit(i, calls) for i in range(4)], store_at(tmp_path))
    assert calls == []  # nothing recomputed
    pd.testing.assert_frame_equal(runs, runs2)
    pd.testing.assert_frame_equal(curves, curves2)
    assert list(runs2["arm"]) == ["a0", "a0", "a1", "a1", "a2", "a2", "a3", "a3"]
    assert str(runs2["steps"].dtype) == "Int64"  # dtypes survive the round trip
    U.run_units([fake_unit(i, calls) for i in range(4)], store_at(tmp_path), fresh=True)
    assert calls == [0, 1, 2, 3]  # --fresh recomputes everything


def test_interrupted_run_keeps_finished_units(tmp_path):
    calls: list = []
    units = [fake_unit(i, calls) for i in range(4)]

    def boom():
        raise KeyboardInterrupt

    units[2] = U.Unit("unit 2", units[2].key_parts, boom)
    with pytest.raises(KeyboardInterrupt):
        U.run_units(units, store_at(tmp_path))
    assert calls == [0, 1]
    assert U.count_saved(units, store_at(tmp_path)) == 2
    calls.clear()
    U.run_units([fake_unit(i, calls) for i in range(4)], store_at(tmp_path))
    assert calls == [2, 3]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "other-unit",
                                    "old-format"])
def test_damaged_unit_file_is_recomputed(tmp_path, damage):
    calls: list = []
    units = [fake_unit(i, calls) for i in range(3)]
    store = store_at(tmp_path)
    ref = U.run_units(units, store)
    p, other = store.path(units[1]), store.path(units[2])
    blob = p.read_bytes()
    p.write_bytes({
        "garbage": b"\x00not a unit file at all" * 10,
        "truncated": blob[: len(blob) // 2],
        "flipped": blob[:-20] + bytes([blob[-20] ^ 0xFF]) + blob[-19:],
        "empty": b"",
        "other-unit": other.read_bytes(),  # a valid file, but of another unit
        "old-format": __import__("pickle").dumps({"runs": ref[0], "curves": ref[1]}),
    }[damage])
    messages: list[str] = []
    calls.clear()
    again = U.run_units(units, store_at(tmp_path, on_damaged=messages.append))
    assert calls == [1]  # only the damaged unit is recomputed, never trusted
    assert len(messages) == 1 and "unit 1" in messages[0] and "recomputing" in messages[0]
    pd.testing.assert_frame_equal(again[0], ref[0])
    pd.testing.assert_frame_equal(again[1], ref[1])
    assert store.has(units[1])  # and saved again, intact


def _unit(seeds=(0, 1), factors=None, **base):
    """The first unit (program) of a small experiment file."""
    from dnnbench import definition
    from dnnbench.data import load_dataset
    from dnnbench.run import plan

    exp = definition.parse({"name": "k", "base": {"widths": [8], "max_steps": 20, **base},
                       "factors": factors or {}}, "<test>")
    data = load_dataset("synthetic", n_train=64, n_val=16, n_test=16, n_features=4)
    return plan.build_units(exp, data, seeds)[0]


def test_key_covers_version_code_data_seeds_and_train_kwargs(tmp_path, monkeypatch):
    base = _unit()
    store = store_at(tmp_path)
    k = store.key(base)
    variants = {
        "seeds": _unit(seeds=(0, 2)),
        "spec": _unit(learning_rate=0.02),
        "lanes": _unit(factors={"learning_rate": [0.1, 0.2]}),
        "lane-values": _unit(factors={"learning_rate": [0.1, 0.3]}),
        "labels": _unit(factors={"x": {"one": {"learning_rate": 0.01}}}),
    }
    keys = {name: store.key(u) for name, u in variants.items()}
    assert k not in keys.values() and len(set(keys.values())) == len(keys)
    assert store_at(tmp_path).key(_unit()) == k  # stable
    assert U.UnitStore(tmp_path, "fake-exp", "toy", "beef").key(base) != k  # data fingerprint
    monkeypatch.setattr(dnnbench, "__version__", "9.9.9")
    assert store_at(tmp_path).key(base) != k  # dnnbench version
    monkeypatch.undo()
    monkeypatch.setattr(U, "code_fingerprint", lambda: "edited")
    assert store_at(tmp_path).key(base) != k  # training code changed
    monkeypatch.undo()
    monkeypatch.setattr(U, "module_digests", lambda compute: {"dnnbench.experiments.x": "e"})
    assert store_at(tmp_path).key(base) != k  # the unit's experiment module changed
    monkeypatch.undo()
    env = dict(U.environment_key(), libraries={"jax": "0.0.1"})
    monkeypatch.setattr(U, "environment_key", lambda: env)
    assert store_at(tmp_path).key(base) != k  # library versions
    monkeypatch.undo()
    from dnnbench.results import io
    monkeypatch.setattr(io, "cpu_model", lambda: "Another CPU (avx2)")
    assert store_at(tmp_path).key(base) != k  # another kind of CPU: other float32 bits


def test_key_includes_the_experiment_module_of_a_unit():
    from dnnbench import definition
    from dnnbench.data import load_dataset
    from dnnbench.run import plan

    data = load_dataset("synthetic", n_train=64, n_val=16, n_test=16, n_features=4)
    exp = definition.parse({"name": "key", "base": {"widths": [4], "max_steps": 10}}, "test")
    unit = plan.build_units(exp, data, (0,))[0]
    mods = U.module_digests(unit.compute)
    assert set(mods) == {"dnnbench.run.plan"}  # the train protocol's unit builder
    assert '"dnnbench.run.plan"' in store_at(Path("/nonexistent")).key_material(unit)


def _scale(x, factor=2.0):
    return x * factor


def test_canonical_encoding_is_by_content_not_address():
    def make(c):
        return lambda x: x + c

    a = np.arange(6.0).reshape(2, 3)
    enc = U.canonical({"f": _scale, "g": make(1.0), "arr": a, "t": (1, 2.5, float("nan"))})
    assert "0x" not in repr(enc)
    assert U.canonical(make(1.0)) == U.canonical(make(1.0))
    assert U.canonical(make(1.0)) != U.canonical(make(2.0))  # closures differ
    assert U.canonical(a) == U.canonical(a.copy())
    b = a.copy()
    b[0, 0] = 1e-9
    assert U.canonical(a) != U.canonical(b)  # arrays by content, never by a truncated repr
    import functools

    assert U.canonical(functools.partial(_scale, factor=3.0)) != U.canonical(
        functools.partial(_scale, factor=4.0))
    with pytest.raises(TypeError, match="no stable encoding"):
        U.canonical(object())


# --------------------------------------------------------------- end to end: kill and resume

def read_outputs(out: Path) -> tuple[pd.DataFrame, str]:
    runs = pd.read_csv(out / "depth-sweep-digits-runs.csv").drop(columns=TIMING_COLUMNS)
    return runs, (out / "depth-sweep-digits-curves.csv").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (in-process; the compile cache is shared with the subprocesses)."""
    out = tmp_path_factory.mktemp("reference")
    res = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def start_sweep(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dnnbench", *SWEEP, "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def wait_for_units(proc: subprocess.Popen, unit_dir: Path, k: int, timeout: float = 150) -> None:
    t0 = time.monotonic()
    while len(list(unit_dir.glob("*.unit"))) < k:
        if proc.poll() is not None:
            raise AssertionError(f"finished before {k} units were saved:\n{proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"fewer than {k} units saved after {timeout} s")
        time.sleep(0.02)


def assert_same_as_reference(out: Path, reference: Path) -> None:
    runs, curves = read_outputs(out)
    ref_runs, ref_curves = read_outputs(reference)
    pd.testing.assert_frame_equal(runs, ref_runs, check_exact=True)
    assert curves == ref_curves  # byte for byte
    assert len(runs) == N_UNITS * 2 and not runs.duplicated(["arm", "seed"]).any()
    assert not list(out.rglob("*.tmp"))  # no temp file left behind


def unit_dir(out: Path) -> Path:
    return out / ".dnnbench-units" / "depth-sweep-digits"


def test_sigkilled_subprocess_resumes_to_identical_files(reference, tmp_path):
    """kill -9 after k units: nothing can be cleaned up by the victim; the resume must cope."""
    out, k = tmp_path / "out", 2
    proc = start_sweep(out)
    wait_for_units(proc, unit_dir(out), k)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = len(list(unit_dir(out).glob("*.unit")))
    assert k <= saved < N_UNITS
    assert not (out / "depth-sweep-digits-runs.csv").exists()  # no partial result files
    res = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])  # the same command again
    assert res.exit_code == 0, res.output
    assert f"Resuming: {saved}/{N_UNITS} units already saved" in " ".join(res.stderr.split())
    assert_same_as_reference(out, reference)


def seed_units(reference: Path, out: Path, keep: int) -> None:
    """Start ``out`` as if an earlier run had saved ``keep`` of the reference's units."""
    unit_dir(out).mkdir(parents=True)
    for p in sorted(unit_dir(reference).glob("*.unit"))[:keep]:
        shutil.copy2(p, unit_dir(out) / p.name)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_130_says_what_was_saved_then_resumes(reference, tmp_path, sig):
    """The real signal path (handler -> KeyboardInterrupt -> exit 130), in-process to save a
    JAX start-up: a thread sends the signal to this process once one more unit is saved."""
    out, keep = tmp_path / "out", 4
    seed_units(reference, out, keep)
    late: list[int] = []
    previous = signal.signal(sig, lambda signum, frame: late.append(signum))  # safety net

    def killer():
        t0 = time.monotonic()
        while len(list(unit_dir(out).glob("*.unit"))) <= keep and time.monotonic() - t0 < 120:
            time.sleep(0.01)
        os.kill(os.getpid(), sig)

    try:
        if sig == signal.SIGINT:
            signal.signal(sig, signal.default_int_handler)
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        res = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])
        thread.join(timeout=120)
    finally:
        signal.signal(sig, previous)
    assert not late, "the signal arrived after the sweep had finished"
    assert res.exit_code == 130, res.output
    saved = len(list(unit_dir(out).glob("*.unit")))
    assert saved < N_UNITS
    flat = " ".join(res.stderr.split())
    assert f"Interrupted: {saved}/{N_UNITS} units are saved in {unit_dir(out)}" in flat
    assert "to resume, run the same command again" in flat
    assert not (out / "depth-sweep-digits-runs.csv").exists()
    res = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"Resuming: {saved}/{N_UNITS}" in " ".join(res.stderr.split())
    assert_same_as_reference(out, reference)


def test_damaged_unit_file_is_recomputed_with_a_warning(reference, tmp_path):
    out = tmp_path / "out"
    seed_units(reference, out, N_UNITS)
    victim = min(unit_dir(out).glob("*.unit"))
    victim.write_bytes(b"garbage")
    res = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.stderr.split())
    assert f"Resuming: {N_UNITS - 1}/{N_UNITS}" in flat and "recomputing it" in flat
    assert_same_as_reference(out, reference)


def test_interrupt_message_gives_the_resume_command_without_fresh(tmp_path, monkeypatch, capsys):
    import types

    import typer

    from dnnbench.cli.common import run_experiment

    calls: list = []
    units = [fake_unit(0, calls), fake_unit(1, calls)]

    def interrupted():
        raise KeyboardInterrupt

    units.append(U.Unit("unit 2", ("fake", 2), interrupted))
    monkeypatch.setattr(sys, "argv", ["dnnbench", "fake-exp", "--out", str(tmp_path), "--fresh"])
    data = types.SimpleNamespace(name="toy", fingerprint="f00d")
    with pytest.raises(typer.Exit) as exc:
        run_experiment("fake-exp", units, data, tmp_path, fresh=True, meta={})
    assert exc.value.exit_code == 130
    flat = " ".join(capsys.readouterr().err.split())
    assert "Interrupted: 2/3 units are saved" in flat
    hint = flat.split("run the same command again without --fresh:")[1]
    assert f"dnnbench fake-exp --out {tmp_path}" in hint and "--fresh" not in hint
    assert not list(tmp_path.glob("*.csv"))


def test_swallowed_interrupt_still_stops_at_the_next_unit(tmp_path, monkeypatch, capsys):
    """Python prints and ignores an exception raised while a finalizer runs; a library may
    catch it too. The signal's flag must still stop the run (exit 130), not let it go on."""
    import types

    import typer

    from dnnbench.cli.common import run_experiment

    calls: list = []

    def swallowing():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the handler raises KeyboardInterrupt in here...
        except KeyboardInterrupt:
            pass  # ...and something swallows it
        return fake_unit(1, calls).compute()

    units = [fake_unit(0, calls), U.Unit("unit 1", ("fake", 1), swallowing),
             fake_unit(2, calls), fake_unit(3, calls)]
    data = types.SimpleNamespace(name="toy", fingerprint="f00d")
    with pytest.raises(typer.Exit) as exc:
        run_experiment("fake-exp", units, data, tmp_path, fresh=False, meta={})
    assert exc.value.exit_code == 130
    assert calls == [0, 1]  # unit 1 finished and was saved; unit 2 never started
    assert "Interrupted: 2/4 units are saved" in " ".join(capsys.readouterr().err.split())
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_once_computes_one_time_across_threads_and_take_forgets():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    once = U.Once(slow)
    threads = [threading.Thread(target=once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and once() == 1
    assert once.take() == 1
    assert once() == 2  # taken: the next call computes anew

    def fails():
        raise ValueError("no")

    bad = U.Once(fails)
    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            bad()


def test_runner_prepares_the_next_unit_while_this_one_computes(tmp_path):
    """prepare(k+1) is started before compute(k) returns, and each unit is prepared once."""
    events: list[str] = []
    started = [threading.Event() for _ in range(3)]

    def unit(i):
        def prep():
            events.append(f"prepare {i}")
            started[i].set()
            return i

        once = U.Once(prep)

        def compute():
            assert once.take() == i
            if i + 1 < 3:
                assert started[i + 1].wait(5), "the next unit was not prepared ahead"
            events.append(f"compute {i}")
            return (pd.DataFrame({"arm": [f"a{i}"], "seed": [0]}),
                    pd.DataFrame({"arm": [f"a{i}"], "step": [1]}))

        return U.Unit(f"unit {i}", ("prep", i), compute, once)

    runs, _ = U.run_units([unit(i) for i in range(3)], store_at(tmp_path))
    assert list(runs["arm"]) == ["a0", "a1", "a2"]
    assert sorted(events) == sorted([f"prepare {i}" for i in range(3)]
                                    + [f"compute {i}" for i in range(3)])
    assert events.index("prepare 1") < events.index("compute 0")
