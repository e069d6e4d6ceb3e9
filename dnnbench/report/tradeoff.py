"""The speed-vs-quality figure of any experiment file with a target: per arm, steps to the
target (Kaplan-Meier median, 95% interval) against a final metric (mean, 95% interval)."""

from __future__ import annotations

import math

import numpy as np

DODGE = 0.013  # sideways spread of arms with equal medians, share of the budget


def _value_metric(exp) -> str:
    """The first shown metric that is not steps or time to target (final eval accuracy when
    none is shown)."""
    return next((m for m in exp.show if m not in ("steps_to_target", "time_to_target_s")),
                "final_eval_accuracy")


def tradeoff_figure(inp):
    """x: steps to the target (KM median with its 95% interval; a median never reached sits
    at the budget as an open marker), y: the first shown final metric (mean, 95% interval);
    one marker per arm, coloured by the level of the first varied factor, hollow bars
    (dashed) for the second factor's later levels (e.g. tuned arms). Arms with equal medians
    (steps lie on the evaluation grid) are spread sideways by ``DODGE`` of the budget, each
    labelled. None when the runs have no target."""
    from matplotlib.figure import Figure

    from dnnbench.experiments.generic import summarize
    from dnnbench.report.figures import (
        PALETTE,
        _figure_legend,
        _finish,
        n_seeds_text,
        target_text,
    )
    from dnnbench.report.generic import LABELS

    exp, runs = inp.exp, inp.runs
    target = runs["target"].astype(float) if "target" in runs else None
    if target is None or not (target > 0).any() or "steps_to_target" not in exp.show:
        return None
    metric = _value_metric(exp)
    s = summarize(exp, runs)
    varied = [f for f in exp.factors if len(exp.factors[f]) > 1] or list(exp.factors)[:1]
    colour_by = varied[0] if varied else None
    style_by = varied[1] if len(varied) > 1 else None
    colours = list(dict.fromkeys(s[colour_by])) if colour_by else []
    styles = list(dict.fromkeys(s[style_by])) if style_by else []
    budget = float(runs["max_steps"].max())
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    ax = fig.subplots()
    at = s["median_steps"].fillna(budget).to_numpy(float)
    shift, tied = np.zeros(len(s)), np.zeros(len(s), bool)
    for x0 in np.unique(at):  # ties: centred offsets -1.5, -0.5, 0.5, 1.5 ... x DODGE x budget
        same = np.flatnonzero(at == x0)
        shift[same] = (np.arange(same.size) - (same.size - 1) / 2) * DODGE * budget
        tied[same] = same.size > 1
    for i, (_, r) in enumerate(s.iterrows()):
        colour = PALETTE[colours.index(r[colour_by]) % len(PALETTE)] if colour_by else PALETTE[0]
        later = bool(style_by) and styles.index(r[style_by]) > 0
        name = ", ".join(str(r[f]) for f in varied) or r["arm"]
        reached = not math.isnan(r["median_steps"])
        x = r["median_steps"] if reached else budget
        lo = r["steps_low"] if not math.isnan(r["steps_low"]) else x
        hi = r["steps_high"] if not math.isnan(r["steps_high"]) else budget
        xerr = [[max(x - lo, 0)], [max(hi - x, 0)]] if reached else None
        x += shift[i]
        y = r[metric]
        yerr = [[max(y - r[f"{metric}_low"], 0)], [max(r[f"{metric}_high"] - y, 0)]] \
            if not math.isnan(y) else None
        bars = ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o" if reached else ">", ms=8,
                           color=colour, mfc=colour if reached else "white", capsize=3, lw=1.5,
                           label=f"{name} ({r['reached']}/{r['n']} reached)")
        if later:
            for line in bars[2]:
                line.set_linestyle("--")
        if not math.isnan(y):  # the name just above the interval bar
            top = r[f"{metric}_high"] if not math.isnan(r[f"{metric}_high"]) else y
            ax.annotate(name, (x, top), xytext=(0, 4), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, color=colour,
                        rotation=90 if tied[i] else 0)
    lo_y, hi_y = ax.get_ylim()
    ax.set_ylim(lo_y, hi_y + 0.2 * (hi_y - lo_y))  # room for the names
    ax.axvline(budget, color="0.4", ls=":", lw=1,
               label="step budget (open marker: median not reached)")
    ax.set_xlim(0, budget * 1.1)
    split = ({"val": "validation", "test": "test"}.get(str(runs["eval_split"].iloc[0]), "eval")
             if "eval_split" in runs else "eval")
    ax.set_xlabel(f"steps to {target_text(runs)} {split} accuracy (Kaplan-Meier median, "
                  "95% CI; equal medians spread sideways)")
    ax.set_ylabel(f"{LABELS.get(metric, metric)} (mean, 95% CI)")
    ax.grid(alpha=0.3)
    _figure_legend(fig, [ax], ncol=3)
    dashed = f"; dashed: {style_by} {', '.join(map(str, styles[1:]))}" if style_by else ""
    better = "upper" if "accuracy" in metric else "lower"
    return _finish(fig, f"Speed vs quality on {inp.dataset} ({n_seeds_text(runs)}; "
                        f"{better} left is best{dashed})")
