"""The generic figure kinds (see :mod:`dnnbench.report.figure_kinds`), drawn from the common
result schema of any experiment file.

Layout, for every kind: the factors that vary (two levels or more) in file order; the first
is the x axis (or, for the step-wise kinds, the panels), the second a line per level, the
third a panel per level.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import textwrap
import warnings

import numpy as np
import pandas as pd

from dnnbench.analysis.summary import summarize
from dnnbench.definition.figures import FIGURES
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


def in_grid(table: pd.DataFrame, *factors: str | None) -> pd.DataFrame:
    """``table`` without the rows that have no level of one of ``factors`` (a transfer file's
    shared model A, whose B-arm levels are empty): they belong to no point of the figure."""
    named = [f for f in factors if f]
    return table[table[named].notna().all(axis=1)] if named else table


def joined(exp, table: pd.DataFrame, line: str | None) -> tuple[pd.DataFrame, str | None]:
    """(table, line): with factors beyond the third varying, a line per combination of the
    second factor's level with theirs (a new column, e.g. "stage, reused" = "stage=B-on-A,
    reused=frozen": :func:`legend_label` shows the value alone), so that arms that differ
    only there are told apart."""
    more = [f for f in exp.factors if len(exp.factors[f]) > 1][3:]
    if not line or not more:
        return table, line
    name = ", ".join((line, *more))
    named = [table[f].astype(str).radd(f"{f}=") for f in (line, *more)]
    return table.assign(**{name: pd.concat(named, axis=1).agg(", ".join, axis=1)}), name


def legend_label(line: str, level) -> str:
    """A line's legend entry: factor=level (a joined line's value names its factors)."""
    return str(level) if ", " in line else f"{line}={level}"


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
    summary, line = joined(exp, in_grid(summary, x, line, panel), line)
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
    x_levels = [str(v) for v in _levels(summary[x])]
    for ax, p in zip(axes, panels, strict=True):
        block = summary if p is None else summary[summary[panel] == p]
        groups = _levels(block[line]) if line else [None]
        for k, level in enumerate(groups):
            g = block if level is None else block[block[line] == level]
            if numeric_x:
                xs = g[x].astype(float).to_numpy()
                # lines side by side (a few % of a step), so equal values do not hide each other
                dodge = (k - (n_lines - 1) / 2) * 0.04
                xs = (xs * 10 ** dodge if log_x else
                      xs + dodge * (np.ptp(xs) or 1) / max(len(xs), 1))
            else:  # named levels: each at its place, the second factor's side by side
                xs = np.array([x_levels.index(str(v)) for v in g[x]], dtype=float)
                xs += (k - (n_lines - 1) / 2) * min(0.18, 0.7 / n_lines)
            y = g[est].astype(float).to_numpy()
            lo = np.where(np.isnan(g[low].astype(float)), y, g[low].astype(float))
            hi = g[high].astype(float).to_numpy()
            hi = np.where(np.isnan(hi), budget if steps else y, hi)
            color = PALETTE[k % len(PALETTE)]
            # a line joins the levels of a numeric factor only: named levels (optimizers,
            # placements) have no order and nothing lies between them
            ax.errorbar(xs, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
                        marker="o", capsize=3, color=color, ls="-" if numeric_x else "none",
                        label=None if level is None else legend_label(line, level))
            missing = np.isnan(y)
            if steps and missing.any():
                ax.scatter(xs[missing], np.full(missing.sum(), budget), marker="^", s=60,
                           facecolors="white", edgecolors=color, linewidths=1.6, zorder=3)
        if not numeric_x:
            ax.set_xticks(np.arange(len(x_levels)), x_levels, rotation=30, ha="right")
            ax.set_xlim(-0.6, len(x_levels) - 0.4)
        if steps and (np.isnan(shown[:, 0]).any() or np.isnan(shown[:, 2]).any()):
            ax.axhline(budget, color="0.5", ls="--", lw=1)
        if log_x:
            ax.set_xscale("log")
        _ticks(ax, summary[x], numeric_x, log_x)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3, which="both" if log_y else "major", axis="both" if numeric_x else "y")
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

def _seed_table(curves: pd.DataFrame, arm: str, metric: str) -> pd.DataFrame:
    """(step x seed) table of a metric on the arm's own evaluation steps; missing after a
    seed stopped (it reached the target, stopped early or diverged)."""
    c = curves[curves["arm"] == arm]
    return c.pivot_table(index="step", columns="seed", values=metric, aggfunc="mean")


def carried(table: pd.DataFrame, budgets: dict | None = None) -> pd.DataFrame:
    """A (step x seed) table in which a seed that stopped before the table's last step keeps
    its last value until its budget (``budgets``: seed -> max_steps; none: to the end). A
    median over the seeds then counts a seed that reached the target and stopped at the
    value it stopped at, instead of dropping it and leaving the slow seeds to set the
    median (which falls towards chance when only failing seeds are left)."""
    out = table.copy()
    budgets = budgets or {}
    for seed in out.columns:
        last = out[seed].last_valid_index()
        if last is None:
            continue
        fill = (out.index > last) & (out.index <= budgets.get(seed, np.inf))
        out.loc[fill, seed] = out.at[last, seed]
    return out


def _with_levels(exp, runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    levels = runs.drop_duplicates("arm")[["arm", *exp.factors]]
    return curves.merge(levels, on="arm", how="left")


MAX_COLOURS = 8  # more levels than this in one panel: a panel per level instead


def _budgets_differ(runs: pd.DataFrame, by: str) -> bool:
    """Whether the levels of ``by`` train for budgets a factor of 3 apart or more (e.g.
    transfer's stages: one panel each, or the short ones are squeezed against the axis)."""
    if "max_steps" not in runs or by is None:
        return False
    b = runs.groupby(by, sort=False)["max_steps"].max().astype(float)
    return bool(len(b) > 1 and b.max() >= 3 * b.min())


def curve_layout(exp, runs: pd.DataFrame):
    """How the learning curves are laid out: (runs shown, "where" text, colour factor, panel
    factors). One factor: a colour per level (a panel per level when it has more than
    MAX_COLOURS). Two or more: a colour per level of the second, a panel per level of the
    first (and of the third), as long as that makes MAX_PANELS panels at most; else the
    first factor at its last level (e.g. the deepest net), a panel per level of the third.
    Levels whose budgets differ by a factor of 3 or more (transfer's stages) get a panel
    per budget ("max_steps")."""
    x, line, panel = layout(exp)
    runs = in_grid(runs, x, line, panel)
    if line is None:
        if x is not None and runs[x].nunique() > MAX_COLOURS:
            return runs, "", None, [x]
        return runs, "", x, ["max_steps"] if _budgets_differ(runs, x) else []
    n_panels = runs[x].nunique() * (runs[panel].nunique() if panel else 1)
    if n_panels > MAX_PANELS:
        last = exp.factors[x][-1]
        last = next((v for v in _levels(runs[x]) if str(v) == str(last)), _levels(runs[x])[-1])
        shown, where, keys = runs[runs[x] == last], f" at {x}={last}", [panel]
    else:  # a row of panels per level of the third factor
        shown, where, keys = runs, "", [panel, x]
    keys = [k for k in keys if k is not None]
    return shown, where, line, [*keys, "max_steps"] if _budgets_differ(shown, line) else keys


def curves_figure(inp: FigureInput):
    """Eval accuracy against the step (layout: :func:`curve_layout`): thin lines are seeds, a
    dot where one reached the target and stopped, a cross where one diverged; thick, the
    median over all the seeds of the arm with their interquartile range, a seed that stopped
    before its budget counted at its last value (:func:`carried`). Returns the figure with a
    caption that says so. None without curves, for a search, or with more than MAX_PANELS
    panels."""
    exp, runs, curves = inp.exp, inp.runs, inp.curves
    if (curves is None or curves.empty or "eval_accuracy" not in curves
            or getattr(exp, "search", None) is not None):
        return None
    runs, where, colour, keys = curve_layout(exp, runs)
    runs, colour = joined(exp, runs, colour)
    blocks = []
    for values in itertools.product(*(_levels(runs[k]) for k in keys)):
        g = runs[np.logical_and.reduce([runs[k] == v for k, v in zip(keys, values,
                                                                       strict=True)])
                 ] if keys else runs
        if len(g):
            blocks.append((", ".join(f"budget {v} steps" if k == "max_steps" else f"{k}={v}"
                                     for k, v in zip(keys, values, strict=True)), g))
    if len(blocks) > MAX_PANELS or not blocks:
        return None
    big = len(blocks) <= 6
    # a row per level of the third factor when the first has 5 levels or fewer
    per_row = runs[keys[1]].nunique() if len(keys) == 2 and keys[1] != "max_steps" else 0
    cols = per_row if 1 < per_row <= 5 and not big else 3 if big else 4
    fig, axes, _cols = _grid(len(blocks), 5.0 if big else 3.7, 3.9 if big else 3.0,
                             max_cols=cols, sharey=True)
    target = float(runs["target"].iloc[0]) if "target" in runs and len(runs) else 0.0
    stops = "stop_at_target" in runs and bool(runs["stop_at_target"].astype(bool).any())
    n_carried = 0
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
                diverged = (set(r.loc[r["diverged"].astype(bool), "seed"].astype(int))
                            if "diverged" in r else set())
                t = _seed_table(curves, arm, "eval_accuracy")
                if t.empty:
                    continue
                steps = t.index.to_numpy(float)
                budgets = (r.set_index("seed")["max_steps"].to_dict()
                           if "max_steps" in r else {})
                for seed in t.columns:
                    ax.plot(steps, t[seed], color=color, alpha=0.35, lw=0.8)
                    last = t[seed].last_valid_index()
                    if last is None:
                        continue
                    if int(seed) in diverged:
                        ax.plot([last], [t.loc[last, seed]], "x", color=color, ms=4.5)
                    elif (int(seed) in reached and stops
                          and last < budgets.get(seed, np.inf)):
                        ax.plot([last], [t.loc[last, seed]], "o", color=color, ms=3.5,
                                alpha=0.8)
                full = carried(t, budgets)
                n_carried += int((full.notna() & t.isna()).to_numpy().any())
                with warnings.catch_warnings():  # all-NaN rows (none in practice)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    low, est, high = np.nanpercentile(full.to_numpy(float), [25, 50, 75],
                                                      axis=1)
                ax.plot(steps, est, color=color, lw=2.2,
                        label="median of the seeds" if colour is None else
                        legend_label(colour, level))
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
    # one y range for the shared axes: the early evaluations may fall below it, but no
    # seed's last value does (an arm stuck at chance stays in view)
    shown = curves[curves["arm"].isin(runs["arm"])]
    if len(shown):
        lasts = shown.sort_values("step").groupby(["arm", "seed"])["eval_accuracy"].last()
        low = min(float(np.nanpercentile(shown["eval_accuracy"], 5)), float(lasts.min()))
        axes[0].set_ylim(max(0.0, low - 0.05), 1.01)
    figure_legend(fig, axes, ncol=4)
    held = "; stopped seeds held at their last value" if n_carried else ""
    _title(fig, f"{_split(runs).capitalize()} accuracy during training{where}, {exp.name} on "
                f"{inp.dataset} ({n_seeds_text(runs)}; thin: seeds; thick: median, "
                f"interquartile band{held})")
    diverged = "diverged" in runs and bool(runs["diverged"].astype(bool).any())
    return fig, curves_caption(where, bool(n_carried), stops, diverged)


