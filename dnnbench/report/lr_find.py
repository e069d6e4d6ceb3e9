"""The figure of the learning-rate range test: loss against learning rate (log axis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.report.figures import PALETTE, save_figure
from dnnbench.run.lr_find import RULE, overall


def plot_lr_find(curves: pd.DataFrame, runs_path: Path, title: str) -> list[Path]:
    """``<stem>-loss-vs-lr.png/svg`` next to the runs CSV (:func:`lr_find_figure`)."""
    stem = Path(str(runs_path).removesuffix("-runs.csv") + "-loss-vs-lr")
    return save_figure(lr_find_figure(curves, title), stem)


def lr_find_figure(curves: pd.DataFrame, title: str):
    """Every seed's loss against the learning rate (thin), the smoothed mean (thick), the
    turning point and the suggestion (dashed lines)."""
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
    return fig


def lr_find_section(rs, render_figures: bool = True):
    """The report section of a range test's results: the arm and optimizer tested, the
    suggestion and the rule, the per-seed table and the figure."""
    from dnnbench.report.document import FigureItem, Section, TableItem, meta_rows
    from dnnbench.report.figures import figure_bytes
    from dnnbench.results.io import read_curves
    from dnnbench.run.lr_find import RULE, arm_words

    meta = rs.meta
    dataset = (meta.get("dataset") or {}).get("name", "")
    config = meta.get("config") or {}
    source = meta.get("experiment_file") or rs.experiment
    arm = arm_words(config.get("arm") or {})
    runs = rs.runs
    table = pd.DataFrame({
        "seed": runs["seed"].astype(str),
        "loss starts to climb at": runs["turning_lr"].map(lambda v: f"{v:.3g}"),
        "suggested": runs["suggested_lr"].map(lambda v: f"{v:.3g}"),
        "steps done": runs["steps_done"].astype(str),
        "diverged": runs["diverged"].map(lambda v: "yes" if str(v).lower() == "true" else "no")})
    figs = []
    if render_figures:
        curves = read_curves(rs.runs_path, meta=meta)
        title = f"Learning-rate range test: {source} on {dataset}"
        figs.append(FigureItem("loss-vs-lr", f"{rs.stem}-loss-vs-lr.png",
                               "Training loss of each step against its learning rate (log "
                               "scale): each seed (thin), the smoothed mean, the turning point "
                               "and the suggestion.",
                               figure_bytes(lr_find_figure(curves, title))))
    suggested, turning = (meta.get(k, float("nan")) for k in ("suggested_lr", "turning_lr"))
    suggestion = f"Suggested learning rate: {suggested:.3g} (the loss starts to climb at " \
        f"{turning:.3g})."
    bullets = [f"Tested arm: {arm} (the reference arm of {source}).", suggestion,
               f"Rule: {meta.get('rule') or RULE}."]
    if meta.get("climbed") is False:
        bullets.append("The smoothed loss did not climb before the largest rate: the "
                       "suggestion is a lower bound.")
    lo, hi = config.get("min_lr"), config.get("max_lr")
    return Section(anchor=rs.stem, title=f"Learning-rate range test: {source} — {dataset}",
                   experiment=rs.experiment,
                   intro=(f"Which learning rate does the range test suggest for {source}'s "
                          f"arm? The rate grows exponentially from {lo:g} to {hi:g} over "
                          f"{config.get('steps')} steps." if lo and hi else ""),
                   command=str(meta.get("command", "")), bullets=bullets,
                   tables=[TableItem(f"Per seed ({len(runs)} seeds)", table)], figures=figs,
                   meta=meta_rows(meta, rs.runs_path.name), runs_file=rs.runs_path.name,
                   dataset=dataset, packaged=str(source),
                   headline=f"Suggested learning rate {meta.get('suggested_lr', 0):.3g} for "
                            f"{arm}.")
