"""The figures of the transfer protocol (registered in :mod:`dnnbench.report.figure_kinds`),
drawn from the common result table of its runs (columns ``stage``, ``pair``,
``final_test_accuracy``, ``diverged``, the file's factors):

- ``paired-accuracy``: the task-B test accuracy of B (from scratch) and B-on-A (A's layers)
  per seed, a line joining the two runs of a seed, one panel per B-on-A arm (a class pair, or
  a setting of the B arms);
- ``gains``: the gain B-on-A minus B (points, paired by seed) of every B-on-A arm: its seeds
  and its mean with a 95% interval, coloured by verdict, and a histogram of the mean gains
  with 8 arms or more; drawn only with two B-on-A arms or more (``--pairs all``).

The verdict is the file layer's (:func:`dnnbench.stats.verdict_from_interval` on the paired
difference, as the summary's "vs reference" column): "helps" / "hurts" only when the interval
excludes zero and at least :data:`dnnbench.stats.MIN_SEEDS_FOR_VERDICT` seeds back it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dnnbench.report.figures import (
    PALETTE,
    figure_legend,
    finish,
    n_seeds_text,
    panel_axes,
    panel_grid,
)
from dnnbench.stats import paired_difference, verdict_from_interval

VERDICT_LABELS = ("helps", "hurts", "no clear effect")
VERDICT_COLORS = {"helps": "#2a9d55", "hurts": "#c0392b"}
MAX_PANELS = 12
MIN_ARMS_FOR_HISTOGRAM = 8


def varying(runs: pd.DataFrame, factors: Sequence[str]) -> list[str]:
    """The factors but the stage whose level differs between the B arms."""
    b = runs[runs["stage"] != "A"]
    return [f for f in factors if f != "stage" and f in b.columns and b[f].nunique() > 1]


def by_pair(runs: pd.DataFrame, factors: Sequence[str]) -> bool:
    """Whether the B-on-A arms differ in their class pair only (labels are pairs)."""
    return varying(runs, factors) in ([], ["pair"])


def paired_arms(runs: pd.DataFrame, factors: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """For every B-on-A arm (file order): its label (the pair, e.g. "3v5", when the arms
    differ in it only, else its levels but the stage) and a (seed x ["B", "B-on-A"]) frame of
    the task-B test accuracy, against the B arm with the same levels (a diverged run is
    missing)."""
    others = varying(runs, factors)
    acc = runs["final_test_accuracy"].where(~runs["diverged"].astype(bool))
    runs = runs.assign(final_test_accuracy=acc)
    out = []
    for _, t in runs[runs["stage"] == "B-on-A"].groupby("arm", sort=False):
        levels = {f: t[f].iloc[0] for f in others}
        b = runs[runs["stage"] == "B"]
        for f, v in levels.items():
            b = b[b[f] == v]
        frame = pd.concat({"B": b.set_index("seed")["final_test_accuracy"],
                           "B-on-A": t.set_index("seed")["final_test_accuracy"]}, axis=1)
        label = (str(t["pair"].iloc[0]) if others in ([], ["pair"]) else
                 ", ".join(f"{f}={v}" for f, v in levels.items()))
        out.append((label, frame.sort_index()))
    return out


def gains(arms: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Per B-on-A arm: the mean gain B-on-A minus B in points over the seeds with both, its
    95% interval (paired), n and the verdict."""
    rows = []
    for label, frame in arms:
        both = frame.dropna()
        d = paired_difference(both["B-on-A"] * 100, both["B"] * 100)
        rows.append({"label": label, "diff": d.mean_diff, "low": d.low, "high": d.high,
                     "n": d.n, "verdict": verdict_from_interval(
                         d.low, d.high, labels=VERDICT_LABELS, n=d.n)})
    return pd.DataFrame(rows, columns=["label", "diff", "low", "high", "n", "verdict"])


def _b_arms(runs: pd.DataFrame) -> int:
    """The B-on-A arms of a table (0 without the transfer protocol's columns)."""
    if not {"stage", "arm"} <= set(runs.columns):
        return 0
    return runs.loc[runs["stage"] == "B-on-A", "arm"].nunique()


def paired_accuracy_kind(inp) -> Figure | None:
    """Figure kind ``paired-accuracy`` (:class:`dnnbench.report.figures.FigureInput`);
    None without B-on-A runs."""
    if not _b_arms(inp.runs):
        return None
    return paired_figure(inp.runs, list(inp.exp.factors), inp.dataset)


def gains_kind(inp) -> Figure | None:
    """Figure kind ``gains``; None with fewer than two B-on-A arms (one class pair)."""
    if _b_arms(inp.runs) < 2:
        return None
    return gains_figure(inp.runs, list(inp.exp.factors), inp.dataset)


