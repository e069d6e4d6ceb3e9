"""The normalization registry: name -> how a hidden layer of the MLP is normalized.

A normalization either adds a layer after each hidden Dense layer, before or after the
activation (``spec.norm_position``): batch norm (statistics of the mini-batch per unit;
running averages at evaluation, see ``spec.bn_eval``), layer norm (per example, over the
units of the layer) and group norm (per example, over groups of ``spec.norm_groups`` units);
or it reparameterizes the Dense layer itself: weight normalization, w = g v / ||v|| per unit
(v is the Dense layer's ``kernel``, g its ``scale``). Every one is a Flax library layer; their
epsilon is ``spec.bn_epsilon``. Batch norm on the inputs (``spec.input_norm``) is separate: a
BatchNorm layer named ``bn_input`` before the first Dense layer, as Keras'
``BatchNormalization`` right after ``Flatten``.

Layer names: ``<prefix>_<i>`` after ``hidden_<i>`` (``bn_i``, ``ln_i``, ``gn_i``; ``wn_i``
holds the scales of weight normalization, ``hidden_<i>`` keeps its kernel and bias).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn

from dnnbench.registry import lookup


@dataclasses.dataclass(frozen=True)
class Normalization:
    about: str
    prefix: str = ""  # name prefix of its layers
    # (model, name, train) -> a layer applied to the (batch, units) activations
    layer: Callable | None = None
    # (dense, name) -> the Dense layer reparameterized (weight normalization)
    wrap: Callable | None = None
    drops_bias: bool = False  # a Dense layer right before it has no bias (the shift cancels)
    batch_stats: bool = False  # normalizes with batch statistics (running averages kept)


def batch_norm(model, name: str, train: bool) -> nn.Module:
    return nn.BatchNorm(use_running_average=not train, momentum=model.bn_momentum,
                        epsilon=model.bn_epsilon, name=name)


NORMALIZATIONS: dict[str, Normalization] = {
    "none": Normalization("no normalization"),
    "batch": Normalization("batch norm: per unit, over the mini-batch (running averages at "
                           "evaluation)", "bn", batch_norm, drops_bias=True, batch_stats=True),
    "layer": Normalization("layer norm: per example, over the units of the layer", "ln",
                           lambda m, name, train: nn.LayerNorm(epsilon=m.bn_epsilon, name=name)),
    "weight": Normalization("weight normalization: w = g v / ||v|| per unit", "wn",
                            wrap=lambda dense, name: nn.WeightNorm(dense, name=name)),
    "group": Normalization("group norm: per example, over groups of norm_groups units", "gn",
                           lambda m, name, train: nn.GroupNorm(num_groups=m.norm_groups,
                                                               epsilon=m.bn_epsilon,
                                                               name=name)),
}

# the settings of the evaluation statistics of batch norm (spec.bn_eval)
BN_EVAL = {
    "running": "the running averages of training (as deployed)",
    "population": "the statistics of the training split under the current weights, recomputed "
                  "at every evaluation (the mean over blocks of 2,000 training examples of "
                  "each block's statistics)",
    "batch": "the statistics of each evaluated batch of bn_eval_batch examples",
}


def get_normalization(name: str) -> Normalization:
    return lookup(NORMALIZATIONS, name, "normalization")


def listing() -> str:
    """The registry in one line, for `dnnbench list`."""
    return "; ".join(f"{name} ({n.about})" for name, n in NORMALIZATIONS.items()) + \
        "; positions: norm_position before/after the activation; input_norm: BN on the " \
        "inputs; bn_eval: " + ", ".join(BN_EVAL)
