"""Flax MLP builder: widths, activation, initializer, batch norm and its placement, dropout.

Layers are named ``hidden_0..hidden_{d-1}`` (Dense), ``bn_i`` (BatchNorm) and ``head`` so that
other experiments (transfer) can address them. A Dense layer that is directly followed by a
BatchNorm has no bias (BN's shift makes it redundant).
"""

from __future__ import annotations

import flax.linen as nn

from dnnbench.registry import ACTIVATIONS, INITIALIZERS, lookup
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
