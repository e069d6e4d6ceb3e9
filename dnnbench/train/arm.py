"""Train all seeds of one arm in one compiled program, and time it honestly.

``compile_arm`` traces and compiles an arm (it needs only shapes, so experiments can compile
the next arm while this one trains); ``CompiledArm.train`` runs it and measures, separately,
compile time, steady-state step time (evaluation excluded) and evaluation time, so compile
never hides inside "time per step". ``train_arm`` does both.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dnnbench.models.mlp import model_train_flops
from dnnbench.registry import spec_plugins
from dnnbench.spec import RunSpec
from dnnbench.train import programs
from dnnbench.train.compile_cache import enable_compile_cache  # noqa: F401 (re-exported)
from dnnbench.train.devices import seed_chunk, seed_shards
from dnnbench.train.engine import Rows, Trace, full_control, make_program, seed_keys, to_device

# Held while an arm compiles and while step times are measured: an experiment may compile its
# next arm on another thread while this one trains, but never while this one is being timed.
_COMPILING_OR_TIMING = threading.Lock()
# Where CompiledArm.train reports its progress inside a unit, when its caller gives none
_PROGRESS: contextvars.ContextVar[Callable[[int, int], None] | None] = \
    contextvars.ContextVar("dnnbench_progress", default=None)


@contextlib.contextmanager
def reporting_progress(progress: Callable[[int, int], None]) -> Iterator[None]:
    """Within the block, every arm that trains tells ``progress(evaluations, of)`` after each
    call of about four seconds (see ``CompiledArm.train``): progress inside a unit."""
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


class ArmTiming(NamedTuple):
    compile_s: float  # tracing and compiling the arm's training program
    run_s: float  # executing it (all seeds, evaluation included)
    step_ms: float  # steady-state wall time of one training step of all vmapped seeds
    eval_ms: float  # one evaluation of all vmapped seeds on the eval split


class ArmResult(NamedTuple):
    trace: Trace  # numpy arrays with a leading seed axis
    timing: ArmTiming


def _block(tree):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def _timed(fn, *args, budget_s: float = 0.1, repeats: int = 3) -> float:
    """Shortest wall time of ``repeats`` calls of fn(*args) (noise only ever adds time); fewer
    calls when the shortest so far already exceeds ``budget_s`` (a call that long is not lost
    in the timer's noise, and a repeat would cost as much again: with a budget of 0.2 s the
    timings took a quarter of the main job's warm wall time). The executable is warm: it has
    just run the arm."""
    times: list[float] = []
    while len(times) < repeats and not (times and min(times) > budget_s):
        t0 = time.perf_counter()
        _block(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def _rows(mask: np.ndarray, new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """``new``'s rows (leading axis) where ``mask``, else ``old``'s."""
    return np.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


def _pad(tree, n: int):
    """Repeat the last entry of every leaf's leading axis until it has ``n`` entries."""
    def pad(a):
        a = jnp.asarray(a)
        return a if a.shape[0] == n else jnp.concatenate(
            [a, jnp.repeat(a[-1:], n - a.shape[0], axis=0)])
    return jax.tree_util.tree_map(pad, tree)


_PLACED: dict[tuple, tuple[Any, dict]] = {}


def _placed_data(data, spec: RunSpec, sharding, rows: Rows | None = None) -> dict:
    """The arm's arrays on device (replicated across a seed mesh), reused by the next arm of
    the same data set instead of being copied again."""
    key = (id(data), spec.eval_split, spec.standardize, spec.inputs, sharding, rows)
    hit = _PLACED.get(key)
    if hit is not None and hit[0] is data:
        return hit[1]
    dev = to_device(data, spec, rows)
    if sharding is not None:
        dev = jax.device_put(dev, sharding)
    if len(_PLACED) >= 2:
        _PLACED.pop(next(iter(_PLACED)))
    _PLACED[key] = (data, dev)
    return dev


class CompiledArm:
    """An arm's training program, compiled for its seeds (and learning rates), ready to run.

    With ``rows`` the data are padded to those row counts (see ``engine.to_device``); the
    program then also trains on any other data set of the same classes and features whose
    splits fit in ``rows`` and whose training split gives as many steps per epoch
    (``train(data=...)``): the class pairs of a transfer sweep share one program."""

    def __init__(self, spec: RunSpec, data, seeds, *, hps=None, init_params=None,
                 rows: Rows | None = None, chunk: int | None = None, **program_kwargs: Any):
        with _COMPILING_OR_TIMING:
            self._build(spec, data, seeds, hps, init_params, rows, chunk, program_kwargs)

    def _build(self, spec: RunSpec, data, seeds, hps, init_params, rows, chunk,
               program_kwargs) -> None:
        t0 = time.perf_counter()
        self.spec, self.n_seeds, self.rows = spec, len(seeds), rows
        hps = lane_arrays(spec, self.n_seeds, hps)
        self.lane_names = tuple(hps)
        self.steps_per_epoch = len(data.y_train) // spec.batch_size
        self.prog = prog = make_program(spec, data.n_classes, len(data.y_train),
                                        n_features=data.n_features, **program_kwargs)
        flops = model_train_flops(spec, data.n_features, data.n_classes, spec.batch_size)
        self.shards = seed_shards(self.n_seeds, flops)
        per_shard = math.ceil(self.n_seeds / self.shards)
        if chunk is None:
            chunk = seed_chunk(per_shard, flops, lambda: self._state_bytes(data, init_params))
        self.chunk = chunk = max(1, min(chunk, per_shard))
        n_pad = self.shards * chunk * math.ceil(per_shard / chunk)
        self.takes_params = init_params is not None

        def run(keys, hps, dev, init_params, ctrl, pre, carry, start, until):
            # the carry in and out as a list of its arrays: its tree holds the optimizer's
            # state types, which an exported (kept) program cannot name
            carry = jax.tree_util.tree_unflatten(self._carry_tree, carry)
            carry, trace, ended, done = prog.segment_seeds(
                keys, hps, dev, init_params, ctrl, pre, carry, start, until, chunk=chunk)
            return jax.tree_util.tree_leaves(carry), trace, ended, done

        if self.shards > 1:
            mesh = Mesh(np.array(jax.devices()[:self.shards]), ("seeds",))
            split, whole = NamedSharding(mesh, P("seeds")), NamedSharding(mesh, P())
            run = jax.shard_map(run, mesh=mesh, in_specs=(
                P("seeds"), P("seeds"), P(), P("seeds"), P(), P("seeds"), P("seeds"), P(), P()),
                out_specs=P("seeds"), check_vma=False)
        else:
            split = whole = None
        self._split, self._whole = split, whole
        keys = seed_keys(seeds)
        self.dev = _placed_data(data, spec, whole, rows)
        self.keys, self.hps = self._place(_pad(keys, n_pad)), self._place(_pad(hps, n_pad))
        self.pre = self._place(prog.seed_inputs(self.keys, self.dev))
        self.n_pad = n_pad
        params_shape = None if init_params is None else jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct((n_pad, *a.shape[1:]), a.dtype, sharding=split),
            init_params)
        ctrl = full_control(spec)
        shapes, self._carry_tree = jax.tree_util.tree_flatten(prog.carry_shapes(
            self.keys, self.hps, self.dev, params_shape, ctrl, self.pre, chunk=chunk))
        self._carry_shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=split)
                              for a in shapes]
        args = (self.keys, self.hps, self.dev, params_shape, ctrl, self.pre, self._carry_shapes,
                jnp.bool_(True), jnp.int32(0))
        key = programs.program_key(
            {"spec": json.dumps(spec.to_dict(), sort_keys=True), "n_classes": data.n_classes,
             "n_train": len(data.y_train), "rows": None if rows is None else repr(tuple(rows)),
             "shards": self.shards, "chunk": chunk, "n_pad": n_pad,
             # a plug-in's code shapes the program: its source is part of the key
             "plugins": json.dumps(spec_plugins(spec), sort_keys=True), **program_kwargs}, args)
        self.compiled = programs.compile_program(run, args, key)
        self.compile_s = time.perf_counter() - t0

    def _state_bytes(self, data, init_params) -> int:
        """Bytes of one seed's training state (parameters, BN statistics, optimizer state)
        plus its gradients: what a training step reads and writes besides the batch."""
        x1 = jax.ShapeDtypeStruct((1, data.n_features), jnp.float32)
        params = None if init_params is None else jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), init_params)
        state = jax.eval_shape(
            lambda k, x, p: self.prog.init(
                k, {name: jnp.float32(1.0) for name in self.lane_names}, {"x_train": x}, p),
            jax.ShapeDtypeStruct((2,), jnp.uint32), x1, params)
        size = lambda tree: sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(tree))
        return 2 * size(state.params) + size(state.batch_stats) + size(state.opt_state)

    def _place(self, tree):
        return tree if self._split is None else jax.device_put(tree, self._split)

    def _blank_carry(self):
        """A carry for the first call (its values are not read)."""
        return self._place(jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype),
                                                  self._carry_shapes))

    def _call(self, init_params, ctrl, carry=None, start: bool = True, until: int | None = None):
        """One call of the program: from step 0 (``start``) or ``carry``, up to evaluation
        ``until`` (default: all of them); (carry, trace, ended, done), see
        ``engine.Program.segment_seeds``."""
        carry = self._blank_carry() if carry is None else carry
        until = jnp.int32(self.spec.n_evals if until is None else until)
        return self.compiled(self.keys, self.hps, self.dev, init_params, ctrl, self.pre, carry,
                             jnp.bool_(start), until)

    def _segments(self, params, ctrl, progress: Callable[[int, int], None],
                  segment_evals: int | None = None, seconds: float = 4.0):
        """The trace of a run made in calls of ``segment_evals`` evaluation periods each
        (default: sized to take about ``seconds``), ``progress(evaluations, of)`` told after
        each call: the evaluations of the least advanced group still training."""
        n = self.spec.n_evals
        every = segment_evals or max(1, math.ceil(n / 20))
        # each call hands the carry over (out and back in): a call of at least 1 s per 10 MB
        # of it keeps that far below 1% (the 180 lanes of benchmarks/grid.py, 215 MB: 21 s a
        # call; measured there, five calls of one evaluation each took 23.9 s against 24.0 s
        # for one call)
        seconds = max(seconds, sum(math.prod(a.shape) * a.dtype.itemsize
                                   for a in self._carry_shapes) / 10e6)
        carry, trace, until, start = self._blank_carry(), None, 0, True
        while True:
            until = min(n, until + every)
            t0 = time.perf_counter()
            carry, part, ended, done = _block(self._call(params, ctrl, carry, start, until))
            took, start = time.perf_counter() - t0, False
            ended, done = np.asarray(ended), np.asarray(done)
            if ended.any():
                part = jax.device_get(part)
                trace = part if trace is None else jax.tree_util.tree_map(
                    functools.partial(_rows, ended), part, trace)
            if done.all():
                progress(n, n)
                return trace
            evals = np.asarray(jax.tree_util.tree_unflatten(self._carry_tree, carry)[1])
            progress(int(evals[~done].min()), n)
            if segment_evals is None:  # about ``seconds`` a call from now on; what is left
                # in one call when that would take less than two (a short unit: 2 calls)
                every = max(1, min(n, round(every * seconds / max(took, 1e-3))))
                if n - until <= 2 * every:
                    every = n

    def train(self, *, data=None, init_params=None, timing: bool = True,
              timing_steps: int = 100, progress: Callable[[int, int], None] | None = None,
              segment_evals: int | None = None) -> ArmResult:
        """Train every seed (on ``data`` instead of the compiled arm's own data set, if given;
        see the class); with ``timing``, also measure the step and evaluation times with the
        same executable (``Control`` switches evaluation off and limits the chunks). With
        ``progress`` (default: the one :func:`reporting_progress` set, if any), train in calls
        of about four seconds (or ``segment_evals`` evaluation periods), telling it
        ``(evaluations, of)`` after each."""
        progress = progress if progress is not None else _PROGRESS.get()
        if (init_params is not None) != self.takes_params:
            raise ValueError("init_params must be given exactly when the arm was compiled "
                             "with them")
        if data is not None:
            if self.rows is None or len(data.y_train) // self.spec.batch_size != \
                    self.steps_per_epoch:
                raise ValueError("another data set needs an arm compiled with padding rows "
                                 "and the same number of steps per epoch")
            self.dev = _placed_data(data, self.spec, self._whole, self.rows)
            self.pre = self._place(self.prog.seed_inputs(self.keys, self.dev))
        params = None if init_params is None else self._place(_pad(init_params, self.n_pad))
        spec = self.spec
        t0 = time.perf_counter()
        if progress is None:
            trace = jax.device_get(_block(self._call(params, full_control(spec)))[1])
        else:
            trace = self._segments(params, full_control(spec), progress, segment_evals)
        run_s = time.perf_counter() - t0
        trace = jax.tree_util.tree_map(lambda a: np.asarray(a)[:self.n_seeds], trace)

        step_ms = eval_ms = math.nan
        if timing:
            with _COMPILING_OR_TIMING:  # never while another arm compiles beside this one
                step_ms, eval_ms = self.time_steps(params, timing_steps)
        return ArmResult(trace, ArmTiming(self.compile_s, run_s, step_ms, eval_ms))

    def time_steps(self, params=None, timing_steps: int = 100) -> tuple[float, float]:
        """(step_ms, eval_ms): steady-state time of one training step of all seeds, and of one
        evaluation, each as the difference between two calls of the same executable. The
        reference call runs one evaluation period of zero steps without evaluating, so the
        differences hold neither the initialization nor the per-period work (freezing
        finished seeds, recording curves), which for five seeds of a large net would
        otherwise add ~40 ms to a one-step measurement."""
        spec = self.spec
        blank = self._blank_carry()  # (made once: never read, so never part of a timing)

        def timed(repeats=3, **ctrl):
            return _timed(self._call, params, full_control(
                spec, early_stop=False, test_eval=False, max_evals=1, **ctrl), blank,
                repeats=repeats)

        t_ref = timed(evaluate=False, chunk_steps=0)
        # a period of n steps, n sized to take ~0.2 s, after a one-step probe
        limit = max(1, min(timing_steps, spec.max_steps))
        probe = timed(repeats=1, evaluate=False, chunk_steps=1) - t_ref
        n = int(min(limit, max(1, math.ceil(0.2 / max(probe, 1e-6)))))
        t_train = timed(evaluate=False, chunk_steps=n)
        t_eval = timed(evaluate=True, chunk_steps=0)
        step_ms = (t_train - t_ref) / n * 1e3
        eval_ms = max(t_eval - t_ref, 0.0) * 1e3
        if step_ms <= 0:  # lost in the noise of the reference calls
            step_ms = math.nan
        return step_ms, eval_ms


