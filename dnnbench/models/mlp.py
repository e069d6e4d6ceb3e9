"""Flax MLP builder: widths, activation, initializer, normalization and its placement
(:mod:`dnnbench.models.norms`), dropout (standard or alpha).

Layers are named ``hidden_0..hidden_{d-1}`` (Dense), ``bn_i`` (BatchNorm; ``ln_i``, ``gn_i``,
``wn_i`` for the other normalizations, ``bn_input`` on the inputs) and ``head`` so that other
experiments (transfer) can address them. A Dense layer that is directly followed by a
BatchNorm has no bias (BN's shift makes it redundant). PReLU's learned slopes are
``prelu_i``.

Every hidden layer sows its pre-activations (the activation's input) and activations (its
output) into the ``intermediates`` collection as ``pre_i`` / ``act_i``: free unless a caller
asks for that collection (the per-layer diagnostics of :mod:`dnnbench.train.engine`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dnnbench import choices
from dnnbench.models.norms import batch_norm, get_normalization
from dnnbench.registry import (
    ACTIVATION_PARAMS,
    DROPOUTS,
    LOSSES,
    PRELU_INIT,
    STANDARD_DRAWS,
    Initializer,
    get_activation,
    get_initializer,
    get_model,
    lookup,
    standard_dropout,
)
from dnnbench.spec import RunSpec, check_norm

dropout = standard_dropout  # inverted dropout: registry.DROPOUTS["standard"]


class MLP(nn.Module):
    widths: tuple[int, ...]
    n_out: int
    activation: str = "relu"
    initializer: str = "he-normal"
    init_scale: float = 0.0  # the hidden initializer's variance scale; 0: the initializer's own
    head_init: str = "glorot-uniform"
    norm: str = "none"
    norm_position: str = "before"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_logits: bool = False
    dropout: float = 0.0  # a number, or a traced lane value (then dropout is always applied)
    dropout_inputs: bool = False  # dropout on the inputs too (before every dense layer)
    dropout_kind: str = "standard"  # a name of registry.DROPOUTS
    leaky_slope: float = 0.01  # leaky_relu's negative slope: a number or a traced lane value

    norm_groups: int = 4  # group norm: groups of units per layer
    input_norm: bool = False  # batch norm on the inputs, before the first Dense layer

    def _bn(self, x, train: bool, name: str):
        return batch_norm(self, name, train)(x)

    def _activate(self, x, i: int):
        if self.activation == "prelu":
            return nn.PReLU(negative_slope_init=PRELU_INIT, name=f"prelu_{i}")(x)
        act = get_activation(self.activation)
        if self.activation in ACTIVATION_PARAMS:
            keyword, setting = ACTIVATION_PARAMS[self.activation]
            return act(x, **{keyword: getattr(self, setting)})
        return act(x)

    @nn.compact
    def __call__(self, x, train: bool = False, stochastic: bool | None = None):
        """Logits of ``x``; ``train``: BN normalizes by the batch and updates its averages,
        dropout is applied; ``stochastic`` (default: ``train``) applies dropout on its own
        (MC dropout: evaluation mode with dropout)."""
        drop = (train if stochastic is None else stochastic) and not _is_zero(self.dropout)
        drop_fn = lookup(DROPOUTS, self.dropout_kind, "dropout kind")
        kernel_init = hidden_initializer(self)()
        norm = get_normalization(self.norm)
        before = norm.layer is not None and self.norm_position == "before"
        after = norm.layer is not None and self.norm_position == "after"
        if self.input_norm:
            x = self._bn(x, train, "bn_input")
        if drop and self.dropout_inputs:
            x = drop_fn(x, self.dropout, self.make_rng("dropout"))
        for i, width in enumerate(self.widths):
            dense = nn.Dense(width, use_bias=not (before and norm.drops_bias),
                             kernel_init=kernel_init, name=f"hidden_{i}")
            x = (dense if norm.wrap is None else norm.wrap(dense, f"{norm.prefix}_{i}"))(x)
            if before:
                x = norm.layer(self, f"{norm.prefix}_{i}", train)(x)
            self.sow("intermediates", f"pre_{i}", x)
            x = self._activate(x, i)
            self.sow("intermediates", f"act_{i}", x)
            if after:
                x = norm.layer(self, f"{norm.prefix}_{i}", train)(x)
            if drop:
                x = drop_fn(x, self.dropout, self.make_rng("dropout"))
        head_init = get_initializer(self.head_init)()
        x = nn.Dense(self.n_out, use_bias=not self.bn_logits, kernel_init=head_init,
                     name="head")(x)
        if self.bn_logits:
            x = self._bn(x, train, "bn_head")
        return x


def hidden_initializer(model: MLP) -> Initializer:
    """The initializer of ``model``'s hidden layers: its registry entry (or plug-in), at the
    model's ``init_scale`` where that is set (variance = init_scale / n)."""
    init = get_initializer(model.initializer)
    return dataclasses.replace(init, scale=float(model.init_scale)) if model.init_scale else init


