"""Figures of the per-layer diagnostics (``<name>-<dataset>-layers.csv``): a column against the
layer index at step 0 and at the end of training, and a layer x step heatmap.

Panels are the levels of the experiment's first factor that varies, lines the levels of the
second (the arms' other factors, if any, are pooled); every value is the median over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnnbench.definition import Experiment
from dnnbench.report.figures import PALETTE, panel_axes
from dnnbench.report.figures import panel_grid as shape

TITLES = {"act_std": "activation std", "grad_norm": "gradient norm (kernel)",
          "saturated": "saturated fraction (ReLU: off on every example)",
          "dead": "dead fraction (zero gradient)", "pre_std": "pre-activation std",
          "act_mean": "activation mean", "pre_mean": "pre-activation mean"}
PROFILE_COLUMNS = ("act_std", "grad_norm")
HEATMAP_COLUMN = "grad_norm"


def _layout(exp: Experiment):
    varying = [f for f in exp.factors if len(exp.factors[f]) > 1]
    panel = varying[0] if varying else None
    line = varying[1] if len(varying) > 1 else None
    return panel, line


def _with_levels(exp: Experiment, runs: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    levels = runs.drop_duplicates("arm")[["arm", *exp.factors]].astype({f: str for f in
                                                                       exp.factors})
    return layers.merge(levels, on="arm", how="left")


def _grid(n: int, width: float = 3.0, height: float = 2.6, max_cols: int = 4,
          sharex: bool = False):
    from matplotlib.figure import Figure


    rows, cols = shape(n, max_cols)
    fig = Figure(figsize=(width * cols + 1.0, height * rows + 0.8), layout="constrained")
    return fig, panel_axes(fig, n, max_cols, sharex=sharex)


def profile_figure(exp: Experiment, runs: pd.DataFrame, layers: pd.DataFrame, column: str):
    """``column`` against the layer index, at step 0 (solid) and at each run's last diagnosed
    step after 0 (dashed; none for a run that diverged before its first evaluation); a panel per level of the first factor, a line colour per level of the
    second; log scale for positive columns."""
    from matplotlib.ticker import MaxNLocator


    panel, line = _layout(exp)
    df = _with_levels(exp, runs, layers)
    last = df.groupby(["arm", "seed"])["step"].transform("max")
    panels = [str(v) for v in exp.factors[panel]] if panel else [None]
    lines = [str(v) for v in exp.factors[line]] if line else [None]
    fig, axes = _grid(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        block = df if p is None else df[df[panel] == p]
        for k, level in enumerate(lines):
            g = block if level is None else block[block[line] == level]
            for when, style in (("start", "-"), ("end", "--")):
                at = g[g["step"] == 0] if when == "start" else \
                    g[(g["step"] == last[g.index]) & (g["step"] > 0)]
                med = at.groupby("layer")[column].median()
                if med.empty:
                    continue
                ax.plot(med.index + 1, med.to_numpy(), style, color=PALETTE[k % len(PALETTE)],
                        marker="o", markersize=2.5,
                        label=f"{level}" if when == "start" and level is not None else None)
        values = block[column][np.isfinite(block[column])]
        if len(values) and (values > 0).all():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if p is not None:
            ax.set_title(f"{panel}={p}", fontsize=9)
        ax.set_xlabel("hidden layer", fontsize=8)
    axes[0].set_ylabel(TITLES.get(column, column), fontsize=8)
    if line:
        axes[0].legend(fontsize=7, title=f"{line} (solid: step 0, dashed: end)",
                       title_fontsize=7, loc="best")
    fig.suptitle(f"{exp.title or exp.name}: {TITLES.get(column, column)} per layer "
                 "(median over seeds)", fontsize=10)
    return fig


def heatmap_figure(exp: Experiment, runs: pd.DataFrame, layers: pd.DataFrame,
                   column: str = HEATMAP_COLUMN):
    """log10 of ``column`` (median over seeds) for every layer (rows) and diagnosed step
    (columns), one panel per arm, one colour scale."""
    df = layers[np.isfinite(layers[column]) & (layers[column] > 0)]
    arms = list(dict.fromkeys(runs["arm"]))
    fig, axes = _grid(len(arms), width=2.4, height=2.0, max_cols=6, sharex=True)
    med = df.groupby(["arm", "layer", "step"])[column].median()
    values = np.log10(med.to_numpy()) if len(med) else np.array([0.0])
    vmin, vmax = np.percentile(values, [1, 99])
    image = None
    for ax, arm in zip(axes, arms, strict=True):
        if arm not in med.index.get_level_values(0):
            ax.set_title(arm, fontsize=6)
            continue
        grid = med.loc[arm].unstack("step")
        steps = grid.columns.to_numpy()
        image = ax.imshow(np.log10(grid.to_numpy()), aspect="auto", origin="lower",
                          vmin=vmin, vmax=vmax, cmap="viridis", interpolation="nearest",
                          extent=(-0.5, len(steps) - 0.5, 0.5, len(grid) + 0.5))
        ticks = np.unique(np.linspace(0, len(steps) - 1, min(3, len(steps))).astype(int))
        ax.set_xticks(ticks, [str(int(steps[t])) for t in ticks], fontsize=6)
        ax.tick_params(labelsize=6)
        ax.set_title(arm, fontsize=6)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.6,
                     label=f"log10 {TITLES.get(column, column)}")
    fig.suptitle(f"{exp.title or exp.name}: log10 {TITLES.get(column, column)}, layer (rows, "
                 "1 = first) x step (median over seeds)", fontsize=10)
    return fig


def figures(inp) -> dict:
    """The figure kind "layers" (dnnbench.report.figure_kinds): a profile per column of
    PROFILE_COLUMNS and the heatmap, for runs with per-layer diagnostics."""
    if inp.layers is None or inp.layers.empty:
        return {}
    exp, runs, layers = inp.exp, inp.runs, inp.layers
    out = {f"layers-{c.replace('_', '-')}": (
        profile_figure(exp, runs, layers, c),
        (f"{TITLES.get(c, c)} per hidden layer at step 0 (solid) and at the end (dashed), "
         "median over seeds")) for c in PROFILE_COLUMNS}
    out["layers-heatmap"] = (heatmap_figure(exp, runs, layers),
                             f"log10 {TITLES['grad_norm']} per layer and step, per arm")
    return out
