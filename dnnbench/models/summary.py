"""A Keras-like model summary of the MLP: per layer, its output shape and parameters, trainable
(``params``) and non-trainable (``batch_stats``: BN's running mean and variance, which Keras
counts as non-trainable parameters).

The counts come from the shapes of the model's own variables (``model.init`` traced, nothing
computed); the rows follow the order in which the layers are called.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from dnnbench.models.mlp import MLP
from dnnbench.models.norms import get_normalization

LAYER_TYPES = {"hidden": "Dense", "head": "Dense", "bn": "BatchNormalization",
               "ln": "LayerNormalization", "gn": "GroupNormalization",
               "wn": "WeightNormalization"}


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    units: int  # output shape: (None, units)
    trainable: int
    non_trainable: int

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


def _size(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def layer_rows(model: MLP, n_in: int) -> list[LayerRow]:
    """The layers of ``model`` on inputs of ``n_in`` features, in call order, from "flatten"
    (the inputs, no parameters) to the head."""
    x = jax.ShapeDtypeStruct((1, n_in), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    params, stats = shapes["params"], shapes.get("batch_stats", {})
    prefix = get_normalization(model.norm).prefix
    order = [("bn_input", n_in)]
    for i, width in enumerate(model.widths):
        order += [(f"hidden_{i}", width), (f"wn_{i}", width), (f"{prefix}_{i}", width)]
    order += [("head", model.n_out), ("bn_head", model.n_out)]
    rows = [LayerRow("flatten", "Flatten", n_in, 0, 0)]
    for name, units in order:
        if name in params or name in stats:
            rows.append(LayerRow(name, LAYER_TYPES[name.split("_")[0]], units,
                                 _size(params.get(name, {})), _size(stats.get(name, {}))))
    listed = {r.name for r in rows}
    missing = sorted((set(params) | set(stats)) - listed)
    if missing:  # a layer kind this table does not know: a bug, not a row to drop silently
        raise RuntimeError(f"model summary: layers {missing} are not in the layer order")
    return rows


def totals(rows: list[LayerRow]) -> dict[str, int]:
    return {"params": sum(r.params for r in rows),
            "trainable": sum(r.trainable for r in rows),
            "non_trainable": sum(r.non_trainable for r in rows)}
