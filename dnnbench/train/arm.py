"""Train all seeds of one arm in one compiled program, and time it honestly.

Compile time, steady-state step time (after warm-up, evaluation excluded) and evaluation
time are measured separately, so compile never hides inside "time per step".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dnnbench.spec import RunSpec
from dnnbench.train.engine import Trace, full_control, make_program, seed_keys, to_device

_CACHE_ENABLED = False


def enable_compile_cache(folder: str | Path | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (default: <user cache>/dnnbench/jax)."""
    global _CACHE_ENABLED
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "dnnbench" / "jax"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not _CACHE_ENABLED:
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        _CACHE_ENABLED = True
    return folder


class ArmTiming(NamedTuple):
    compile_s: float  # compiling the arm's training program
    run_s: float  # executing it (all seeds, evaluation included)
    step_ms: float  # steady-state wall time of one training step of all vmapped seeds
    eval_ms: float  # one evaluation of all vmapped seeds on the eval split


class ArmResult(NamedTuple):
    trace: Trace  # numpy arrays with a leading seed axis
    timing: ArmTiming


def _block(tree):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def _timed(fn, *args, repeats: int = 3) -> float:
    """Median wall time of fn(*args) over ``repeats`` calls, after one warm-up call."""
    _block(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def train_arm(spec: RunSpec, data, seeds, *, lrs=None, init_params=None, timing: bool = True,
              timing_steps: int = 100, **program_kwargs: Any) -> ArmResult:
    """Train ``spec`` on every seed (and learning rate in ``lrs``, one per seed) at once.

    One executable serves the run and its timing: ``Control`` (runtime, unbatched) switches
    evaluation off and limits the number of chunks, so timing costs no extra compilation.
    Step time = (time of one chunk of n steps without evaluation - time of no chunk) / n;
    eval time = time of that chunk with its evaluation - without; medians of 3 after a warm-up.
    """
    prog = make_program(spec, data.n_classes, len(data.y_train), **program_kwargs)
    dev = to_device(data, spec)
    keys = seed_keys(seeds)
    lrs = jnp.full((len(seeds),), spec.learning_rate, jnp.float32) if lrs is None else (
        jnp.asarray(lrs, jnp.float32))
    run = jax.jit(jax.vmap(prog.run, in_axes=(0, 0, None, None if init_params is None else 0,
                                              None, 0)))
    perms = _block(jax.jit(jax.vmap(prog.shuffles))(keys))

    def call(ctrl):
        return compiled(keys, lrs, dev, init_params, ctrl, perms)

    full = full_control(spec)
    t0 = time.perf_counter()
    compiled = run.lower(keys, lrs, dev, init_params, full, perms).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    trace = _block(call(full))
    run_s = time.perf_counter() - t0
    trace = jax.device_get(trace)

    step_ms = eval_ms = float("nan")
    if timing:
        # one chunk of n training steps (n <= eval_every), with and without its evaluation
        n = max(1, min(timing_steps, spec.eval_every, spec.max_steps))
        ctrl = dict(max_evals=1, early_stop=False, chunk_steps=n)
        t_init = _timed(call, full_control(spec, max_evals=0, evaluate=False))
        t_train = _timed(call, full_control(spec, evaluate=False, **ctrl))
        t_eval = _timed(call, full_control(spec, evaluate=True, **ctrl))
        step_ms = max(t_train - t_init, 0.0) / n * 1e3
        eval_ms = max(t_eval - t_train, 0.0) * 1e3
    return ArmResult(trace, ArmTiming(compile_s, run_s, step_ms, eval_ms))