def curves_caption(where: str, held: bool, stops: bool, diverged: bool) -> str:
    """The learning curves' caption: what the lines are and how stopped seeds count."""
    text = f"Eval accuracy during training{where}: thin lines are seeds"
    marks = (["a dot where one reached the target and stopped"] if stops else []) + (
        ["a cross where one diverged"] if diverged else [])
    if marks:
        text += f" ({'; '.join(marks)})"
    text += "; thick, the median over all the arm's seeds with their interquartile range"
    if held:
        text += (", a seed that stopped before its budget (it reached the target, stopped "
                 "early or diverged) counted at its last value: the median does not fall "
                 "when seeds that reached the target stop, and ends where the arm's last "
                 "seed stopped")
    return text + "."


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
    """Against the first varying factor, a line per combination of the others (named
    levels, e.g. optimizers: points side by side, no line between them): ms per
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
    x_levels = [str(v) for v in _levels(summary[x])]
    grouped = list(summary.groupby(groups, sort=False)) if groups else [((), summary)]
    groups_seen = [k if isinstance(k, tuple) else (k,) for k, _ in grouped]
    n_groups = len(groups_seen)
    for key, g in grouped:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{f}={v}" for f, v in zip(groups, key, strict=True)) or "all"
        color = PALETTE[(_levels(summary[line]).index(key[0]) if line else 0) % len(PALETTE)]
        k = _levels(summary[panel]).index(key[-1]) if panel else 0
        scale = g["step_ms"].to_numpy(float) / 1e3
        ttt = g["median_steps"].to_numpy(float) * scale
        low, high = (g["steps_low"].to_numpy(float) * scale,
                     g["steps_high"].to_numpy(float) * scale)
        if numeric_x:
            xs = g[x].astype(float).to_numpy()
            ls = styles[k % len(styles)] if panel else "-"
            ax_step.plot(xs, g["step_ms"], marker="o", ls=ls, color=color, label=label)
            ax_ttt.plot(xs, ttt, marker="o", ls=ls, color=color, label=label)
            ax_ttt.fill_between(xs, low, high, color=color, alpha=0.12, lw=0)
            continue
        # named levels: points side by side (no line joins levels that have no order),
        # the third factor's levels by marker; the time to target with its interval as bars
        xs = np.array([x_levels.index(str(v)) for v in g[x]], dtype=float)
        xs += (groups_seen.index(key) - (n_groups - 1) / 2) * min(0.18, 0.7 / n_groups)
        marker = "osD^v<>"[k % 7]
        ax_step.plot(xs, g["step_ms"], marker=marker, ls="none", color=color,
                     label=label)
        ax_ttt.errorbar(xs, ttt, yerr=[np.maximum(ttt - np.where(np.isnan(low), ttt, low), 0),
                                       np.maximum(np.where(np.isnan(high), ttt, high) - ttt, 0)],
                        marker=marker, ls="none", capsize=3, color=color,
                        label=label)
    if not numeric_x:
        for ax in (ax_step, ax_ttt):
            ax.set_xticks(np.arange(len(x_levels)), x_levels, rotation=30, ha="right")
            ax.set_xlim(-0.6, len(x_levels) - 0.4)
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
    held = False
    for k, arm in enumerate(_levels(runs["arm"])):
        rate = curves[curves["arm"] == arm].groupby("step")["learning_rate"].mean()
        acc = _seed_table(curves, arm, "eval_accuracy")
        r = runs[runs["arm"] == arm]
        full = carried(acc, r.set_index("seed")["max_steps"].to_dict()
                       if "max_steps" in r else None)
        held |= bool((full.notna() & acc.isna()).to_numpy().any())
        color, ls = PALETTE[k % len(PALETTE)], ("-", "--", ":")[k // len(PALETTE) % 3]
        top.plot(rate.index, rate, color=color, ls=ls, label=_arm_label(exp, arm))
        bottom.plot(full.index, full.mean(axis=1), color=color, ls=ls)
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
    n_arms = runs["arm"].nunique()
    if n_arms <= 8:
        top.legend(fontsize=8, ncol=2, loc="best")
    else:  # many arms: below the panels, where it hides no curve
        fig.set_size_inches(10.0, 6.0 + 0.2 * math.ceil(n_arms / 2))
        figure_legend(fig, [top], ncol=2)
    _title(fig, f"{exp.name}: learning rate and eval accuracy per step"
                + (" (a seed that stopped early held at its last value)" if held else ""))
    if not held:
        return fig
    return fig, (f"{FIGURES['learning-rate'].caption} A seed that stopped before its budget "
                 "(it reached the target, stopped early or diverged) counts at its last "
                 "value: the mean does not jump when it stops.")
