"""Figures of an experiment that measures regularization: the test accuracy and the
generalization gap of every arm (runs with ``eval_train``), and the reliability diagram of the
deterministic and the MC dropout predictions (runs with ``mc_samples``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dnnbench.definition import Experiment
from dnnbench.report.figures import PALETTE
from dnnbench.stats import mean_ci


def has_gap(runs: pd.DataFrame) -> bool:
    return "generalization_gap" in runs and bool(runs["generalization_gap"].notna().any())


def has_calibration(runs: pd.DataFrame) -> bool:
    return "calibration_bins" in runs and bool(
        runs["calibration_bins"].fillna("").astype(str).str.len().gt(0).any())


def figures(inp) -> dict:
    """The figure kind "regularization" (dnnbench.report.figure_kinds): ``accuracy-gap`` and
    ``reliability``, those the runs have measures for."""
    out = {}
    if has_gap(inp.runs):
        out["accuracy-gap"] = (accuracy_gap_figure(inp.exp, inp.runs),
                               ("Test accuracy and generalization gap (training - test "
                                "accuracy) per arm; 95% intervals."))
    if has_calibration(inp.runs):
        out["reliability"] = (reliability_figure(inp.exp, inp.runs),
                              ("Reliability of the deterministic and the MC dropout "
                               "predictions on the test split (15 bins, seeds pooled)."))
    return out


def _label(exp: Experiment, arm: str) -> str:
    return arm.split("=", 1)[-1] if len(exp.factors) == 1 else arm


def accuracy_gap_figure(exp: Experiment, runs: pd.DataFrame):
    """Per arm (a row each, file order): the mean final test accuracy and the mean
    generalization gap (training minus test accuracy), 95% intervals over the seeds; the
    reference arm's values as dotted lines."""
    from matplotlib.figure import Figure


    arms = list(dict.fromkeys(runs["arm"]))
    metrics = (("final_test_accuracy", "test accuracy"),
               ("generalization_gap", "generalization gap (train - test accuracy)"))
    fig = Figure(figsize=(9.0, 0.32 * len(arms) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ys = np.arange(len(arms))[::-1]
    reference = _reference(exp, runs)
    for ax, (metric, title) in zip(axes, metrics, strict=True):
        for y, arm in zip(ys, arms, strict=True):
            ci = mean_ci(runs.loc[runs["arm"] == arm, metric].astype(float).to_numpy())
            ax.errorbar([ci.estimate], [y], xerr=[[ci.estimate - ci.low],
                                                  [ci.high - ci.estimate]],
                        marker="o", capsize=3, color=PALETTE[0 if arm != reference else 1])
        if reference is not None:
            ref = runs.loc[runs["arm"] == reference, metric].astype(float).mean()
            ax.axvline(ref, color="0.4", ls=":", lw=1)
        ax.set_xlabel(title)
        ax.grid(alpha=0.3)
    axes[0].set_yticks(ys, [_label(exp, a) for a in arms])
    n = int(runs.groupby("arm")["seed"].nunique().max())
    fig.suptitle(f"{exp.title or exp.name}: mean of {n} seeds, 95% intervals "
                 "(dotted: the reference arm)", fontsize=10)
    return fig


def _reference(exp: Experiment, runs: pd.DataFrame) -> str | None:
    if not exp.reference:
        return None
    keys = runs[list(exp.reference)].astype(str).agg("|".join, axis=1)
    match = runs.loc[keys == "|".join(str(v) for v in exp.reference.values()), "arm"]
    return match.iloc[0] if len(match) else None


def pooled_bins(rows: pd.DataFrame, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean confidence, accuracy) per bin of the runs' ``calibration_bins`` of
    ``kind`` (det or mc), pooled over the runs (NaN for an empty bin)."""
    count = conf = hits = 0.0
    for text in rows["calibration_bins"].dropna():
        if not text:
            continue
        b = json.loads(text)[kind]
        c = np.asarray(b["count"], float)
        count = count + c
        conf = conf + c * np.nan_to_num(np.asarray(b["confidence"], float))
        hits = hits + c * np.nan_to_num(np.asarray(b["accuracy"], float))
    count = np.asarray(count, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, conf / count, hits / count


def reliability_figure(exp: Experiment, runs: pd.DataFrame):
    """A panel per arm with MC dropout: accuracy against confidence in 15 bins (pooled over
    the seeds) of the deterministic and the MC dropout predictions on the test split, the
    diagonal of perfect calibration, and each one's mean ECE over the seeds."""
    from matplotlib.figure import Figure


    arms = [a for a in dict.fromkeys(runs["arm"])
            if has_calibration(runs[runs["arm"] == a])]
    cols = min(len(arms), 5)
    rows_n = -(-len(arms) // cols)
    fig = Figure(figsize=(max(2.9 * cols + 0.6, 4.5), 2.9 * rows_n + 0.9),
                 layout="constrained")
    axes = fig.subplots(rows_n, cols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax, arm in zip(axes, arms, strict=False):
        g = runs[runs["arm"] == arm]
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        for k, (kind, name) in enumerate((("det", "deterministic"), ("mc", "MC dropout"))):
            count, conf, acc = pooled_bins(g, kind)
            ok = count > 0
            ece = g[f"{kind}_test_ece"].astype(float).mean()
            ax.plot(conf[ok], acc[ok], marker="o", ms=3, color=PALETTE[k],
                    label=f"{name}: ECE {ece:.3f}")
        ax.set_title(_label(exp, arm), fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    for ax in axes[len(arms):]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("accuracy")
    for ax in axes[(rows_n - 1) * cols:]:
        ax.set_xlabel("confidence")
    n = int(runs.groupby("arm")["seed"].nunique().max())
    fig.suptitle(f"{exp.name}: reliability on the test split\n(15 bins, {n} seeds pooled; "
                 "dotted: perfect calibration)", fontsize=10)
    return fig
