"""The one route from a run specification to its optax transformation: :func:`make_tx`.

The engine's train step, the transfer protocol's frozen and trainable parts and the
learning-rate range test (a schedule plug-in) all build their optimizer here, and the
learning rate the results record (:func:`learning_rate_at`) is the same schedule.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import optax

from dnnbench.registry import (
    get_optimizer,
    get_schedule,
    is_static_zero,
    make_clipping,
)
from dnnbench.spec import OPTIMIZER_PREFIX, SCHEDULE_PREFIX, RunSpec

# the optimizer coefficient that a schedule with a momentum cycle (1cycle) schedules: the first
# of these that the optimizer has
CYCLED = ("momentum", "b1")


def setting(spec: RunSpec, hp: Mapping, name: str):
    """A lane setting of one run: its lane value where it is a lane of the program (traced),
    else the spec's number (compiled in)."""
    return hp[name] if name in hp else getattr(spec, name)


def _set_values(static: tuple, hp: Mapping, prefix: str) -> dict:
    """The spec's ``static`` pairs overridden by the lanes named ``prefix + name``."""
    return {**dict(static), **{k[len(prefix):]: v for k, v in hp.items() if k.startswith(prefix)}}


def schedule_parameters(spec: RunSpec, hp: Mapping) -> dict:
    """Every parameter of the run's schedule: its lane values, else the spec's, else the
    schedule's defaults."""
    return get_schedule(spec.schedule).resolve(
        _set_values(spec.schedule_params, hp, SCHEDULE_PREFIX), spec.schedule)


def learning_rate_at(spec: RunSpec, hp: Mapping, count):
    """The learning rate of one run's schedule at update ``count`` (0 = the first step): what
    :func:`make_tx` scales the update of that count by (performance scheduling aside: its
    factor is the training loop's)."""
    return get_schedule(spec.schedule).factory(setting(spec, hp, "learning_rate"),
                                               spec.max_steps, **schedule_parameters(spec, hp))(
        count)


def _kernels(params):
    """True for the kernels of ``params``, False for biases and normalization parameters."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def make_tx(spec: RunSpec, hp: Mapping | None = None, *, learning_rate=None,
            flat: bool = True) -> optax.GradientTransformation:
    """The optimizer of one run: ``spec`` gives the structure (optimizer, schedule, clipping
    kind, what decay applies to), ``hp`` the lane values (``learning_rate``, ``clip_norm``,
    ``opt.<coefficient>``, ``sched.<parameter>``: numbers or traced; a lane absent from ``hp``
    is the spec's number), ``learning_rate`` the peak rate instead of the run's. The chain::

        optax.chain(
            clipping of kind spec.clip at clip_norm     (absent when off: kind "none" or 0)
            optax.flatten(                              (one raveled vector, when ``flat`` and
                                                        decay is not limited to the kernels)
                the optimizer's direction               (its coefficients; 1cycle cycles its
                                                        momentum or b1: inject_hyperparams)
                decoupled weight decay                  (optax.add_decayed_weights, on the
                                                        parameters of spec.decay_params)
                the learning rate or its schedule       (optax.scale_by_learning_rate; the
                                                        plain rate for constant schedules)
            ))

    Without decoupled decay (weight decay 0), or with an optimizer that has it natively
    (adamw, a plug-in taking ``weight_decay``), the last three are the optimizer's own optax
    alias ``factory(rate, **coefficients)``, itself the chain (direction, [decay,] rate);
    otherwise the direction is the factory at rate 1 (the registry's factories scale by the
    rate last), followed by the decay and the rate.

    Clipping sees the gradient tree (a tensor's own norm needs its tensors); ``flat`` (the
    engine's default) runs the rest on one raveled vector: the same formulas as one fused
    update, which compiles faster (its float32 results may differ from the tree's in the last
    bit); without it (the transfer protocol's ``optax.multi_transform`` parts) on the tree.
    """
    hp = {} if hp is None else hp
    opt = get_optimizer(spec.optimizer)
    coef = opt.resolve(_set_values(spec.optimizer_params, hp, OPTIMIZER_PREFIX), spec.optimizer)
    sched = get_schedule(spec.schedule)
    params = schedule_parameters(spec, hp)
    peak = setting(spec, hp, "learning_rate") if learning_rate is None else learning_rate
    rate = peak if sched.constant else sched.factory(peak, spec.max_steps, **params)
    factory = opt.factory
    cycled = next((k for k in CYCLED if k in coef), None)
    if sched.momentum is not None and cycled is not None:
        coef[cycled] = sched.momentum(spec.max_steps, **params)
        factory = optax.inject_hyperparams(factory)
    mask = _kernels if spec.decay_params == "kernels" else None
    decay = None if opt.native_decay else coef.pop("weight_decay")
    if decay is None or is_static_zero(decay):  # the optimizer's own chain
        native_mask = {} if mask is None or decay is not None else {"mask": mask}
        tx = factory(rate, **coef, **native_mask)
    else:  # the direction at rate 1 (sign flipped), + wd * params, then scaled by the rate
        tx = optax.chain(factory(1.0, **coef), optax.add_decayed_weights(-decay, mask),
                         optax.scale_by_learning_rate(rate, flip_sign=False))
    if flat and mask is None:
        tx = optax.flatten(tx)
    clipping = make_clipping(spec.clip, setting(spec, hp, "clip_norm"))
    return tx if clipping is None else optax.chain(clipping, tx)
