"""The training engine: one pure ``run(key, lr, data) -> Trace`` per arm.

``jax.jit(jax.vmap(run, in_axes=(0, 0, None)))(keys, lrs, data)`` trains every seed of an arm
(and, for learning-rate sweeps, every learning rate) in one compiled program. The data arrays
are arguments (never closed-over constants), live on device and are reshuffled on device every
epoch; the step loop is a ``lax.scan`` of ``eval_every`` steps inside a ``lax.while_loop`` over
evaluations, so no Python runs per step. Under ``vmap`` the while loop continues until every seed
is done; a seed that reached the target (when ``stop_at_target``) or diverged is frozen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dnnbench.models import build_model, init_variables
from dnnbench.registry import make_optimizer
from dnnbench.spec import RunSpec

Data = dict[str, jax.Array]  # x_train, y_train, x_eval, y_eval, x_test, y_test


class TrainState(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any
    perms: jax.Array  # (epochs, n_train) int32: the data order of every epoch
    dropout_key: jax.Array


class Trace(NamedTuple):
    """What one run returns (per seed; vmapped runs add a leading seed axis)."""

    steps: jax.Array  # (n_evals,) step count at each evaluation
    train_loss: jax.Array  # (n_evals,) mean training loss over the steps since the last eval
    eval_loss: jax.Array  # (n_evals,) loss on the eval split
    eval_acc: jax.Array  # (n_evals,) accuracy on the eval split
    n_done: jax.Array  # () evaluations actually performed (the rest of the curves are padding)
    diverged: jax.Array  # () bool: loss became NaN/inf
    test_loss: jax.Array  # () final loss on the test split
    test_acc: jax.Array  # () final accuracy on the test split
    params: Any = None  # final parameters, when requested


def to_device(data, spec: RunSpec) -> Data:
    """The arrays one run needs, as device arrays (eval split chosen by ``spec.eval_split``)."""
    x_eval, y_eval = data.split(spec.eval_split)
    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_eval": x_eval,
              "y_eval": y_eval, "x_test": data.x_test, "y_test": data.y_test}
    return {k: jnp.asarray(v, jnp.int32 if k.startswith("y") else jnp.float32)
            for k, v in arrays.items()}


def loss_and_accuracy(logits: jax.Array, labels: jax.Array, kind: str):
    if kind == "sigmoid":
        z = logits[:, 0]
        loss = optax.sigmoid_binary_cross_entropy(z, labels.astype(z.dtype)).mean()
        return loss, jnp.mean((z > 0) == (labels > 0))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)


def seed_keys(seeds) -> jax.Array:
    """One PRNG key per seed number; seed i of every arm gets the same key (paired arms)."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def split_key(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The named keys of a run: (init_key, data_key, dropout_key)."""
    init_key, data_key, dropout_key = jax.random.split(key, 3)
    return init_key, data_key, dropout_key


class Control(NamedTuple):
    """Runtime (traced, unbatched) knobs of a run; the defaults are the spec's protocol."""

    max_evals: jax.Array  # int32: evaluations (chunks of eval_every steps) to run at most
    evaluate: jax.Array  # bool: evaluate (off only to time pure training steps)
    target: jax.Array  # float32: stop a seed once its eval accuracy reaches this (inf: never)
    chunk_steps: jax.Array  # int32: training steps between evaluations (eval_every)


def full_control(spec: RunSpec, *, max_evals: int | None = None, evaluate: bool = True,
                 early_stop: bool = True, chunk_steps: int | None = None) -> Control:
    stop = spec.stop_at_target and spec.target > 0 and early_stop
    return Control(jnp.int32(spec.n_evals if max_evals is None else max_evals),
                   jnp.bool_(evaluate), jnp.float32(spec.target if stop else jnp.inf),
                   jnp.int32(spec.eval_every if chunk_steps is None else chunk_steps))


class Program(NamedTuple):
    """The pure functions of one arm (all unbatched; vmap them over seeds)."""

    shuffles: Callable  # (key) -> (epochs, n_train) int32 data order
    init: Callable  # (key, lr, data, init_params=None, perms=None) -> TrainState
    train_chunk: Callable  # (state, t0, lr, data, n_steps) -> (state, mean_loss)
    evaluate: Callable  # (params, batch_stats, x, y) -> (loss, acc)
    run: Callable  # (key, lr, data, init_params=None, ctrl=None, perms=None) -> Trace


def default_tx(spec: RunSpec, lr) -> optax.GradientTransformation:
    return make_optimizer(spec.optimizer, lr, schedule=spec.schedule,
                          total_steps=spec.max_steps, clip_norm=spec.clip_norm)


