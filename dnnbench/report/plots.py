"""The generic figure kinds (see :mod:`dnnbench.report.figure_kinds`), drawn from the common
result schema of any experiment file.

Layout, for every kind: the factors that vary (two levels or more) in file order; the first
is the x axis (or, for the step-wise kinds, the panels), the second a line per level, the
third a panel per level.
"""

from __future__ import annotations

import dataclasses
import textwrap
import warnings

import numpy as np
import pandas as pd

from dnnbench.analysis.summary import summarize
from dnnbench.report.console import LABELS
from dnnbench.report.figures import (
    PALETTE,
    FigureInput,
    figure_legend,
    first_step,
    mean_band,
    n_seeds_text,
    panel_axes,
    target_text,
)
from dnnbench.report.figures import panel_grid as shape
from dnnbench.stats import kaplan_meier, steps_of_runs

MAX_PANELS = 24  # more panels than this: the figure is not drawn (unreadable)


def layout(exp) -> tuple[str | None, str | None, str | None]:
    """(x, line, panel): the first three factors with two levels or more (None if fewer)."""
    varying = [f for f in exp.factors if len(exp.factors[f]) > 1]
    return tuple((varying + [None, None, None])[:3])


def _levels(values) -> list:
    return list(dict.fromkeys(values))


def _numeric(values) -> bool:
    try:
        np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _ticks(ax, values, numeric: bool, log: bool) -> None:
    """A numeric factor's levels as the x ticks (a dozen at most, linear axis)."""
    levels = sorted({float(v) for v in values}) if numeric else []
    if numeric and not log and len(levels) <= 12:
        ax.set_xticks(levels, [f"{v:g}" for v in levels])


def _seeds(runs: pd.DataFrame) -> int:
    return int(runs.groupby("arm")["seed"].nunique().max()) if len(runs) else 0


def _title(fig, text: str) -> None:
    """A suptitle wrapped to the figure's width (~12 characters of 11-point text per inch)."""
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 12)), fontsize=11)


def _target_text(runs: pd.DataFrame) -> str:
    return target_text(runs) if "target" in runs else "the target"


def _split(runs: pd.DataFrame) -> str:
    split = runs["eval_split"].iloc[0] if "eval_split" in runs and len(runs) else "eval"
    return str(split)


# ------------------------------------------------------------------------------ metric

