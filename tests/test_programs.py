"""Exported training programs kept on disk: reused instead of traced, keyed, never trusted
when damaged."""

from __future__ import annotations

import numpy as np
import pytest

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train import arm as arm_module
from dnnbench.train import programs


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=256, n_val=64, n_test=64, n_features=12)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(programs, "_folder", tmp_path)
    return tmp_path


def spec(**kw) -> RunSpec:
    base = {"widths": (16, 16), "batch_size": 32, "max_steps": 40, "eval_every": 10,
            "norm": "batch", "target": 0.0, "stop_at_target": False}
    return RunSpec(**{**base, **kw})


def test_a_kept_program_is_reused_without_tracing_and_gives_the_same_numbers(data, folder,
                                                                             monkeypatch):
    first = arm_module.compile_arm(spec(), data, [0, 1])
    kept = list(folder.glob("*.jaxexport"))
    assert len(kept) == 1
    a = first.train(timing=False).trace

    def no_export(*args, **kwargs):
        raise AssertionError("exported again instead of reusing the kept program")

    monkeypatch.setattr(programs.jax.export, "export", no_export)
    second = arm_module.compile_arm(spec(), data, [0, 1])
    b = second.train(timing=False).trace
    for x, y in zip((a.train_loss, a.eval_acc, a.test_acc), (b.train_loss, b.eval_acc, b.test_acc),
                    strict=True):
        np.testing.assert_array_equal(x, y)
    monkeypatch.setattr(programs, "_folder", None)  # no kept program: traced and compiled
    fresh = arm_module.compile_arm(spec(), data, [0, 1]).train(timing=False).trace
    np.testing.assert_allclose(fresh.train_loss, a.train_loss, rtol=1e-6)


def test_another_spec_or_shape_gets_another_program(data, folder):
    arm_module.compile_arm(spec(), data, [0, 1])
    arm_module.compile_arm(spec(learning_rate=0.02), data, [0, 1])
    arm_module.compile_arm(spec(), data, [0, 1, 2, 3, 4])
    assert len(list(folder.glob("*.jaxexport"))) == 3


def test_a_damaged_program_file_is_replaced(data, folder):
    arm_module.compile_arm(spec(), data, [0, 1])
    (path,) = folder.glob("*.jaxexport")
    path.write_bytes(b"not a program")
    res = arm_module.compile_arm(spec(), data, [0, 1]).train(timing=False)
    assert np.isfinite(res.trace.train_loss).all()
    assert path.read_bytes() != b"not a program"


def test_a_program_that_cannot_be_exported_is_compiled_as_it_is(data, folder, monkeypatch):
    def fails(*args, **kwargs):
        raise NotImplementedError("no export for this program")

    monkeypatch.setattr(programs.jax.export, "export", fails)
    res = arm_module.compile_arm(spec(), data, [0, 1]).train(timing=False)
    assert np.isfinite(res.trace.train_loss).all()
    assert not list(folder.glob("*.jaxexport"))


def test_programs_built_from_functions_are_not_kept():
    assert programs.program_key({"spec": "x", "make_tx": lambda s, lr: None}, ()) is None
    assert programs.program_key({"spec": "x", "return_params": True}, ()) is not None
    assert programs.program_key({"spec": "x"}, ()) != programs.program_key({"spec": "y"}, ())


def test_only_the_most_recently_used_programs_are_kept(tmp_path):
    import os

    for i in range(5):
        p = tmp_path / f"{i}.jaxexport"
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
    os.utime(tmp_path / "0.jaxexport", (2000, 2000))  # used again lately
    gone = programs.prune(tmp_path, keep=3)
    assert sorted(p.name for p in gone) == ["1.jaxexport", "2.jaxexport"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.jaxexport", "3.jaxexport",
                                                          "4.jaxexport"]


def test_a_kept_program_and_jax_cache_entries_follow_the_kind_of_cpu(monkeypatch, tmp_path):
    """XLA compiles for the host's vector instructions: a cache copied to another kind of CPU
    (a CI cache restored elsewhere) misses, for our kept programs and JAX's entries alike."""
    from dnnbench.train import compile_cache

    key = programs.program_key({"spec": "x"}, ())
    folder = compile_cache.machine_folder(tmp_path)
    assert programs.program_key({"spec": "x"}, ()) == key  # stable
    for module in (programs, compile_cache):
        monkeypatch.setattr(module, "cpu_model", lambda: "Another CPU (avx512f, avx2, fma)")
    programs.environment.cache_clear()  # (read once per process)
    monkeypatch.setattr(programs, "environment", programs.environment.__wrapped__)
    assert programs.program_key({"spec": "x"}, ()) != key
    assert compile_cache.machine_folder(tmp_path) != folder
    assert compile_cache.machine_folder(tmp_path).parent == tmp_path
