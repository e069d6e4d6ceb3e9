"""Figures of the experiments (matplotlib, headless): what a figure is drawn from, the helpers
the figure kinds share (:mod:`dnnbench.report.figure_kinds`: their makers in
:mod:`dnnbench.report.plots` and the protocols' own modules), and writing PNG and SVG.

Every plotting function takes DataFrames (the tidy runs/curves tables) and returns a
``matplotlib.figure.Figure`` so that tests can inspect its axes (``ax.lines``, labels).
Figures are built with ``Figure()`` directly, not through pyplot: nothing global is kept and
nothing needs closing.  All intervals come from ``dnnbench.stats``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
# fixed ids in SVG files: the same results give byte-identical figures
matplotlib.rcParams["svg.hashsalt"] = "dnnbench"

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dnnbench.files import atomic_write_bytes
from dnnbench.stats import mean_ci

FORMATS = ("png", "svg")
DPI = 110
PALETTE = ["#1b6ca8", "#d95f02", "#2a9d55", "#c0392b", "#7d5ba6", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]

@dataclass(frozen=True)
class FigureInput:
    """What a figure is drawn from: the definition and the common-schema tables."""

    exp: Any  # dnnbench.definition.Experiment
    runs: pd.DataFrame
    curves: pd.DataFrame | None = None
    layers: pd.DataFrame | None = None
    dataset: str = ""


# ------------------------------------------------------------------ small helpers

def n_seeds_text(runs: pd.DataFrame, by: str | Sequence[str] = "arm") -> str:
    """'3 seeds per arm' (or '2-3 seeds per arm' when arms differ)."""
    counts = runs.groupby(list(by) if not isinstance(by, str) else by)["seed"].nunique()
    lo, hi = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    n = f"{lo}" if lo == hi else f"{lo}-{hi}"
    return f"{n} seed{'s' if hi != 1 else ''} per arm"


def mean_band(table: pd.DataFrame, log: bool = False):
    """Per row of a (step x seed) table: mean and its 95% t-interval across seeds (missing
    values dropped). ``log``: geometric mean and interval computed on the log scale, so the
    band of a positive quantity (a loss on a log axis) stays positive."""
    values = table.to_numpy(float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log(values), np.nan)
    rows = [mean_ci(v, method="t") for v in values]
    est, low, high = (np.array([getattr(r, k) for r in rows]) for k in ("estimate", "low", "high"))
    return (np.exp(est), np.exp(low), np.exp(high)) if log else (est, low, high)


def finish(fig: Figure, title: str) -> Figure:
    """Bold title, wrapped to the figure's width."""
    import textwrap

    chars = max(40, int(fig.get_figwidth() * 10.5))
    fig.suptitle("\n".join(textwrap.wrap(title, chars)), fontsize=12, fontweight="bold")
    return fig


def figure_legend(fig: Figure, axes, ncol: int = 4, loc: str = "outside lower center") -> None:
    """One legend outside the panels (below by default) with the distinct entries of ``axes``."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc=loc, ncol=min(ncol, len(seen)),
               fontsize=9, frameon=False)


def panel_grid(n: int, max_cols: int = 3):
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def panel_axes(fig: Figure, n: int, max_cols: int = 3, **kw):
    rows, cols = panel_grid(n, max_cols)
    axs = fig.subplots(rows, cols, squeeze=False, **kw).ravel()
    for ax in axs[n:]:
        ax.set_visible(False)
    return axs[:n]


def target_text(runs: pd.DataFrame) -> str:
    """The accuracy target as a percentage: '90%', '93.1%'."""
    t = pd.to_numeric(runs["target"], errors="coerce").dropna()
    if not len(t):
        return "the target"
    v = float(t.iloc[0]) * 100
    return f"{v:.0f}%" if abs(v - round(v)) < 0.05 else f"{v:.1f}%"


def first_step(runs: pd.DataFrame) -> float:
    """The smallest steps-to-target of any run (a floor for log-scaled step axes)."""
    first = pd.to_numeric(runs["steps_to_target"], errors="coerce").min()
    return float(first) if np.isfinite(first) and first > 0 else 1.0


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int | None = None) -> bytes:
    """The figure encoded as ``fmt`` (png or svg) at ``dpi`` (default ``DPI``)."""
    import io

    buf = io.BytesIO()
    # no version or date stamps: the same results give byte-identical files
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None} \
        if fmt == "svg" else None
    fig.savefig(buf, format=fmt, dpi=dpi or DPI, metadata=metadata)
    return buf.getvalue()


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``stem.png`` / ``stem.svg`` atomically; returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, figure_bytes(fig, fmt))
        paths.append(path)
    return paths


def wrapped_suptitle(fig, text: str, fontsize: float = 11) -> None:
    """A suptitle wrapped to the figure's width (~12 characters of 11-point text per inch),
    never clipped at the figure's sides."""
    chars = max(20, int(fig.get_figwidth() * 12 * 11 / fontsize))
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize)
