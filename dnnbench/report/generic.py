"""Presentation of any experiment file's results: one Rich table, the claims, one figure
family (a metric against a factor, a line per second factor, a panel per third)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from dnnbench.experiments.files import Experiment
from dnnbench.experiments.generic import NOT_COMPARED
from dnnbench.report.console import fmt, fmt_interval

LABELS = {"steps_to_target": "steps to target", "time_to_target_s": "s to target",
          "final_eval_accuracy": "final eval acc.", "best_eval_accuracy": "best eval acc.",
          "final_eval_loss": "final eval loss", "final_train_loss": "final train loss",
          "final_test_accuracy": "test acc.", "final_test_loss": "test loss",
          "divergence_rate": "divergence rate"}


def _spec(metric: str) -> str:
    return "{:.4f}" if "loss" in metric or "accuracy" in metric else "{:.2f}"


def summary_cells(exp: Experiment, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings, one row per arm: the factors' levels, reached n/N,
    each shown metric with its 95% interval (steps: Kaplan-Meier median), and the paired
    comparisons with the reference arm (for the Rich table and the HTML report)."""
    rows = []
    for _, r in summary.iterrows():
        row = {f: str(r[f]) for f in exp.factors}
        row["reached"] = f"{r['reached']}/{r['n']}"
        for m in exp.show:
            if m == "steps_to_target":
                row[LABELS[m]] = fmt_interval(r["median_steps"], r["steps_low"],
                                              r["steps_high"])
            else:
                s = _spec(m)
                row[LABELS.get(m, m)] = (f"{fmt(r[m], s)} [{fmt(r[m + '_low'], s)}, "
                                         f"{fmt(r[m + '_high'], s)}]")
        if exp.reference:
            value = LABELS.get(r["value_metric"], r["value_metric"])
            if not r["reference"] or r["reference"] == NOT_COMPARED:
                row["steps vs reference"] = row[f"{value} vs reference"] = \
                    r["reference"] or "reference"
            else:
                row["steps vs reference"] = (
                    f"x{r['steps_ratio']:.2f} [{fmt(r['ratio_low'], '{:.2f}')}, "
                    f"{fmt(r['ratio_high'], '{:.2f}', '∞')}] {r['steps_verdict']}"
                    if math.isfinite(r["steps_ratio"]) else
                    f"– (a median not reached) {r['steps_verdict']}")
                row[f"{value} vs reference"] = (
                    f"{fmt(r['diff'], '{:+.4f}')} [{fmt(r['diff_low'], '{:+.4f}')}, "
                    f"{fmt(r['diff_high'], '{:+.4f}')}] {r['diff_verdict']}")
            if "steps_to_target" not in exp.show:  # no target (e.g. transfer's stages)
                del row["steps vs reference"]
        rows.append(row)
    return pd.DataFrame(rows)


def summary_title(exp: Experiment, summary: pd.DataFrame, dataset: str) -> str:
    n = int(summary["n"].max()) if len(summary) else 0
    return (f"{exp.name} on {dataset} ({n} seed{'s' if n != 1 else ''} per arm, paired; "
            "95% intervals)")


def summary_table(exp: Experiment, summary: pd.DataFrame, dataset: str) -> Table:
    """The summary as a Rich table (see :func:`summary_cells`)."""
    cells = summary_cells(exp, summary)
    t = Table(title=summary_title(exp, summary, dataset), header_style="bold",
              title_justify="left", caption=exp.question or None, caption_justify="left")
    for i, c in enumerate(cells.columns):
        t.add_column(c, justify="left" if i < len(exp.factors) else "right")
    for row in cells.itertuples(index=False):
        t.add_row(*row)
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
    """``<name>-<dataset>-<metric>.png/svg`` next to the runs CSV (see :func:`make_figure`).
    Returns the written paths."""
    from dnnbench.report.figures import save_figure

    fig = make_figure(exp, runs)
    stem = Path(str(runs_path).removesuffix("-runs.csv") +
                f"-{exp.show[0].replace('_', '-')}")
    return save_figure(fig, stem)


def make_figure(exp: Experiment, runs: pd.DataFrame):
    """The first shown metric: its median (steps: Kaplan-Meier) or mean against the first
    factor with two levels or more, a line per level of a second factor, a panel per level
    of a third; 95% intervals as error bars. ValueError when no factor varies."""
    from matplotlib.figure import Figure

    from dnnbench.experiments.generic import summarize
    from dnnbench.report.figures import PALETTE

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
    numeric_x = _numeric(summary[x])
    # named levels side by side: room for their labels (a dozen or more)
    width = 4.2 if numeric_x else max(4.2, 0.36 * summary[x].nunique())
    fig = Figure(figsize=(width * len(panels) + 1.2, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
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
    title = f"{exp.title or exp.name} ({n} seed{'s' if n != 1 else ''} per arm)"
    # wrapped to the figure's width (~12 characters of 11-point text per inch)
    fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 12)),
                 fontsize=11)
    return fig


