"""The CI use end to end: a user's experiment file with a plug-in optimizer, a check profile
and a baseline, in a folder of their own. An edited plug-in must never be answered with the
programs or results of its old code: a slowdown injected into the plug-in fails the gate with
the compilation caches warm and cold, and an unchanged rerun passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = """import optax

SCALE = {scale}


def make(learning_rate, momentum=0.9):
    return optax.sgd(learning_rate * SCALE, momentum=momentum)
"""
EXPERIMENT = """name = "mine"
dataset = "digits"
[base]
widths = [16]
optimizer = "myopt:make"
learning_rate = 0.05
batch_size = 32
max_steps = 100
eval_every = 5
eval_split = "val"
target = 0.8
"""
PROFILES = """[profiles.ci]
experiment = "mine.toml"
dataset = "digits"
seeds = 12
baseline_seeds = 24
seed_offset = 1000
max_steps_ratio = 1.15
max_accuracy_drop = 0.01
alpha = 0.01
"""


def _check(folder: Path, cache: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / cache), "PYTHONPATH": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "dnnbench", "check", "--profile", "ci", "--profiles",
         "profiles.toml", "--baseline", "base.csv", *extra],
        cwd=folder, env=env, capture_output=True, text=True, check=False, timeout=600)


@pytest.mark.slow  # (50 s cold, 4 processes) the default tier keeps the parts: the gate catching
# a slowdown (test_check) and an edited plug-in missing every key (the two tests below)
def test_an_edited_plugin_fails_the_gate_with_warm_and_cold_caches(tmp_path):
    (tmp_path / "myopt.py").write_text(PLUGIN.format(scale=1.0))
    (tmp_path / "mine.toml").write_text(EXPERIMENT)
    (tmp_path / "profiles.toml").write_text(PROFILES)
    made = _check(tmp_path, "warm", "--update-baseline")
    assert made.returncode == 0, made.stderr[-2000:]
    again = _check(tmp_path, "warm")
    assert again.returncode == 0 and "check ci: PASS" in again.stderr, again.stdout[-2000:]
    # the plug-in's step shrinks to 0.3x: more steps to the target, a real regression
    (tmp_path / "myopt.py").write_text(PLUGIN.format(scale=0.3))
    for cache in ("warm", "cold"):
        slow = _check(tmp_path, cache)
        assert slow.returncode == 1, (cache, slow.stdout[-2000:], slow.stderr[-2000:])
        assert "check ci: FAIL" in slow.stderr


def _plugin_module(folder: Path, monkeypatch, scale: float) -> None:
    (folder / "myopt.py").write_text(PLUGIN.format(scale=scale))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "myopt", raising=False)  # another test's folder


def test_a_plugins_fingerprint_follows_its_source_and_version(tmp_path, monkeypatch):
    from dnnbench.registry import plugin_fingerprint

    _plugin_module(tmp_path, monkeypatch, 1.0)
    before = plugin_fingerprint("myopt:make")
    assert before["path"] == "myopt:make" and before["version"] is None  # a user's own folder
    (tmp_path / "myopt.py").write_text(PLUGIN.format(scale=0.5))
    assert plugin_fingerprint("myopt:make")["source"] != before["source"]
    import typer

    installed = plugin_fingerprint("typer:echo")  # an installed distribution: its version too
    assert installed["version"] == typer.__version__ and installed["source"]


def test_a_units_key_and_the_runs_metadata_follow_a_plugin(tmp_path, monkeypatch):
    """One ingredient changed (the plug-in's source): the unit's key misses, and the metadata
    of a run records the plug-in's import path, source digest and version."""
    from dnnbench import definition
    from dnnbench.cli.run import _plugins
    from dnnbench.data import load_dataset
    from dnnbench.run import plan
    from dnnbench.run.units import UnitStore

    _plugin_module(tmp_path, monkeypatch, 1.0)
    exp = definition.parse({"name": "mine", "base": {"widths": [4], "optimizer": "myopt:make",
                                                     "max_steps": 10}}, "test")
    data = load_dataset("synthetic", n_train=64, n_val=16, n_test=16, n_features=4)
    store = UnitStore(tmp_path / "out", exp.name, data.name, data.fingerprint)
    key = store.key(plan.build_units(exp, data, (0,))[0])
    recorded = _plugins(exp)
    assert list(recorded) == ["myopt:make"] and recorded["myopt:make"]["source"]
    (tmp_path / "myopt.py").write_text(PLUGIN.format(scale=0.5))
    assert store.key(plan.build_units(exp, data, (0,))[0]) != key
    assert _plugins(exp)["myopt:make"]["source"] != recorded["myopt:make"]["source"]


SCHEDULES = """def not_a_schedule(lr, steps):
    return 3


def raises(lr, steps):
    raise RuntimeError("broken plug-in")
"""


def test_plugins_a_user_can_find_and_plugins_refused_up_front(tmp_path, monkeypatch):
    """A plug-in by file path, or by module from the current directory; a wrong form, a
    factory that raises or returns the wrong type: one line, exit 2, nothing written."""
    from typer.testing import CliRunner

    from dnnbench.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "myopt", raising=False)  # another test's folder
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "opt.py").write_text(PLUGIN.format(scale=1.0))
    (tmp_path / "myopt.py").write_text(PLUGIN.format(scale=1.0))  # the file's own
    (tmp_path / "cwd_plugins.py").write_text(SCHEDULES + PLUGIN.format(scale=1.0))
    (tmp_path / "mine.toml").write_text(EXPERIMENT.replace("max_steps = 100", "max_steps = 10"))
    runner = CliRunner()

    def run(setting: str, out: str):
        return runner.invoke(app, ["run", "mine.toml", "--set", setting, "--seeds", "1",
                                   "--out", out])

    for i, setting in enumerate(("optimizer=mypkg/opt.py:make", "optimizer=cwd_plugins:make")):
        res = run(setting, f"ok{i}")
        assert res.exit_code == 0, (setting, res.output)
    for setting, said in (("optimizer=mypkg/none.py:make", "no such file"),
                          ("optimizer=cwd_plugins", "path/to/file.py:factory"),
                          ("schedule=cwd_plugins:not_a_schedule", "must return a function"),
                          ("schedule=cwd_plugins:raises", "RuntimeError: broken plug-in"),
                          ("init=cwd_plugins:raises", "failed when called")):
        res = run(setting, "bad")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and said in lines[0], (setting, res.stderr)
        assert not (tmp_path / "bad").exists()
