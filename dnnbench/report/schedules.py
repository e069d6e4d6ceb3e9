"""Figures of an experiment whose arms follow learning-rate schedules: the learning rate and
the validation accuracy against the step, and speed against quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.experiments.files import Experiment


def has_schedules(curves: pd.DataFrame) -> bool:
    """Whether the learning rate of some arm changes during training."""
    return "learning_rate" in curves and bool(
        (curves.groupby("arm")["learning_rate"].nunique() > 1).any())


def plot_schedules(exp: Experiment, runs: pd.DataFrame, curves: pd.DataFrame,
                   runs_path: Path) -> list[Path]:
    """``<stem>-learning-rate.png/svg``: per arm, the learning rate (log axis) and the mean
    eval accuracy over seeds against the step; ``<stem>-speed-vs-quality.png/svg``: per arm,
    the Kaplan-Meier median steps to target against the mean final eval accuracy (95%
    intervals)."""
    from matplotlib.figure import Figure

    from dnnbench.experiments.generic import summarize
    from dnnbench.report.figures import PALETTE, save_figure
    from dnnbench.report.generic import LABELS

    stem = str(runs_path).removesuffix("-runs.csv")
    arms = list(dict.fromkeys(runs["arm"]))
    n = int(runs.groupby("arm")["seed"].nunique().max())
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for k, arm in enumerate(arms):
        c = curves[curves["arm"] == arm].groupby("step")[["learning_rate", "eval_accuracy"]]
        mean = c.mean()
        color = PALETTE[k % len(PALETTE)]
        label = arm.split("=", 1)[-1] if len(exp.factors) == 1 else arm
        top.plot(mean.index, mean["learning_rate"], color=color, label=label)
        bottom.plot(mean.index, mean["eval_accuracy"], color=color, label=label)
    top.set_yscale("log")
    peak = float(curves["learning_rate"].max())
    top.set_ylim(max(float(curves["learning_rate"].min()), peak * 1e-4) / 1.5, peak * 1.5)
    top.set_ylabel("learning rate (log scale)")
    target = float(runs["target"].iloc[0]) if "target" in runs else 0.0
    if target > 0:
        bottom.axhline(target, color="0.4", ls=":", lw=1, label=f"target {target:g}")
    finals = curves.groupby(["arm", "seed"])["eval_accuracy"].last()
    low = float(np.nanmin(finals)) if finals.notna().any() else 0.9
    bottom.set_ylim(max(0.0, min(low, target or low) - 0.02), 1.0)
    bottom.set_ylabel(f"eval accuracy (mean of {n} seeds)")
    bottom.set_xlabel("step")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=8, ncol=2, loc="best")
    fig.suptitle(f"{exp.name}: learning rate and eval accuracy per step", fontsize=11)
    written = save_figure(fig, Path(f"{stem}-learning-rate"))

    summary = summarize(exp, runs)
    metric = "final_eval_accuracy"
    if metric not in summary or not np.isfinite(summary["median_steps"].astype(float)).any():
        return written  # no arm reached the target (or no final accuracy shown)
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    for k, (_, r) in enumerate(summary.iterrows()):
        y = r["median_steps"]
        if not np.isfinite(y):
            continue
        x = r[metric]
        xerr = [[max(x - r[f"{metric}_low"], 0)], [max(r[f"{metric}_high"] - x, 0)]]
        hi = r["steps_high"] if np.isfinite(r["steps_high"]) else y
        lo = r["steps_low"] if np.isfinite(r["steps_low"]) else y
        ax.errorbar([x], [y], xerr=xerr, yerr=[[y - lo], [hi - y]], marker="o", capsize=3,
                    color=PALETTE[k % len(PALETTE)],
                    label=r["arm"].split("=", 1)[-1] if len(exp.factors) == 1 else r["arm"])
    ax.set_xlabel(f"{LABELS[metric]} (mean, 95% CI)")
    ax.set_ylabel("steps to target (KM median, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{exp.name}: speed vs quality ({n} seeds; better: lower right)", fontsize=11)
    return written + save_figure(fig, Path(f"{stem}-speed-vs-quality"))
