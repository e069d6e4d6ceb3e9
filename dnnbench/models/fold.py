"""Folding batch norm into the Dense layers of a trained MLP (inference only).

At evaluation a BN layer is a per-unit affine map, BN(x) = a x + c with a = gamma /
sqrt(var + eps) and c = beta - a mean (running averages, or any statistics given). A BN right
after a Dense layer (BN before the activation, BN of the logits) folds into that layer:
W' = a W (column-wise) and b' = a b + c = gamma (b - mean) / sqrt(var + eps) + beta. A BN
right before a Dense layer (BN on the inputs, BN after the activation) folds into the next
one: W' = diag(a) W and b' = b + c W. The folded model is the same MLP without normalization:
the same logits with fewer operations.
"""

from __future__ import annotations

import jax.numpy as jnp

from dnnbench.models.mlp import MLP


def _affine(params: dict, stats: dict, name: str, eps) -> tuple:
    a = params[name]["scale"] / jnp.sqrt(stats[name]["var"] + eps)
    return a, params[name]["bias"] - a * stats[name]["mean"]


def fold_batch_norm(model: MLP, variables: dict) -> tuple[MLP, dict]:
    """(the model without batch norm, its variables) computing the same evaluation-mode
    logits as ``model`` with ``variables`` (``params`` and ``batch_stats``)."""
    if model.norm not in ("none", "batch"):
        raise ValueError(f"only batch norm folds into the Dense layers, not norm {model.norm!r}")
    params, stats = variables["params"], variables.get("batch_stats", {})
    eps = model.bn_epsilon
    dense = [f"hidden_{i}" for i in range(len(model.widths))] + ["head"]
    folded = {}
    for name in dense:
        kernel = params[name]["kernel"]
        bias = params[name].get("bias", jnp.zeros(kernel.shape[1], kernel.dtype))
        folded[name] = {"kernel": kernel, "bias": bias}

    def into_next(bn: str, layer: str):  # BN right before the Dense layer ``layer``
        a, c = _affine(params, stats, bn, eps)
        k, b = folded[layer]["kernel"], folded[layer]["bias"]
        folded[layer] = {"kernel": a[:, None] * k, "bias": b + c @ k}

    def into_previous(bn: str, layer: str):  # BN right after the Dense layer ``layer``
        a, c = _affine(params, stats, bn, eps)
        k, b = folded[layer]["kernel"], folded[layer]["bias"]
        folded[layer] = {"kernel": k * a[None, :], "bias": a * b + c}

    if model.input_norm:
        into_next("bn_input", dense[0])
    if model.norm == "batch":
        for i in range(len(model.widths)):
            if model.norm_position == "before":
                into_previous(f"bn_{i}", dense[i])
            else:
                into_next(f"bn_{i}", dense[i + 1])
    if model.bn_logits:
        into_previous("bn_head", "head")
    plain = model.clone(norm="none", input_norm=False, bn_logits=False)
    return plain, {"params": folded}
