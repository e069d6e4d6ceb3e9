"""Rich summary table of the optimizer comparison (rows: ``experiments.optimizers.summarize``)."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from dnnbench.report.console import fmt, plural, table
from dnnbench.stats import format_interval


def stars(n, n_stars: int = 3) -> str:
    """3 -> '★★★', 1 -> '★☆☆'; '?' for a missing rating."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "?"
    n = int(n)
    return "★" * n + "☆" * (n_stars - n)


def _lr(lr: float) -> str:
    return f"{lr:.3g}"


def _steps(r) -> str:
    if math.isnan(r["median_steps"]):
        return "not reached"
    return format_interval(r["median_steps"], r["steps_low"], r["steps_high"], "{:.0f}",
                           unbounded="∞")


def _pct(est, low, high) -> str:
    return format_interval(est * 100, low * 100, high * 100, "{:.1f}")


def _vs_baseline(r) -> str:
    """Two lines: paired ratio of steps (or seeds won, when a median is not reached), then the
    paired difference of final val accuracy in points; each with its verdict."""
    if not r["sgd_ratio_verdict"] and not r["sgd_diff_verdict"]:
        return ""
    if math.isnan(r["sgd_ratio"]):
        steps = f"first in {r['sgd_pairs_faster']}/{r['n']} seeds"
    else:
        steps = "×" + format_interval(r["sgd_ratio"], r["sgd_ratio_low"], r["sgd_ratio_high"],
                                      "{:.2f}")
    diff = "n/a" if math.isnan(r["sgd_diff"]) else format_interval(
        r["sgd_diff"] * 100, r["sgd_diff_low"] * 100, r["sgd_diff_high"] * 100, "{:+.1f}") + " pp"
    return f"{steps} {r['sgd_ratio_verdict']}\n{diff} {r['sgd_diff_verdict']}"


def optimizers_table(summary: pd.DataFrame, dataset: str, target: float, target_kind: str,
                     *, epochs: int, batch_size: int, target_fraction: float = 0.98,
                     baseline: str = "sgd") -> Table:
    """Arms sorted by convergence speed with measured vs textbook stars and a paired SGD column.

    The test-accuracy column is shown when tuned arms are present (their val accuracy is the
    selection criterion, hence optimistic)."""
    n = int(summary["n"].max()) if len(summary) else 0
    tuned = bool(len(summary)) and bool((summary["lr_source"] == "tuned").any())
    rows = []
    for _, r in summary.iterrows():
        name = r["optimizer"] + (" (tuned)" if r["lr_source"] == "tuned" else "")
        reached = f"{r['reached']}/{r['n']}" + (f" ({r['diverged']} div)" if r["diverged"] else "")
        row = [name, _lr(r["learning_rate"]), reached, _steps(r),
               _pct(r["acc"], r["acc_low"], r["acc_high"])]
        if tuned:
            row.append(_pct(r["test_acc"], r["test_acc_low"], r["test_acc_high"]))
        row += [fmt(r["step_ms"], "{:.2f}"),
                f"{stars(r['speed_stars'])}|{stars(r['book_speed'])}",
                f"{stars(r['quality_stars'])}|{stars(r['book_quality'])}", _vs_baseline(r)]
        rows.append(row)
    if math.isnan(target):
        goal = "no target (no arm has a positive median final val accuracy)"
    elif target_kind == "relative":
        goal = f"steps to {target:.1%} val accuracy ({target_fraction:g} x best median final)"
    else:
        goal = f"steps to {target:.1%} val accuracy"
    caption = (
        "Sorted by convergence speed. Steps: Kaplan-Meier median [95% CI] (runs that never "
        "reach the target are censored; ∞ = upper limit beyond the budget). Accuracies: mean "
        "[95% bootstrap CI] in %, at the end of training. step ms: one training step of all "
        "seeds vmapped together, compile and evaluation excluded. Stars, measured|textbook: "
        "quality from the final val accuracy, 3 = tied with the best (CIs overlap); speed from "
        "the paired ratio of steps to the fastest arm, 3 = its CI includes 1. "
        f"vs {baseline.upper()}: paired by seed, against the {baseline} arm with the same lr "
        "source: ratio of KM median steps (or the seeds that reached the target first, when a "
        "median is not reached), then the difference of final val accuracy in points; a CI "
        "that includes 1 (ratio) or 0 (difference) is 'no clear difference', and fewer than 5 "
        "seeds are 'too few seeds for a verdict'.")
    if tuned:
        caption += (" Tuned: the lr with the best median final val accuracy of the sweep, so "
                    "its val accuracy is optimistic; its test accuracy is not.")
    columns = ["optimizer", "lr", "reached", "steps [95% CI]", "val acc % [95% CI]"]
    if tuned:
        columns.append("test acc % [95% CI]")
    columns += ["step ms", "speed\nmeas|book", "quality\nmeas|book",
                f"vs {baseline.upper()} (paired): steps ratio,\nval acc difference"]
    compare = any(r[-1] for r in rows)
    if not compare:  # the baseline was not run: no comparison column
        columns, rows = columns[:-1], [r[:-1] for r in rows]
        caption = caption[:caption.index(f" vs {baseline.upper()}:")] + caption[
            caption.index("for a verdict'.") + len("for a verdict'."):]
    t = table(f"Optimizers on {dataset}: {goal}; {plural(n, 'seed')} per arm, "
              f"{plural(epochs, 'epoch')}, "
              f"batch {batch_size}", columns, rows, caption=caption, justify_right_from=1)
    if compare:
        t.columns[-1].justify = "left"
    for c in t.columns:
        c.no_wrap = c.header not in ("val acc % [95% CI]", "test acc % [95% CI]")
    return t
