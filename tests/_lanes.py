"""Comparing vectorized lanes with separate runs: a tolerance that is justified and can fail."""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------- vectorized lanes vs separate runs
# Lanes of one program and the same runs made separately differ only in float32 rounding: the
# vmapped batch of a device (and the split over CPU devices, DNNBENCH_CPU_DEVICES) changes how
# XLA fuses and orders the reductions of a step (matrix products, loss means), an error of a
# few float32 ulps (~1e-7 relative) per step. Training amplifies it: measured on this project's
# 2-core machine, 3.7e-5 relative in an eval loss after 124 Adam steps at lr 0.03 (a run that is
# bit-identical with one device). LANE_RTOL leaves a 25x margin for other CPUs and device
# splits; a real mistake (a wrong hyper-parameter in one lane) moves the curves by orders of
# magnitude more, which every test that uses this asserts with a negative control
# (``assert_lanes_differ``). Accuracies are counts: one example may flip near the boundary.
LANE_RTOL = 1e-3
LANE_ATOL = 1e-5
LANE_FIELDS = ("train_loss", "eval_loss", "eval_acc", "test_loss", "test_acc")


def lane_mismatch(a, b, n_eval: int) -> list[str]:
    """The fields in which two traces (same seeds) differ beyond float32 reassociation noise."""
    bad = []
    for field in LANE_FIELDS:
        x, y = np.asarray(getattr(a, field), float), np.asarray(getattr(b, field), float)
        atol = 2.0 / n_eval + 1e-6 if field.endswith("acc") else LANE_ATOL
        if x.shape != y.shape or not np.allclose(x, y, rtol=LANE_RTOL, atol=atol,
                                                 equal_nan=True):
            bad.append(field)
    return bad


def assert_lanes_match(a, b, n_eval: int, what: str = "") -> None:
    bad = lane_mismatch(a, b, n_eval)
    assert not bad, f"{what}: lanes differ from separate runs in {bad}"


def assert_lanes_differ(a, b, n_eval: int, what: str = "") -> None:
    """Negative control: runs with a different hyper-parameter are told apart by the same
    tolerance (else ``assert_lanes_match`` could not fail on a wrong lane value)."""
    assert {"train_loss", "eval_loss"} <= set(lane_mismatch(a, b, n_eval)), \
        f"{what}: the tolerance cannot tell a wrong hyper-parameter apart"
