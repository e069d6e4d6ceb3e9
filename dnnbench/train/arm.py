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
from dnnbench.train.engine import Trace, make_program, seed_keys, to_device

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
              timing_steps: int = 20, **program_kwargs: Any) -> ArmResult:
    """Train ``spec`` on every seed (and learning rate in ``lrs``, one per seed) at once."""
    prog = make_program(spec, data.n_classes, len(data.y_train), **program_kwargs)
    dev = to_device(data, spec)
    keys = seed_keys(seeds)
    lrs = jnp.full((len(seeds),), spec.learning_rate, jnp.float32) if lrs is None else (
        jnp.asarray(lrs, jnp.float32))
    args = (keys, lrs, dev) if init_params is None else (keys, lrs, dev, init_params)
    axes = (0, 0, None) if init_params is None else (0, 0, None, 0)
    run = jax.jit(jax.vmap(prog.run, in_axes=axes))

    t0 = time.perf_counter()
    compiled = run.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    trace = _block(compiled(*args))
    run_s = time.perf_counter() - t0
    trace = jax.device_get(trace)

    step_ms = eval_ms = float("nan")
    if timing:
        step_ms, eval_ms = measure_step_and_eval(prog, spec, args, axes, timing_steps)
    return ArmResult(trace, ArmTiming(compile_s, run_s, step_ms, eval_ms))


def measure_step_and_eval(prog, spec: RunSpec, args, axes, n_steps: int) -> tuple[float, float]:
    """Steady-state ms per training step and per evaluation, for all vmapped seeds together."""
    n_steps = max(1, min(n_steps, spec.max_steps))
    init = jax.jit(jax.vmap(prog.init, in_axes=axes))
    state = init(*args)
    lrs, dev = args[1], args[2]
    chunk = jax.jit(jax.vmap(lambda s, lr, d: prog.train_chunk(s, 0, lr, d, n_steps),
                             in_axes=(0, 0, None)))
    step_s = _timed(chunk, state, lrs, dev) / n_steps
    evaluate = jax.jit(jax.vmap(prog.evaluate, in_axes=(0, 0, None, None)))
    eval_s = _timed(evaluate, state.params, state.batch_stats, dev["x_eval"], dev["y_eval"])
    return step_s * 1e3, eval_s * 1e3
