"""The figure of the learning-rate range test: loss against learning rate (log axis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.report.figures import PALETTE, save_figure
from dnnbench.run.lr_find import RULE, overall


def plot_lr_find(curves: pd.DataFrame, runs_path: Path, title: str) -> list[Path]:
    """``<stem>-loss-vs-lr.png/svg`` next to the runs CSV: every seed's loss (thin), the
    smoothed mean (thick), the turning point and the suggestion (dashed lines)."""
    from matplotlib.figure import Figure


    s = overall(curves)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for _, g in curves.groupby("seed"):
        ax.plot(g["learning_rate"], g["loss"], color="0.7", lw=0.6)
    lr = curves.groupby("step")["learning_rate"].first().sort_index().to_numpy()[:s.steps]
    ax.plot(lr, s.smoothed, color=PALETTE[0], lw=2, label="smoothed mean over seeds")
    ax.axvline(s.turning_lr, color=PALETTE[3], ls="--", lw=1,
               label=f"loss starts to climb: {s.turning_lr:.3g}")
    ax.axvline(s.suggested_lr, color=PALETTE[2], ls="--", lw=1.5,
               label=f"suggested (/10): {s.suggested_lr:.3g}")
    ax.set_xscale("log")
    start = float(np.nanmax(s.smoothed[: max(1, s.steps // 10)]))
    ax.set_ylim(max(0.0, s.min_loss - 0.1 * (start - s.min_loss)),
                start + 0.6 * (start - s.min_loss) + 1e-6)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss of the step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    n = curves["seed"].nunique()
    fig.suptitle(f"{title} ({n} seeds)", fontsize=11)
    ax.set_title(RULE.replace(" (mean", "\n(mean"), fontsize=7)
    stem = Path(str(runs_path).removesuffix("-runs.csv") + "-loss-vs-lr")
    return save_figure(fig, stem)
