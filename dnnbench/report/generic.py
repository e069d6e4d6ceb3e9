"""Presentation of any experiment file's results: one Rich table, the claims, one figure
family (a metric against a factor, a line per second factor, a panel per third)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from dnnbench.experiments.files import Experiment
from dnnbench.report.console import fmt, fmt_interval

LABELS = {"steps_to_target": "steps to target", "time_to_target_s": "s to target",
          "final_eval_accuracy": "final eval acc.", "best_eval_accuracy": "best eval acc.",
          "final_eval_loss": "final eval loss", "final_train_loss": "final train loss",
          "final_test_accuracy": "test acc.", "final_test_loss": "test loss"}


def _spec(metric: str) -> str:
    return "{:.4f}" if "loss" in metric or "accuracy" in metric else "{:.2f}"


def summary_table(exp: Experiment, summary: pd.DataFrame, dataset: str) -> Table:
    """One row per arm: reached n/N, KM median steps [95% CI], mean metrics [95% CI], and the
    paired comparison with the reference arm."""
    n = int(summary["n"].max()) if len(summary) else 0
    title = (f"{exp.name} on {dataset} ({n} seed{'s' if n != 1 else ''} per arm, paired; "
             "95% intervals)")
    t = Table(title=title, header_style="bold", title_justify="left",
              caption=exp.question or None, caption_justify="left")
    factors = list(exp.factors)
    for f in factors:
        t.add_column(f)
    t.add_column("reached", justify="right")
    metrics = [m for m in exp.show]
    for m in metrics:
        t.add_column(LABELS.get(m, m), justify="right")
    has_ref = bool(exp.reference)
    if has_ref:
        t.add_column("steps vs reference", justify="right")
        t.add_column(f"{LABELS.get(summary['value_metric'].iloc[0], '')} vs reference"
                     if len(summary) else "vs reference", justify="right")
    for _, r in summary.iterrows():
        cells = [str(r[f]) for f in factors]
        cells.append(f"{r['reached']}/{r['n']}")
        for m in metrics:
            if m == "steps_to_target":
                cells.append(fmt_interval(r["median_steps"], r["steps_low"], r["steps_high"]))
            else:
                s = _spec(m)
                cells.append(f"{fmt(r[m], s)} [{fmt(r[m + '_low'], s)}, "
                             f"{fmt(r[m + '_high'], s)}]")
        if has_ref:
            if not r["reference"]:
                cells += ["reference", "reference"]
            else:
                cells.append(f"x{fmt(r['steps_ratio'], '{:.2f}')} [{fmt(r['ratio_low'], '{:.2f}')},"
                             f" {fmt(r['ratio_high'], '{:.2f}', '∞')}] {r['steps_verdict']}")
                cells.append(f"{fmt(r['diff'], '{:+.4f}')} [{fmt(r['diff_low'], '{:+.4f}')}, "
                             f"{fmt(r['diff_high'], '{:+.4f}')}] {r['diff_verdict']}")
        t.add_row(*cells)
    return t


def claims_table(claims: pd.DataFrame) -> Table:
    t = Table(title="Claims of the experiment file", header_style="bold", title_justify="left")
    for c in ("claim", "verdict", "arms", "effects (paired, 95% intervals)"):
        t.add_column(c)
    for _, r in claims.iterrows():
        t.add_row(r["claim"], r["verdict"], str(r["arms"]), r["effects"])
    return t


# ------------------------------------------------------------------------------------ figures

def _numeric(values) -> bool:
    try:
        np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def plot_experiment(exp: Experiment, runs: pd.DataFrame, runs_path: Path) -> list[Path]:
    """``<name>-<dataset>-<metric>.png/svg`` next to the runs CSV for the first shown metric:
    its median (steps: Kaplan-Meier) or mean against the first factor with the most levels,
    a line per level of a second factor, a panel per level of a third; 95% intervals as
    error bars. Returns the written paths."""
    from matplotlib.figure import Figure

    from dnnbench.experiments.generic import summarize
    from dnnbench.report.figures import PALETTE, save_figure

    factors = [f for f in exp.factors if len(exp.factors[f]) > 1]
    if not factors:
        raise ValueError("the experiment has no factor with two levels or more")
    x = factors[0]
    line = factors[1] if len(factors) > 1 else None
    panel = factors[2] if len(factors) > 2 else None
    summary = summarize(exp, runs)
    metric = exp.show[0]
    if metric == "steps_to_target":
        est, low, high = "median_steps", "steps_low", "steps_high"
    else:
        est, low, high = metric, f"{metric}_low", f"{metric}_high"
    panels = list(dict.fromkeys(summary[panel])) if panel else [None]
    fig = Figure(figsize=(4.2 * len(panels) + 1.2, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    numeric_x = _numeric(summary[x])
    values = summary[x].astype(float) if numeric_x else None
    log_x = bool(numeric_x and (values > 0).all() and values.max() / values.min() >= 10)
    n_lines = len(dict.fromkeys(summary[line])) if line else 1
    for ax, p in zip(axes, panels, strict=True):
        block = summary if p is None else summary[summary[panel] == p]
        groups = list(dict.fromkeys(block[line])) if line else [None]
        for k, level in enumerate(groups):
            g = block if level is None else block[block[line] == level]
            xs = g[x].astype(float).to_numpy() if numeric_x else np.arange(len(g), dtype=float)
            # lines side by side (a few % of a step), so equal values do not hide each other
            dodge = (k - (n_lines - 1) / 2) * 0.04
            xs = xs * 10 ** dodge if log_x else xs + dodge * (np.ptp(xs) or 1) / max(len(xs), 1)
            y = g[est].astype(float).to_numpy()
            lo = np.where(np.isnan(g[low].astype(float)), y, g[low].astype(float))
            hi = np.where(np.isnan(g[high].astype(float)), y, g[high].astype(float))
            ax.errorbar(xs, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
                        marker="o", capsize=3, color=PALETTE[k % len(PALETTE)],
                        label=None if level is None else f"{line}={level}")
            if not numeric_x:
                ax.set_xticks(np.arange(len(g)), [str(v) for v in g[x]], rotation=30, ha="right")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        if p is not None:
            ax.set_title(f"{panel}={p}", fontsize=10)
    kind = "KM median" if est == "median_steps" else "mean"
    axes[0].set_ylabel(f"{LABELS.get(metric, metric)} ({kind}, 95% CI)")
    if line:
        axes[-1].legend(fontsize=8, loc="best")
    n = int(summary["n"].max())
    fig.suptitle(f"{exp.title or exp.name} ({n} seeds per arm)", fontsize=11)
    stem = Path(str(runs_path).removesuffix("-runs.csv") + f"-{metric.replace('_', '-')}")
    return save_figure(fig, stem)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
