"""Flax MLP builder: widths, activation, initializer, batch norm and its placement, dropout.

Layers are named ``hidden_0..hidden_{d-1}`` (Dense), ``bn_i`` (BatchNorm) and ``head`` so that
other experiments (transfer) can address them. A Dense layer that is directly followed by a
BatchNorm has no bias (BN's shift makes it redundant).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dnnbench.registry import ACTIVATIONS, INITIALIZERS, STANDARD_DRAWS, lookup
from dnnbench.spec import RunSpec


class MLP(nn.Module):
    widths: tuple[int, ...]
    n_out: int
    activation: str = "relu"
    initializer: str = "he-normal"
    head_init: str = "glorot-uniform"
    norm: str = "none"
    norm_position: str = "before"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_logits: bool = False
    dropout: float = 0.0

    def _bn(self, x, train: bool, name: str):
        return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                            epsilon=self.bn_epsilon, name=name)(x)

    @nn.compact
    def __call__(self, x, train: bool = False):
        act = lookup(ACTIVATIONS, self.activation, "activation")
        kernel_init = lookup(INITIALIZERS, self.initializer, "initializer")()
        bn_before = self.norm == "batch" and self.norm_position == "before"
        bn_after = self.norm == "batch" and self.norm_position == "after"
        for i, width in enumerate(self.widths):
            x = nn.Dense(width, use_bias=not bn_before, kernel_init=kernel_init,
                         name=f"hidden_{i}")(x)
            if bn_before:
                x = self._bn(x, train, f"bn_{i}")
            x = act(x)
            if bn_after:
                x = self._bn(x, train, f"bn_{i}")
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        head_init = lookup(INITIALIZERS, self.head_init, "initializer")()
        x = nn.Dense(self.n_out, use_bias=not self.bn_logits, kernel_init=head_init,
                     name="head")(x)
        if self.bn_logits:
            x = self._bn(x, train, "bn_head")
        return x


def build_model(spec: RunSpec, n_classes: int) -> MLP:
    if spec.norm not in ("none", "batch"):
        raise ValueError(f"unknown norm {spec.norm!r}; choose from: none, batch")
    if spec.norm_position not in ("before", "after"):
        raise ValueError(f"unknown BN position {spec.norm_position!r}; choose from: before, after")
    n_out = 1 if spec.loss == "sigmoid" else n_classes
    return MLP(widths=spec.widths, n_out=n_out, activation=spec.activation, initializer=spec.init,
               head_init=spec.head_init, norm=spec.norm, norm_position=spec.norm_position,
               bn_momentum=spec.bn_momentum, bn_epsilon=spec.bn_epsilon,
               bn_logits=spec.bn_logits, dropout=spec.dropout)


_CONSTANT_LEAVES = {"bias": jnp.zeros, "scale": jnp.ones, "mean": jnp.zeros, "var": jnp.ones}


def init_variables(model: MLP, key: jax.Array, x: jax.Array) -> dict:
    """Initial variables of ``model``: the same distributions as ``model.init``, but every
    kernel is carved out of ONE random draw per distribution, scaled per layer.

    XLA compiles a separate random-number kernel for every distinct shape drawn (about 0.5 s
    each on a CPU), so this makes an arm's program compile several seconds faster. Biases and
    BN shifts start at 0, BN scales and running variances at 1, running means at 0.
    """
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
    layers = {name: leaves["kernel"].shape for name, leaves in shapes["params"].items()
              if "kernel" in leaves}
    inits = {name: lookup(INITIALIZERS, model.head_init if name == "head" else model.initializer,
                          "initializer") for name in layers}
    kernels = {}
    dists = sorted({i.distribution for i in inits.values()})
    for dist, k in zip(dists, jax.random.split(key, len(dists)), strict=True):
        names = [n for n in sorted(layers) if inits[n].distribution == dist]
        flat = STANDARD_DRAWS[dist](k, sum(math.prod(layers[n]) for n in names))
        offset = 0
        for n in names:
            (fan_in, fan_out), size = layers[n], math.prod(layers[n])
            kernels[n] = (flat[offset:offset + size].reshape(fan_in, fan_out)
                          * inits[n].multiplier(fan_in, fan_out))
            offset += size

    def leaf(path, sd):
        name = path[-1].key
        if name == "kernel":
            return kernels[path[-2].key]
        return _CONSTANT_LEAVES[name](sd.shape, sd.dtype)

    return jax.tree_util.tree_map_with_path(leaf, shapes)