def metric_figure(inp: FigureInput):
    """The first shown metric: its median (steps: Kaplan-Meier) or mean against the first
    factor, a line per level of the second, a panel per level of the third; 95% intervals
    as error bars. Steps: log axis when they span a factor of 10 or more, and a median not
    reached (by half of the seeds) drawn as an open triangle at the budget. None for a
    search or when no factor varies."""
    from matplotlib.figure import Figure


    exp, runs = inp.exp, inp.runs
    x, line, panel = layout(exp)
    if exp.search is not None or x is None:
        return None
    summary = summarize(exp, runs)
    metric = exp.show[0]
    steps = metric == "steps_to_target"
    est, low, high = (("median_steps", "steps_low", "steps_high") if steps else
                      (metric, f"{metric}_low", f"{metric}_high"))
    budget = float(runs["max_steps"].max()) if steps else np.nan
    panels = _levels(summary[panel]) if panel else [None]
    numeric_x = _numeric(summary[x])
    # named levels side by side: room for their labels (a dozen or more)
    width = 4.2 if numeric_x else max(4.2, 0.36 * summary[x].nunique())
    fig = Figure(figsize=(width * len(panels) + 1.2, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    values = summary[x].astype(float) if numeric_x else None
    log_x = bool(numeric_x and (values > 0).all() and values.max() / values.min() >= 10)
    shown = summary[[est, low, high]].to_numpy(float)
    finite = shown[np.isfinite(shown) & (shown > 0)]
    log_y = bool(steps and finite.size and
                 max(finite.max(), budget if np.isnan(shown[:, 0]).any() else 0) /
                 finite.min() >= 10)
    n_lines = len(_levels(summary[line])) if line else 1
    for ax, p in zip(axes, panels, strict=True):
        block = summary if p is None else summary[summary[panel] == p]
        groups = _levels(block[line]) if line else [None]
        for k, level in enumerate(groups):
            g = block if level is None else block[block[line] == level]
            xs = g[x].astype(float).to_numpy() if numeric_x else np.arange(len(g), dtype=float)
            # lines side by side (a few % of a step), so equal values do not hide each other
            dodge = (k - (n_lines - 1) / 2) * 0.04
            xs = xs * 10 ** dodge if log_x else xs + dodge * (np.ptp(xs) or 1) / max(len(xs), 1)
            y = g[est].astype(float).to_numpy()
            lo = np.where(np.isnan(g[low].astype(float)), y, g[low].astype(float))
            hi = g[high].astype(float).to_numpy()
            hi = np.where(np.isnan(hi), budget if steps else y, hi)
            color = PALETTE[k % len(PALETTE)]
            ax.errorbar(xs, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
                        marker="o", capsize=3, color=color,
                        label=None if level is None else f"{line}={level}")
            missing = np.isnan(y)
            if steps and missing.any():
                ax.scatter(xs[missing], np.full(missing.sum(), budget), marker="^", s=60,
                           facecolors="white", edgecolors=color, linewidths=1.6, zorder=3)
            if not numeric_x:
                ax.set_xticks(np.arange(len(g)), [str(v) for v in g[x]], rotation=30, ha="right")
        if steps and (np.isnan(shown[:, 0]).any() or np.isnan(shown[:, 2]).any()):
            ax.axhline(budget, color="0.5", ls="--", lw=1)
        if log_x:
            ax.set_xscale("log")
        _ticks(ax, summary[x], numeric_x, log_x)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3, which="both" if log_y else "major")
        if p is not None:
            ax.set_title(f"{panel}={p}", fontsize=10)
    kind = "KM median" if steps else "mean"
    axes[0].set_ylabel(f"{LABELS.get(metric, metric)} ({kind}, 95% CI)")
    if line:
        axes[-1].legend(fontsize=8, loc="best")
    n = _seeds(runs)
    _title(fig, f"{exp.title or exp.name} ({n} seed{'s' if n != 1 else ''} per arm)")
    return {metric.replace("_", "-"): fig}


# ------------------------------------------------------------------------- Kaplan-Meier

def _panel_blocks(exp, runs: pd.DataFrame, curve_factor: str | None):
    """[(panel title, runs of the panel)]: one panel per combination of the varying factors
    other than ``curve_factor`` (file order), the whole table when there is none."""
    x, line, panel = layout(exp)
    keys = [f for f in (panel, x, line) if f is not None and f != curve_factor]
    if not keys:
        return [("", runs)]
    blocks = []
    for values, g in runs.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        blocks.append((", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)), g))
    return blocks


def _grid(n: int, width: float, height: float, max_cols: int = 4, **kw):
    """(figure, its n visible panels, columns): panels of ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure


    rows, cols = shape(n, max_cols)
    fig = Figure(figsize=(max(6.0, width * cols + 0.6), height * rows + 1.3),
                 layout="constrained")
    return fig, panel_axes(fig, n, max_cols, **kw), cols


def km_figure(inp: FigureInput):
    """Kaplan-Meier curves of the fraction of seeds at the target by step s: a curve per level
    of the second varying factor (or of the first, when only one varies), a panel per
    combination of the others; log step axis; reached counts in each panel's title. None
    without a target or with more than MAX_PANELS panels."""
    exp, runs = inp.exp, inp.runs
    if "steps_to_target" not in runs or not runs["reached"].astype(bool).any():
        return None
    x, line, _panel = layout(exp)
    curve = line or x
    blocks = _panel_blocks(exp, runs, curve)
    if len(blocks) > MAX_PANELS:
        return None
    fig, axes, cols = _grid(len(blocks), 3.1, 2.7, sharex=True, sharey=True)
    budget = float(runs["max_steps"].max())
    start = first_step(runs) / 1.5
    levels = _levels(runs[curve]) if curve else [None]
    for k, (ax, (title, block)) in enumerate(zip(axes, blocks, strict=True)):
        counts = []
        for j, level in enumerate(levels):
            g = block if level is None else block[block[curve] == level]
            if g.empty:
                continue
            km = kaplan_meier(*steps_of_runs(g))
            xs = np.concatenate(([start], km.times, [budget]))
            ys = np.concatenate(([0.0], 1 - km.survival,
                                 [1 - km.survival[-1] if km.survival.size else 0.0]))
            label = "all" if level is None else f"{curve}={level}"
            ax.step(xs, ys, where="post", color=PALETTE[j % len(PALETTE)], lw=2, label=label)
            counts.append(f"{level if level is not None else 'all'} {km.n_reached}/{km.n}")
        ax.axhline(0.5, color="0.6", ls=":", lw=1, label="half of the seeds")
        ax.set_title(f"{title}\nreached: {', '.join(counts)}".strip(), fontsize=9)
        ax.set_ylim(-0.02, 1.04)
        ax.set_xscale("log")
        ax.set_xlim(start, budget)
        ax.grid(alpha=0.3)
        if k + cols >= len(blocks):  # the lowest panel of its column
            ax.set_xlabel("training step")
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % cols == 0:
            ax.set_ylabel("fraction at target")

    figure_legend(fig, axes[:1], ncol=min(4, len(levels) + 1))
    _title(fig, f"Fraction of seeds at {_target_text(runs)} {_split(runs)} accuracy by step s "
                f"(Kaplan-Meier), {exp.name} on {inp.dataset} ({_seeds(runs)} seeds per arm)")
    return fig


# ------------------------------------------------------------------------------- curves

def _seed_table(curves: pd.DataFrame, arm: str, metric: str, steps: np.ndarray) -> pd.DataFrame:
    """(step x seed) table of a metric; missing after a seed stopped (reached the target)."""
    c = curves[curves["arm"] == arm]
    return c.pivot_table(index="step", columns="seed", values=metric,
                         aggfunc="mean").reindex(steps)


def _with_levels(exp, runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    levels = runs.drop_duplicates("arm")[["arm", *exp.factors]]
    return curves.merge(levels, on="arm", how="left")


def curves_figure(inp: FigureInput):
    """Eval accuracy against the step at the last level of the first varying factor (e.g. the
    deepest net) when a second one varies, a panel per level of the third (or per level of
    the first, when it is the only one): a line colour per level of the second; thin lines
    are seeds, a dot where one reached the target and stopped; thick, the median of the
    seeds still training (while two are) with their interquartile range. A stopped seed is
    not carried on at its last value: that would average frozen values with running ones."""
    exp, runs, curves = inp.exp, inp.runs, inp.curves
    if curves is None or curves.empty or "eval_accuracy" not in curves:
        return None
    x, line, panel = layout(exp)
    where = ""
    if line is not None:  # x at its last level; lines: the second factor; panels: the third
        last = exp.factors[x][-1]
        last = next((v for v in _levels(runs[x]) if str(v) == str(last)), _levels(runs[x])[-1])
        runs = runs[runs[x] == last]
        where, colour, panels_by = f" at {x}={last}", line, panel
    else:  # one factor (or none): a line per arm, one panel
        colour, panels_by = x, None
    blocks = ([(f"{panels_by}={v}", runs[runs[panels_by] == v]) for v in _levels(runs[panels_by])]
              if panels_by else [("", runs)])
    if len(blocks) > MAX_PANELS:
        return None
    fig, axes, _cols = _grid(len(blocks), 5.0, 3.9, max_cols=3, sharey=True)
    target = float(runs["target"].iloc[0]) if "target" in runs and len(runs) else 0.0
    steps = np.sort(curves["step"].unique())
    for ax, (title, block) in zip(axes, blocks, strict=True):
        counts = []
        levels = _levels(block[colour]) if colour else [None]
        for j, level in enumerate(levels):
            color = PALETTE[j % len(PALETTE)]
            g = block if level is None else block[block[colour] == level]
            name = "all" if level is None else str(level)
            for arm in _levels(g["arm"]):
                r = g[g["arm"] == arm]
                reached = set(r.loc[r["reached"].astype(bool), "seed"].astype(int))
                t = _seed_table(curves, arm, "eval_accuracy", steps)
                for seed in t.columns:
                    ax.plot(steps, t[seed], color=color, alpha=0.35, lw=0.8)
                    last = t[seed].last_valid_index()
                    if int(seed) in reached and last is not None and r["stop_at_target"].astype(
                            bool).any():
                        ax.plot([last], [t.loc[last, seed]], "o", color=color, ms=3.5,
                                alpha=0.8)
                running = t.where(t.notna().sum(axis=1) >= 2)
                with warnings.catch_warnings():  # all-NaN rows: fewer than two seeds left
                    warnings.simplefilter("ignore", RuntimeWarning)
                    low, est, high = np.nanpercentile(running.to_numpy(float), [25, 50, 75],
                                                      axis=1)
                ax.plot(steps, est, color=color, lw=2.2,
                        label=name if colour is None else f"{colour}={level}")
                ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
                counts.append(f"{name} {len(reached)}/{t.shape[1]}")
        if target > 0:
            ax.axhline(target, color="0.3", ls="--", lw=1, label=f"target {target:.0%}")
            ax.text(0.97, 0.03, "reached: " + ", ".join(counts), transform=ax.transAxes,
                    ha="right", fontsize=8, color="0.25")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{_split(runs)} accuracy")
        ax.grid(alpha=0.3)
        finals = curves[curves["arm"].isin(block["arm"])]["eval_accuracy"]
        ax.set_ylim(max(0.0, float(np.nanpercentile(finals, 5)) - 0.05) if len(finals) else 0,
                    1.01)
    figure_legend(fig, axes, ncol=4)
    _title(fig, f"{_split(runs).capitalize()} accuracy during training{where}, {exp.name} on "
                f"{inp.dataset} ({_seeds(runs)} seeds per arm; thin: seeds; thick: median, "
                "interquartile band)")
    return fig


def train_loss_figure(inp: FigureInput):
    """Training loss against the step, a line per arm: the geometric mean over the seeds
    with its 95% interval (log axis). None without curves."""
    exp, runs, curves = inp.exp, inp.runs, inp.curves
    if curves is None or curves.empty or "train_loss" not in curves:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = fig.subplots()
    for k, arm in enumerate(_levels(runs["arm"])):
        c = curves[curves["arm"] == arm]
        table = c.pivot_table(index="step", columns="seed", values="train_loss", aggfunc="mean")
        est, low, high = mean_band(table, log=True)
        color = PALETTE[k % len(PALETTE)]
        label = _arm_label(exp, arm)
        ax.plot(table.index, est, color=color, lw=1.8, label=label)
        ax.fill_between(table.index, low, high, color=color, alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (geometric mean, 95% CI)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2 if runs["arm"].nunique() > 6 else 1, loc="best")
    _title(fig, f"Training loss, {exp.name} on {inp.dataset} ({_seeds(runs)} seeds per arm)")
    return fig


# ------------------------------------------------------------------------------- timing

def timing_figure(inp: FigureInput):
    """Against the first varying factor, a line per combination of the others: ms per
    training step (all seeds vmapped; compile and evaluation excluded), and the time to
    target = Kaplan-Meier median steps x step time with the steps' interval. None when no
    factor varies."""
    from matplotlib.figure import Figure


    exp, runs = inp.exp, inp.runs
    x, line, panel = layout(exp)
    if x is None or exp.search is not None:
        return None
    summary = summarize(exp, runs)
    numeric_x = _numeric(summary[x])
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    ax_step, ax_ttt = fig.subplots(1, 2)
    groups = [f for f in (line, panel) if f]
    styles = ["-", "--", ":", "-."]
    panel_levels = _levels(summary[panel]) if panel else [None]
    for key, g in (summary.groupby(groups, sort=False) if groups else [((), summary)]):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{f}={v}" for f, v in zip(groups, key, strict=True)) or "all"
        color = PALETTE[(_levels(summary[line]).index(key[0]) if line else 0) % len(PALETTE)]
        ls = styles[panel_levels.index(key[-1]) % len(styles)] if panel else "-"
        xs = g[x].astype(float).to_numpy() if numeric_x else np.arange(len(g), dtype=float)
        scale = g["step_ms"].to_numpy(float) / 1e3
        ax_step.plot(xs, g["step_ms"], marker="o", ls=ls, color=color, label=label)
        ax_ttt.plot(xs, g["median_steps"].to_numpy(float) * scale, marker="o", ls=ls,
                    color=color, label=label)
        ax_ttt.fill_between(xs, g["steps_low"].to_numpy(float) * scale,
                            g["steps_high"].to_numpy(float) * scale, color=color, alpha=0.12,
                            lw=0)
        if not numeric_x:
            for ax in (ax_step, ax_ttt):
                ax.set_xticks(np.arange(len(g)), [str(v) for v in g[x]], rotation=30,
                              ha="right")
    for ax in (ax_step, ax_ttt):
        _ticks(ax, summary[x], numeric_x, False)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    ax_step.set_ylim(bottom=0)
    ax_ttt.set_yscale("log")  # times to target span orders of magnitude across arms
    ax_step.set_ylabel("ms per training step (all seeds vmapped)")
    ax_step.set_title("time per step (compile and evaluation excluded)", fontsize=10)
    ax_ttt.set_ylabel(f"seconds to {_target_text(runs)} {_split(runs)} accuracy (log)")
    ax_ttt.set_title("time to target = median steps x step time", fontsize=10)
    _title(fig, f"Step time and time to target, {exp.name} on {inp.dataset} "
                f"({_seeds(runs)} seeds per arm)")
    return fig


# ------------------------------------------------------------------- speed and schedules

def _arm_label(exp, arm: str) -> str:
    """An arm's name in a legend: the levels of the factors that vary (one factor: its level
    alone), e.g. "adam" for "optimizer=adam,lr_source=default" when only optimizer varies."""
    varied = {f for f in exp.factors if len(exp.factors[f]) > 1}
    parts = [p for p in arm.split(",") if p.split("=", 1)[0] in varied]
    if len(parts) == 1:
        return parts[0].split("=", 1)[1]
    return ",".join(parts) or arm


DODGE = 0.013  # sideways spread of arms with equal median steps, share of the budget


def speed_quality_figure(inp: FigureInput):
    """Speed vs quality, per arm: x the Kaplan-Meier median steps to target (95% interval; a
    median never reached sits at the budget as an open marker), y the first shown final
    metric (final eval accuracy when none is shown; mean, 95% interval). Colour: the level of
    the first varying factor; dashed bars: the later levels of the second (e.g. tuned arms).
    Arms with equal medians (steps lie on the evaluation grid) are spread sideways by
    ``DODGE`` of the budget; every marker is named. None when the runs have no target."""
    from matplotlib.figure import Figure


    exp, runs = inp.exp, inp.runs
    if "target" not in runs or not (runs["target"].astype(float) > 0).any():
        return None
    metric = next((m for m in exp.show if m not in ("steps_to_target", "time_to_target_s")),
                  "final_eval_accuracy")
    shown = exp if metric in exp.show else dataclasses.replace(exp, show=(*exp.show, metric))
    s = summarize(shown, runs)
    varied = [f for f in exp.factors if len(exp.factors[f]) > 1]
    colours = _levels(s[varied[0]]) if varied else []
    styles = _levels(s[varied[1]]) if len(varied) > 1 else []
    budget = float(runs["max_steps"].max())
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    ax = fig.subplots()
    at = s["median_steps"].astype(float).fillna(budget).to_numpy()
    shift, tied = np.zeros(len(s)), np.zeros(len(s), bool)
    for x0 in np.unique(at):  # ties: centred offsets -1.5, -0.5, 0.5, 1.5 ... x DODGE x budget
        same = np.flatnonzero(at == x0)
        shift[same] = (np.arange(same.size) - (same.size - 1) / 2) * DODGE * budget
        tied[same] = same.size > 1
    for i, (_, r) in enumerate(s.iterrows()):
        colour = PALETTE[colours.index(r[varied[0]]) % len(PALETTE) if varied else 0]
        name = ", ".join(str(r[f]) for f in varied) or r["arm"]
        reached = np.isfinite(r["median_steps"])
        x = r["median_steps"] if reached else budget
        lo = r["steps_low"] if np.isfinite(r["steps_low"]) else x
        hi = r["steps_high"] if np.isfinite(r["steps_high"]) else budget
        xerr = [[max(x - lo, 0)], [max(hi - x, 0)]] if reached else None
        x += shift[i]
        y, y_lo, y_hi = r[metric], r[f"{metric}_low"], r[f"{metric}_high"]
        yerr = [[max(y - y_lo, 0)], [max(y_hi - y, 0)]] if np.isfinite(y) else None
        bars = ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o" if reached else ">", ms=8,
                           color=colour, mfc=colour if reached else "white", capsize=3, lw=1.5,
                           label=f"{name} ({r['reached']}/{r['n']} reached)")
        if styles and styles.index(r[varied[1]]) > 0:
            for line in bars[2]:
                line.set_linestyle("--")
        if np.isfinite(y):  # the name just above the interval bar
            ax.annotate(name, (x, y_hi if np.isfinite(y_hi) else y), xytext=(0, 4),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        color=colour, rotation=90 if tied[i] else 0)
    lo_y, hi_y = ax.get_ylim()
    ax.set_ylim(lo_y, hi_y + 0.2 * (hi_y - lo_y))  # room for the names
    ax.axvline(budget, color="0.4", ls=":", lw=1,
               label="step budget (open marker: median not reached)")
    ax.set_xlim(0, budget * 1.1)
    split = {"val": "validation"}.get(_split(runs), _split(runs))
    ax.set_xlabel(f"steps to {_target_text(runs)} {split} accuracy (Kaplan-Meier median, "
                  "95% CI; equal medians spread sideways)")
    ax.set_ylabel(f"{LABELS.get(metric, metric)} (mean, 95% CI)")
    ax.grid(alpha=0.3)
    figure_legend(fig, [ax], ncol=3)
    dashed = f"; dashed: {varied[1]} {', '.join(map(str, styles[1:]))}" if styles else ""
    better = "lower" if "loss" in metric else "upper"
    _title(fig, f"{exp.title or exp.name}: speed vs quality on {inp.dataset} "
                f"({n_seeds_text(runs)}; {better} left is best{dashed})")
    return fig


def has_schedules(curves: pd.DataFrame | None) -> bool:
    """Whether the learning rate of some arm changes during training."""
    return curves is not None and "learning_rate" in curves and bool(
        (curves.groupby("arm")["learning_rate"].nunique() > 1).any())


def learning_rate_figure(inp: FigureInput):
    """Per arm, the learning rate (log axis) and the mean eval accuracy over seeds against
    the step. None unless some arm's learning rate changes during training."""
    from matplotlib.figure import Figure


    exp, runs, curves = inp.exp, inp.runs, inp.curves
    if exp.search is not None or not has_schedules(curves):
        return None
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for k, arm in enumerate(_levels(runs["arm"])):
        mean = curves[curves["arm"] == arm].groupby("step")[
            ["learning_rate", "eval_accuracy"]].mean()
        color = PALETTE[k % len(PALETTE)]
        top.plot(mean.index, mean["learning_rate"], color=color, label=_arm_label(exp, arm))
        bottom.plot(mean.index, mean["eval_accuracy"], color=color)
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
    bottom.set_ylabel(f"eval accuracy (mean of {_seeds(runs)} seeds)")
    bottom.set_xlabel("step")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=8, ncol=2, loc="best")
    _title(fig, f"{exp.name}: learning rate and eval accuracy per step")
    return fig