def max_norm(params, r, which: str = "all"):
    """``params`` with every kernel's columns (a unit's incoming weights, Keras ``max_norm``
    axis 0) rescaled to norm <= ``r`` (a number or a traced lane value; inf leaves them);
    ``which`` "hidden": the output layer (``head``) left as it is."""
    def project(path, leaf):
        if path[-1].key != "kernel" or (which == "hidden" and path[0].key == "head"):
            return leaf
        norms = jnp.linalg.norm(leaf, axis=0, keepdims=True)
        return leaf * jnp.minimum(1.0, r / norms)
    return jax.tree_util.tree_map_with_path(project, params)


def _is_zero(value) -> bool:
    return isinstance(value, (int, float)) and value == 0


def n_outputs(spec: RunSpec, n_classes: int, n_features: int | None = None) -> int:
    """The model's output units: one per class, one for a binary loss, or one per input
    feature (``n_features``) for a reconstruction loss."""
    return lookup(LOSSES, spec.loss, "loss").outputs(n_classes, n_features)


def build_model(spec: RunSpec, n_classes: int, n_features: int | None = None) -> nn.Module:
    """The model of ``spec``: the MLP of its settings, or its model plug-in's module."""
    n_out = n_outputs(spec, n_classes, n_features)
    if spec.model != "mlp":
        return get_model(spec.model)(n_out)
    check_norm(spec)
    if spec.norm_position not in ("before", "after"):
        raise ValueError(f"unknown BN position {spec.norm_position!r}; choose from: before, after")
    if spec.dropout_placement not in choices.DROPOUT_PLACEMENTS:
        raise ValueError(f"unknown dropout placement {spec.dropout_placement!r}; choose from: "
                         f"{', '.join(choices.DROPOUT_PLACEMENTS)}")
    return MLP(widths=spec.widths, n_out=n_out, activation=spec.activation, initializer=spec.init,
               init_scale=spec.init_scale, head_init=spec.head_init, norm=spec.norm,
               norm_position=spec.norm_position,
               bn_momentum=spec.bn_momentum, bn_epsilon=spec.bn_epsilon,
               bn_logits=spec.bn_logits, dropout=spec.dropout,
               dropout_inputs=spec.dropout_placement == "dense", norm_groups=spec.norm_groups,
               input_norm=spec.input_norm, dropout_kind=spec.dropout_kind,
               leaky_slope=spec.leaky_slope)


def check_model(spec: RunSpec, n_features: int, n_classes: int) -> None:
    """ValueError (one line) where the model plug-in of ``spec`` cannot take a batch of the
    data's flat inputs, in training or evaluation, or gives other than (batch, outputs)
    logits; nothing for the MLP."""
    if spec.model == "mlp":
        return
    model = build_model(spec, n_classes, n_features)
    n_out = n_outputs(spec, n_classes, n_features)
    x = jax.ShapeDtypeStruct((2, n_features), jnp.float32)

    def both(x):
        key = jax.random.PRNGKey(0)
        variables = model.init({"params": key}, x, train=False)
        trained, _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                 rngs={"dropout": key})
        return trained, model.apply(variables, x, train=False)
    try:
        shapes = jax.eval_shape(both, x)
    except Exception as e:  # noqa: BLE001 - a user's module: one line
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"model plug-in {spec.model!r} failed on a batch of inputs of shape "
                         f"(batch, {n_features}): {type(e).__name__}: {first}") from None
    bad = [s.shape for s in shapes if getattr(s, "shape", None) != (2, n_out)]
    if bad:
        raise ValueError(f"model plug-in {spec.model!r} returned logits of shape {bad[0]} for "
                         f"a batch of 2, not (2, {n_out})")


def mlp_macs(n_in: int, widths, n_out: int) -> int:
    """Multiply-accumulates of one forward pass of one example through a dense MLP."""
    dims = [n_in, *widths, n_out]
    return sum(a * b for a, b in itertools.pairwise(dims))


def train_flops(n_in: int, widths, n_out: int, examples: int) -> float:
    """Training FLOPs: forward + backward ~ 3 x forward, 2 FLOPs per multiply-accumulate."""
    return 6.0 * mlp_macs(n_in, widths, n_out) * examples


def model_train_flops(spec: RunSpec, n_in: int, n_classes: int, examples: int) -> float:
    """Training FLOPs of ``examples`` examples through the model of ``spec``: the MLP's
    :func:`train_flops`, a model plug-in's from XLA's cost analysis of one forward pass
    (lowered, not compiled), x 3."""
    if spec.model == "mlp":
        return train_flops(n_in, spec.widths, n_outputs(spec, n_classes, n_in), examples)
    model = build_model(spec, n_classes, n_in)
    x = jax.ShapeDtypeStruct((examples, n_in), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x[:1], train=False), x)

    def forward(variables, x):
        return model.apply(variables, x, train=False)
    cost = jax.jit(forward).lower(shapes, x).cost_analysis() or {}
    return 3.0 * float(cost.get("flops", 0.0))