def paired_figure(runs: pd.DataFrame, factors: Sequence[str], dataset: str = "",
                  max_panels: int = MAX_PANELS) -> Figure:
    """B vs B-on-A test accuracy per seed, a panel per B-on-A arm (the first
    ``max_panels``)."""
    arms = paired_arms(runs, factors)
    prefix = "pair " if by_pair(runs, factors) else ""
    shown = arms[:max_panels]
    rows, cols = panel_grid(len(shown), 4)
    fig = Figure(figsize=(max(6.5, 3.3 * cols + 0.6), 3.4 * rows + 1.2), layout="constrained")
    axs = panel_axes(fig, len(shown), 4, sharey=True)
    for ax, (label, t) in zip(axs, shown, strict=True):
        b, ba = t["B"] * 100, t["B-on-A"] * 100
        for seed in t.index:
            d = ba[seed] - b[seed]
            color = PALETTE[0] if d > 0 else PALETTE[1] if d < 0 else "0.5"
            ax.plot([0, 1], [b[seed], ba[seed]], "o-", color=color, alpha=0.65, lw=1.2, ms=4)
        ax.plot([0, 1], [np.nanmean(b), np.nanmean(ba)], "s-", color="black", lw=2.5, ms=7,
                label="mean over seeds")
        ax.set_xticks([0, 1], ["B (scratch)", "B-on-A"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"{prefix}{label} "
                     f"({t['B'].notna().sum()} seeds)", fontsize=10)
        ax.set_xlabel("arm")
        ax.set_ylabel("task B test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
    for color, label in ((PALETTE[0], "one seed: reuse better"),
                         (PALETTE[1], "one seed: reuse worse"), ("0.5", "one seed: tie")):
        axs[0].plot([], [], "o-", color=color, label=label)
    figure_legend(fig, axs[:1], ncol=4)
    more = f"; first {len(shown)} of {len(arms)}" if len(arms) > len(shown) else ""
    b_runs = runs[runs["stage"] != "A"]
    return finish(fig, f"Task B test accuracy per seed, from scratch vs reused layers on "
                        f"{dataset} ({n_seeds_text(b_runs)}{more})")


def gains_figure(runs: pd.DataFrame, factors: Sequence[str], dataset: str = "") -> Figure:
    """Distribution of the gain (B-on-A minus B test accuracy, points) across B-on-A arms
    (class pairs): per arm the seeds (dots) and the mean gain with its paired 95% CI
    (diamond), sorted by mean gain, coloured by verdict; a histogram of the mean gains."""
    arms = dict(paired_arms(runs, factors))
    s = gains(list(arms.items())).sort_values("diff", kind="stable").reset_index(drop=True)
    with_hist = len(s) >= MIN_ARMS_FOR_HISTOGRAM
    fig = Figure(figsize=(11 if with_hist else 8.5, 2.6 + 0.3 * len(s)), layout="constrained")
    if with_hist:
        ax, hist = fig.subplots(1, 2, width_ratios=[2.2, 1])
    else:
        ax, hist = fig.subplots(), None
    for i, r in s.iterrows():
        t = arms[r["label"]]
        d = ((t["B-on-A"] - t["B"]) * 100).dropna()
        ax.scatter(d, np.full(len(d), i), s=14, color="0.6", zorder=2)
        color = VERDICT_COLORS.get(r["verdict"], "0.3")
        xerr = [[max(r["diff"] - r["low"], 0)], [max(r["high"] - r["diff"], 0)]] \
            if not math.isnan(r["low"]) else None
        ax.errorbar([r["diff"]], [i], xerr=xerr, fmt="D", color=color, capsize=3, ms=6,
                    zorder=3)
    for verdict in dict.fromkeys(["helps", "hurts", *s["verdict"]]):
        ax.plot([], [], "D", color=VERDICT_COLORS.get(verdict, "0.3"),
                label=f"mean gain, 95% CI: {verdict}")
    ax.scatter([], [], s=14, color="0.6", label="one seed")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(s)), [str(p) for p in s["label"]],
                  fontsize=9 if len(s) <= 20 else 6)
    ax.set_ylim(-0.6, len(s) - 0.4)
    pairs = by_pair(runs, factors)
    what = "class pair" if pairs else "B-on-A arm"
    ax.set_xlabel("gain in test accuracy, points: B-on-A minus B (paired by seed)")
    ax.set_ylabel("class pair (positive v negative)" if pairs else what)
    ax.set_title(f"per {what}")
    ax.grid(alpha=0.3, axis="x")
    if hist is not None:
        hist.hist(s["diff"].dropna(), bins=min(20, max(5, len(s) // 3)), color="#1b6ca8",
                  alpha=0.8, edgecolor="white")
        hist.axvline(0, color="black", lw=1)
        hist.set_xlabel(f"mean gain per {what}, points")
        hist.set_ylabel(f"{what}s")
        hist.set_title("distribution of the mean gains")
        hist.grid(alpha=0.3, axis="y")
    figure_legend(fig, [ax], ncol=4 if with_hist else 2)
    b_runs = runs[runs["stage"] != "A"]
    return finish(fig, f"Gain from reusing layers across {len(s)} {what}s on {dataset} "
                        f"({n_seeds_text(b_runs)})")