def regularization_figures(exp: Experiment, rs) -> list:
    """The report's figures of the regularization measures the runs have (see
    :mod:`dnnbench.report.regularization`)."""
    from dnnbench.report import regularization as reg
    from dnnbench.report.figures import figure_bytes
    from dnnbench.report.html import FigureItem

    items = []
    for name, has, make, caption in (
            ("accuracy-gap", reg.has_gap, reg.accuracy_gap_figure,
             ("Test accuracy and generalization gap (training - test accuracy) per arm; 95% "
              "intervals.")),
            ("reliability", reg.has_calibration, reg.reliability_figure,
             ("Reliability of the deterministic and the MC dropout predictions on the test "
              "split (15 bins, seeds pooled)."))):
        if has(rs.runs):
            items.append(FigureItem(name, f"{rs.stem}-{name}.png", caption,
                                    figure_bytes(make(exp, rs.runs), "png")))
    return items


def report_section(rs, render_figures: bool = True):
    """The HTML/Markdown report section of any experiment file's results: its summary, its
    claims and its figure, rebuilt from the definition its metadata records."""
    from dnnbench.experiments import files, generic
    from dnnbench.report.figures import figure_bytes
    from dnnbench.report.html import FigureItem, Section, TableItem, meta_rows

    meta = rs.meta
    exp = files.parse(json.loads(meta["experiment_definition"]),
                      str(meta.get("experiment_file", "")))
    if exp.search is not None:
        from dnnbench.report.search import report_section as search_section

        return search_section(rs, exp, render_figures)
    dataset = (meta.get("dataset") or {}).get("name", "")
    summary = generic.summarize(exp, rs.runs)
    caption = ("Steps: Kaplan-Meier median over the seeds (a run that never reached the target "
               "is censored; ∞: the interval reaches past the budget); other metrics: mean "
               "over the seeds. Against the reference arm: paired by seed, a ratio of steps "
               "and a difference, each with its 95% interval; a verdict needs an interval "
               "that excludes no difference and at least 5 seeds.")
    cells = summary_cells(exp, summary)
    tables = [TableItem(summary_title(exp, summary, dataset), cells, caption,
                        left=len(exp.factors),
                        text=tuple(c for c in cells.columns if c.endswith("vs reference")))]
    from dnnbench.report.io import read_layers

    layers = read_layers(rs.runs_path)
    claims = generic.check_claims(exp, rs.runs, layers)
    if len(claims):
        tables.append(TableItem("Claims of the experiment file",
                                claims[["claim", "verdict", "arms", "effects"]],
                                "Supported: every compared arm points the expected way with an "
                                "interval that excludes no difference; contradicted: one "
                                "points the other way.", left=2, text=("effects",)))
    figs = []
    if render_figures:
        try:
            fig = make_figure(exp, rs.runs)
        except ValueError:
            fig = None
        if fig is not None:
            name = exp.show[0].replace("_", "-")
            figs.append(FigureItem(name, f"{rs.stem}-{name}.png",
                                   f"{LABELS.get(exp.show[0], exp.show[0])} against "
                                   f"{next(iter(exp.factors), '')}; 95% intervals.",
                                   figure_bytes(fig, "png")))
        figs += regularization_figures(exp, rs)
        if layers is not None:
            from dnnbench.report.layers import TITLES, layer_figures

            for name, fig in layer_figures(exp, rs.runs, layers).items():
                column = name.removeprefix("layers-").replace("-", "_")
                caption = (f"log10 {TITLES['grad_norm']} per layer and step, per arm"
                           if name == "layers-heatmap" else
                           f"{TITLES.get(column, column)} per hidden layer at step 0 (solid) "
                           "and at the end (dashed), median over seeds")
                figs.append(FigureItem(name, f"{rs.stem}-{name}.png", caption,
                                       figure_bytes(fig, "png")))
    bullets = [b for b in (exp.expected and f"Expected: {exp.expected}",
                           exp.cost and f"Cost: {exp.cost}",
                           (f"Compiled programs: {meta['compiled_programs']} for "
                            f"{meta.get('arms', '–')} arms" if "compiled_programs" in meta
                            else f"Units: {meta.get('units', '–')} for "
                            f"{meta.get('arms', '–')} arms ({exp.protocol} protocol)")) if b]
    return Section(anchor=rs.stem, title=f"{exp.title or exp.name} — {dataset}",
                   experiment=exp.name, intro=exp.question,
                   command=str(meta.get("command", "")), bullets=bullets, tables=tables,
                   figures=figs, meta=meta_rows(meta, rs.runs_path.name),
                   runs_file=rs.runs_path.name)
