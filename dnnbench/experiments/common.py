"""Named arms and per-seed result rows for the regression profiles of `dnnbench check` (their
``depth_sweep`` and ``optimizers`` tables; experiments themselves go through
``experiments.generic``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnnbench.spec import RunSpec, widths_str
from dnnbench.train.arm import ArmResult
from dnnbench.train.engine import first_reach


@dataclass(frozen=True)
class Arm:
    """A named spec within an experiment; ``labels`` become columns of its rows."""

    name: str
    spec: RunSpec
    labels: tuple[tuple[str, Any], ...] = ()


def spec_columns(spec: RunSpec) -> dict[str, Any]:
    return {"depth": spec.depth, "widths": widths_str(spec.widths), "activation": spec.activation,
            "init": spec.init, "bn": spec.norm == "batch", "bn_position": spec.norm_position,
            "bn_momentum": spec.bn_momentum, "optimizer": spec.optimizer,
            "learning_rate": spec.learning_rate, "batch_size": spec.batch_size}


def seed_rows(result: ArmResult, seeds: Sequence[int], target: float | None) -> list[dict]:
    """Per-seed outcome of a vmapped arm: steps-to-target (None = censored), accuracies, timing."""
    tr, tm = result.trace, result.timing
    rows = []
    for i, seed in enumerate(seeds):
        n_done = int(tr.n_done[i])
        acc = np.asarray(tr.eval_acc[i], dtype=float)
        diverged = bool(tr.diverged[i])
        steps = None if (diverged or target is None) else first_reach(tr.steps[i], acc, n_done, target)
        valid = acc[:n_done]
        valid = valid[np.isfinite(valid)]
        final = float(valid[-1]) if valid.size and not diverged else np.nan
        rows.append({
            "seed": int(seed), "target": target, "reached": steps is not None,
            "steps_to_target": steps, "steps_done": int(tr.steps[i][n_done - 1]) if n_done else 0,
            "diverged": diverged, "final_eval_accuracy": final,
            "best_eval_accuracy": float(valid.max()) if valid.size and not diverged else np.nan,
            "final_test_accuracy": float(tr.test_acc[i]),
            "compile_s": tm.compile_s, "step_ms": tm.step_ms, "eval_ms": tm.eval_ms,
            "time_to_target_s": steps * tm.step_ms / 1e3 if steps is not None else np.nan,
        })
    return rows
