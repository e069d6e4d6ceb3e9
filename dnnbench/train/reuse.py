"""Reusing the layers of a trained network: its first hidden layers as the starting point of
another, frozen for a number of steps and then trained at their own learning rate (the
transfer protocol's B-on-A)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dnnbench.spec import RunSpec
from dnnbench.train import optim


class FrozenUntilState(NamedTuple):
    count: jax.Array  # int32 steps seen
    inner: Any


def frozen_until(inner: optax.GradientTransformation, freeze_steps: int
                 ) -> optax.GradientTransformation:
    """``inner``, except that its first ``freeze_steps`` updates are exactly ``-0.0``.

    While frozen the inner state does not advance (momentum etc. start at unfreezing), and
    the update is selected with ``jnp.where``, so NaN/inf gradients cannot leak into it.
    ``p + (-0.0)`` is ``p`` bit for bit for every float ``p`` (including ``-0.0`` and NaN).
    """

    def init(params):
        return FrozenUntilState(jnp.zeros((), jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        new_updates, new_inner = inner.update(updates, state.inner, params)
        frozen = state.count < freeze_steps
        new_updates = jax.tree_util.tree_map(
            lambda u: jnp.where(frozen, jnp.array(-0.0, u.dtype), u), new_updates)
        new_inner = jax.tree_util.tree_map(lambda old, new: jnp.where(frozen, old, new),
                                           state.inner, new_inner)
        return new_updates, FrozenUntilState(optax.safe_int32_increment(state.count), new_inner)

    return optax.GradientTransformation(init, update)


def layer_labels(reuse_layers: int) -> Callable[[Any], Any]:
    """params -> the same tree of "reused" (hidden_0..hidden_{K-1}) / "trainable" labels."""
    reused = {f"hidden_{i}" for i in range(reuse_layers)}

    def labels(params):
        return {name: jax.tree_util.tree_map(
            lambda _, n=name: "reused" if n in reused else "trainable", sub)
            for name, sub in params.items()}

    return labels


def transfer_tx(reuse_layers: int, freeze_steps: int, unfreeze_lr: float | None) -> Callable:
    """The engine's ``make_tx(spec, hp)`` for B-on-A: reused layers frozen, then
    ``unfreeze_lr`` (None: the run's rate, a lane value where the rate is one)."""

    def make_tx(spec: RunSpec, hp) -> optax.GradientTransformation:
        return optax.multi_transform(  # each part: the run's optimizer, on its part's tree
            {"trainable": optim.make_tx(spec, hp, flat=False),
             "reused": frozen_until(optim.make_tx(spec, hp, learning_rate=unfreeze_lr,
                                                  flat=False), freeze_steps)},
            layer_labels(reuse_layers))

    return make_tx


def hidden_layers(params: dict, reuse_layers: int) -> dict:
    """The first ``reuse_layers`` hidden layers of a parameter tree (A's head is never reused)."""
    return {f"hidden_{i}": params[f"hidden_{i}"] for i in range(reuse_layers)}


def reuse_params(fresh: dict, init_params: dict) -> dict:
    """The engine's ``merge_params``: A's layers where given, fresh layers and head elsewhere."""
    return {name: init_params.get(name, sub) for name, sub in fresh.items()}