def make_program(spec: RunSpec, n_classes: int, n_train: int, *,
                 make_tx: Callable = default_tx, return_params: bool = False,
                 merge_params: Callable | None = None) -> Program:
    """Build the pure functions of an arm.

    ``make_tx(spec, lr)`` builds the optimizer (override it for freezing/masking);
    ``merge_params(fresh_params, init_params)`` lets a caller start from given weights
    (transfer learning); it then receives ``init_params`` as the 4th argument of init/run.
    """
    if spec.batch_size > n_train:
        raise ValueError(f"batch size {spec.batch_size} is larger than the training split ({n_train})")
    model = build_model(spec, n_classes)
    bs = spec.batch_size
    steps_per_epoch = n_train // bs
    n_epochs = math.ceil(spec.max_steps / steps_per_epoch)
    n_evals = spec.n_evals

    def shuffles(key) -> jax.Array:
        """The data order of every epoch of the budget, (epochs, n_train) int32, on device:
        argsort of random bits from the run's data key (a tie, probability ~n^2/2^33 per
        epoch, keeps index order: still a permutation). Computed once per arm, outside the
        training program, so that timing calls and early-stopped runs do not redo it."""
        _, data_key, _ = split_key(key)
        return jnp.argsort(jax.random.bits(data_key, (n_epochs, n_train)), axis=-1).astype(
            jnp.int32)

    def init(key, lr, data, init_params=None, perms=None) -> TrainState:
        init_key, data_key, dropout_key = split_key(key)
        variables = init_variables(model, init_key, data["x_train"][:1])
        params = variables["params"]
        if merge_params is not None:
            params = merge_params(params, init_params)
        batch_stats = variables.get("batch_stats", {})
        opt_state = make_tx(spec, lr).init(params)
        perms = shuffles(key) if perms is None else perms
        return TrainState(params, batch_stats, opt_state, perms, dropout_key)

    def train_step(state: TrainState, t, lr, data):
        idx = jax.lax.dynamic_slice_in_dim(state.perms[t // steps_per_epoch],
                                           (t % steps_per_epoch) * bs, bs)
        xb, yb = data["x_train"][idx], data["y_train"][idx]
        rngs = {"dropout": jax.random.fold_in(state.dropout_key, t)}

        def loss_fn(params):
            logits, updates = model.apply({"params": params, "batch_stats": state.batch_stats},
                                          xb, train=True, mutable=["batch_stats"], rngs=rngs)
            return loss_and_accuracy(logits, yb, spec.loss)[0], updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        tx_updates, opt_state = make_tx(spec, lr).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, tx_updates)
        new = state._replace(params=params, opt_state=opt_state,
                             batch_stats=updates.get("batch_stats", state.batch_stats))
        return new, loss

    def train_chunk(state, t0, lr, data, n_steps):
        """``n_steps`` steps from step ``t0`` (a static int or a traced count); mean loss."""
        def body(j, carry):
            s, total = carry
            s, loss = train_step(s, t0 + j, lr, data)
            return s, total + loss

        state, total = jax.lax.fori_loop(0, n_steps, body, (state, jnp.float32(0.0)))
        return state, total / n_steps

    def evaluate(params, batch_stats, x, y):
        logits = model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
        return loss_and_accuracy(logits, y, spec.loss)

    def run(key, lr, data, init_params=None, ctrl=None, perms=None) -> Trace:
        """Train one seed. ``ctrl`` (unbatched, runtime values, see ``Control``) lets timing
        reuse this very executable: fewer evaluations, evaluation skipped, no early stop."""
        ctrl = full_control(spec) if ctrl is None else ctrl
        state = init(key, lr, data, init_params, perms)
        nan = jnp.full((n_evals,), jnp.nan, jnp.float32)
        curves0 = (nan, nan, nan)

        def cond(c):
            _, i, diverged, reached, _ = c
            return (i < ctrl.max_evals) & ~diverged & ~reached

        def body(c):
            state, i, _, _, (tl, el, ea) = c
            state, loss = train_chunk(state, i * spec.eval_every, lr, data, ctrl.chunk_steps)
            e_loss, e_acc = jax.lax.cond(
                ctrl.evaluate, lambda: evaluate(state.params, state.batch_stats,
                                                data["x_eval"], data["y_eval"]),
                lambda: (jnp.float32(jnp.nan), jnp.float32(jnp.nan)))
            diverged = ~jnp.isfinite(loss)
            curves = (tl.at[i].set(loss), el.at[i].set(e_loss), ea.at[i].set(e_acc))
            return state, i + 1, diverged, e_acc >= ctrl.target, curves

        state, n_done, diverged, _, (tl, el, ea) = jax.lax.while_loop(
            cond, body, (state, jnp.int32(0), jnp.bool_(False), jnp.bool_(False), curves0))
        t_loss, t_acc = jax.lax.cond(
            ctrl.evaluate, lambda: evaluate(state.params, state.batch_stats, data["x_test"],
                                            data["y_test"]),
            lambda: (jnp.float32(jnp.nan), jnp.float32(jnp.nan)))
        t_loss = jnp.where(diverged, jnp.nan, t_loss)
        t_acc = jnp.where(diverged, jnp.nan, t_acc)
        steps = (jnp.arange(n_evals, dtype=jnp.int32) + 1) * spec.eval_every
        return Trace(steps, tl, el, ea, n_done, diverged, t_loss, t_acc,
                     state.params if return_params else None)

    return Program(shuffles, init, train_chunk, evaluate, run)


def first_reach(steps: np.ndarray, acc: np.ndarray, n_done: int, target: float) -> int | None:
    """The first evaluated step whose accuracy is >= target, or None if never (censored)."""
    hits = np.flatnonzero(np.asarray(acc[:n_done]) >= target)
    return int(steps[hits[0]]) if hits.size else None