def eval_flops(n_in: int, widths, n_out: int, examples: int) -> float:
    """Forward-pass FLOPs of ``examples`` examples."""
    return 2.0 * mlp_macs(n_in, widths, n_out) * examples


_CONSTANT_LEAVES = {"bias": jnp.zeros, "scale": jnp.ones, "mean": jnp.zeros, "var": jnp.ones,
                    "negative_slope": lambda shape, dtype: jnp.full(shape, PRELU_INIT, dtype)}


def _kernel_layout(model: MLP, x: jax.Array):
    """(variable shapes, {layer: kernel shape}, {layer: Initializer}) of ``model``."""
    return _layout(model, jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype))


@functools.lru_cache(maxsize=64)
def _layout(model: MLP, x: jax.ShapeDtypeStruct):  # tracing a model costs ~0.1 s: once
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    layers = {name: leaves["kernel"].shape for name, leaves in shapes["params"].items()
              if "kernel" in leaves}
    inits = {name: get_initializer(model.head_init) if name == "head" else
             hidden_initializer(model) for name in layers}
    return shapes, layers, inits


def draw_sizes(model: MLP, x: jax.Array) -> tuple[tuple[str, int], ...]:
    """The standard draws that initialize ``model``: (distribution, count) pairs, sorted."""
    _, layers, inits = _kernel_layout(model, x)
    return tuple((dist, sum(math.prod(layers[n]) for n in layers
                            if inits[n].distribution == dist))
                 for dist in sorted({i.distribution for i in inits.values()}))


@functools.partial(jax.jit, static_argnames="sizes")
def standard_draws(keys: jax.Array, sizes: tuple[tuple[str, int], ...]) -> dict:
    """For each key (leading axis), ``count`` standard draws of each distribution in ``sizes``.

    A longer draw starts with the values of a shorter one (JAX's partitionable threefry keys
    every value by its index), so callers may round counts up to share one compiled draw."""
    def one(key):
        ks = jax.random.split(key, len(sizes))
        return {dist: STANDARD_DRAWS[dist](k, n) for (dist, n), k in zip(sizes, ks, strict=True)}
    return jax.vmap(one)(keys)


def init_variables(model: MLP, key: jax.Array, x: jax.Array, draws: dict | None = None,
                   hidden_gain=None) -> dict:
    """Initial variables of ``model``: the same distributions as ``model.init``, but every
    kernel is carved out of ONE random draw per distribution, scaled per layer.

    XLA compiles a separate random-number kernel for every distinct shape drawn (about 0.5 s
    each on a CPU), so this makes an arm's program compile several seconds faster. ``draws``
    (``standard_draws`` of ``key``, counts possibly rounded up) may be computed beforehand, in a
    program shared by many arms; the result is the same. Biases and BN shifts start at 0, BN
    scales and running variances at 1, running means at 0; weight normalization's scales g at
    the norms of their kernel's columns (w = g v / ||v|| = v: the initial function is that of
    the plain network, as Keras' WeightNormalization without data-dependent init).
    ``hidden_gain`` (a number or a traced lane value) multiplies the hidden layers' kernels
    (not the head's): sqrt(scale / model's scale) turns the initializer into the one of the
    same distribution and fan mode at another scale (He-normal into LeCun-normal).
    """
    shapes, layers, inits = _kernel_layout(model, x)
    if draws is None:
        draws = jax.tree_util.tree_map(lambda a: a[0],
                                       standard_draws(key[None], draw_sizes(model, x)))
    kernels = {}
    for dist in sorted({i.distribution for i in inits.values()}):
        names = [n for n in sorted(layers) if inits[n].distribution == dist]
        flat, offset = draws[dist], 0
        for n in names:
            (fan_in, fan_out), size = layers[n], math.prod(layers[n])
            kernels[n] = (flat[offset:offset + size].reshape(fan_in, fan_out)
                          * inits[n].multiplier(fan_in, fan_out))
            if hidden_gain is not None and n != "head":
                kernels[n] = kernels[n] * hidden_gain
            offset += size

    def leaf(path, sd):
        name = path[-1].key
        if name == "kernel":
            return kernels[path[-2].key]
        if name.endswith("/kernel/scale"):  # weight norm's g = ||v|| per unit: w = v at first
            return jnp.linalg.norm(kernels[name.split("/")[0]], axis=0).astype(sd.dtype)
        return _CONSTANT_LEAVES[name](sd.shape, sd.dtype)

    return jax.tree_util.tree_map_with_path(leaf, shapes)