def lane_arrays(spec: RunSpec, n_lanes: int, hps=None) -> dict[str, jax.Array]:
    """The runtime hyper-parameters of ``n_lanes`` lanes as float32 arrays: ``hps`` (lane name
    -> one value per lane; see ``spec.lane_values``), the learning rate always among them
    (default: the spec's, in every lane)."""
    hps = dict(hps or {})
    hps.setdefault("learning_rate", [spec.learning_rate] * n_lanes)
    out = {k: jnp.asarray(v, jnp.float32) for k, v in sorted(hps.items())}
    for k, v in out.items():
        if v.shape != (n_lanes,):
            raise ValueError(f"lane values {k!r}: {v.shape[0] if v.ndim else 'a scalar'} "
                             f"given for {n_lanes} lanes")
    return out


def compile_arm(spec: RunSpec, data, seeds, *, hps=None, init_params=None,
                rows: Rows | None = None, chunk: int | None = None,
                **program_kwargs: Any) -> CompiledArm:
    """Trace and compile ``spec`` for ``seeds`` (``init_params`` may be shapes only:
    ``jax.ShapeDtypeStruct`` leaves with a leading seed axis; ``rows``: pad the data;
    ``chunk``: seeds per vmapped group on each device, default ``devices.seed_chunk``)."""
    return CompiledArm(spec, data, seeds, hps=hps, init_params=init_params, rows=rows,
                       chunk=chunk, **program_kwargs)


def train_arm(spec: RunSpec, data, seeds, *, hps=None, init_params=None, timing: bool = True,
              timing_steps: int = 100, **program_kwargs: Any) -> ArmResult:
    """Train ``spec`` on every lane at once: a seed each, with the lane values ``hps`` (lane
    name -> one value per seed; default: the spec's learning rate)."""
    arm = compile_arm(spec, data, seeds, hps=hps, init_params=init_params, **program_kwargs)
    return arm.train(init_params=init_params, timing=timing, timing_steps=timing_steps)
