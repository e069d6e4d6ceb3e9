"""Presentation of a search's results (an experiment file with ``[search]``): the chosen
points with intervals, each design's best over repetitions, the importance of each
parameter; figures: the outcome against each parameter, the best-so-far curve, a
two-parameter heatmap of the first stage, and (several repetitions) the distribution of
each design's chosen point."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.table import Table

from dnnbench.analysis import search as S
from dnnbench.definition import Experiment
from dnnbench.definition import search as searches
from dnnbench.report.console import LABELS
from dnnbench.report.figures import PALETTE, wrapped_suptitle
from dnnbench.stats import mean_ci

# the textbook's order of importance (Ng): 1 first; Adam's beta2 and epsilon last
TEXTBOOK_TIER = {"learning_rate": 1, "momentum": 2, "b1": 2, "width": 2, "batch_size": 2,
                 "depth": 3, "decay_steps": 3, "b2": 4, "eps": 4}


def _label(m: str) -> str:
    return LABELS.get(m, m)


def _ci(est, low, high, spec="{:.4f}") -> str:
    return f"{spec.format(est)} [{spec.format(low)}, {spec.format(high)}]"


def distribution_frame(exp: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """Per design and stage: the report value of the point each repetition chooses, its
    mean with a 95% interval over the repetitions, median, min and max."""
    s = exp.search
    rows = []
    for stage in range(1, S.drawn_stages(s, runs) + 1):
        best = S.chosen(s, runs, stage)
        for design, g in best.groupby("design", sort=False):
            v = g[s.report].astype(float).to_numpy()
            ci = mean_ci(v, method="t")
            rows.append({"design": design, "stages": stage, "repetitions": len(v),
                         "mean": ci.estimate, "low": ci.low, "high": ci.high,
                         "median": float(np.median(v)), "min": float(v.min()),
                         "max": float(v.max())})
    return pd.DataFrame(rows)


def search_frames(exp: Experiment, runs: pd.DataFrame, dataset: str
                  ) -> list[tuple[str, pd.DataFrame]]:
    """The search's summary as (title, display strings) tables: each design's chosen points,
    the best points with intervals, the importance of each parameter."""
    s = exp.search
    n_seeds = runs["seed"].nunique()
    out = []
    dist = distribution_frame(exp, runs)
    out.append(((f"{exp.name} on {dataset}: the point each search chooses (best mean "
                f"{_label(s.metric)} over {n_seeds} seeds), judged by {_label(s.report)}"),
                pd.DataFrame([{"design": r.design, "stages": str(r.stages),
                               "repetitions": str(r.repetitions),
                               "mean [95% CI]": _ci(r.mean, r.low, r.high),
                               "median": f"{r.median:.4f}", "min": f"{r.min:.4f}",
                               "max": f"{r.max:.4f}"} for r in dist.itertuples()])))
    best = S.best_points(s, runs, k=5 if s.repeats == 1 else 1)
    if s.repeats > 1:
        best = best[best["repeat"] == 0]
    params = [k for k in s.params if k in best.columns]
    out.append(("Best points" + (" (repetition 0)" if s.repeats > 1 else "") +
                f"; 95% intervals over {n_seeds} seeds", pd.DataFrame([{
                    "design": r["design"], "point": r[searches.POINT],
                    _label(s.metric): _ci(r[s.metric], r[f"{s.metric}_low"],
                                          r[f"{s.metric}_high"]),
                    _label(s.report): _ci(r[s.report], r[f"{s.report}_low"],
                                          r[f"{s.report}_high"]),
                    **{k: _fmt_value(r[k]) for k in params}} for _, r in best.iterrows()])))
    imp = importance_frame(exp, runs)
    if imp is not None:
        r2 = imp.attrs["r2"]
        from scipy.stats import spearmanr

        tiers = [TEXTBOOK_TIER.get(k) for k in imp["parameter"]]
        known = [i for i, t in enumerate(tiers) if t is not None]
        rho = (spearmanr(imp["importance"].iloc[known], [-tiers[i] for i in known])[0]
               if len(known) >= 3 else float("nan"))
        out.append(((f"Importance: share of the outcome's variance (half the drop in R^2 of a "
                    "random forest when a parameter is shuffled, held-out folds; stage 1; "
                    f"mean over {n_seeds} seeds, 95% interval; forest R^2 {r2[0]:.2f} "
                    f"[{r2[1]:.2f}, {r2[2]:.2f}]; rank correlation with the textbook's tiers "
                    f"{rho:.2f})"), pd.DataFrame([{
                        "rank": str(i), "parameter": r.parameter,
                        "importance": _ci(r.importance, r.low, r.high, "{:.3f}"),
                        "textbook tier": str(TEXTBOOK_TIER.get(r.parameter, "–"))}
                        for i, r in enumerate(imp.itertuples(), start=1)])))
    return out


LEFT = ("design", "point", "parameter")


def search_tables(exp: Experiment, runs: pd.DataFrame, dataset: str) -> list[Table]:
    """:func:`search_frames` as Rich tables."""
    tables = []
    for i, (title, df) in enumerate(search_frames(exp, runs, dataset)):
        t = Table(title=title, title_justify="left", header_style="bold",
                  caption=(exp.question or None) if i == 0 else None, caption_justify="left")
        for c in df.columns:
            t.add_column(c, justify="left" if c in LEFT else "right")
        for row in df.itertuples(index=False):
            t.add_row(*row)
        tables.append(t)
    return tables


def importance_frame(exp: Experiment, runs: pd.DataFrame) -> pd.DataFrame | None:
    """The importance of each parameter (search.importance) when the search has two
    parameters or more and 20 points or more; None otherwise."""
    s = exp.search
    if len(s.params) < 2 or runs[searches.POINT].nunique() < 20:
        return None
    return S.importance(s, runs)


def _fmt_value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------------------ figures

def figure_kind(inp) -> dict:
    """The figure kind "search" (dnnbench.report.figure_kinds): :func:`figures` of a
    search's results, captioned by name."""
    if inp.exp.search is None:
        return {}
    return {name: (fig, name.replace("-", " ")) for name, fig in figures(inp.exp, inp.runs).items()}


def figures(exp: Experiment, runs: pd.DataFrame) -> dict:
    figs = {"outcome-vs-parameters": outcome_figure(exp, runs),
            "best-so-far": best_so_far_figure(exp, runs)}
    heat = heatmap_figure(exp, runs)
    if heat is not None:
        figs["heatmap"] = heat
    if exp.search.repeats > 1:
        figs["chosen"] = chosen_figure(exp, runs)
    return figs


def _axis_values(param: searches.Param, values: pd.Series, jitter: int) -> np.ndarray:
    """Plotted values: one-minus-log as 1 - beta; a choice as its index, jittered."""
    if param.scale == "choice":
        x = np.array([param.values.index(v) for v in values], float)
        return x + np.random.default_rng(jitter).uniform(-0.15, 0.15, len(x))
    v = values.astype(float).to_numpy()
    return 1.0 - v if param.scale == "one-minus-log" else v


def outcome_figure(exp: Experiment, runs: pd.DataFrame):
    """The mean metric of every point against each parameter (log axes where sampled so),
    coloured by design and stage."""
    from matplotlib.figure import Figure


    s = exp.search
    table = S.point_table(s, runs)
    names = list(s.params)
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.3 * cols + 0.6, 2.9 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    groups = list(table.groupby(["design", "stage"], sort=False))
    for ax, k in zip(axes, names, strict=False):
        p = s.params[k]
        for i, ((design, stage), g) in enumerate(groups):
            x = _axis_values(p, g[f"value:{k}"], i)
            ax.scatter(x, g[s.metric], s=9, alpha=0.6, color=PALETTE[i % len(PALETTE)],
                       label=f"{design}, stage {stage}" if len(groups) > 1 else None)
        if p.scale == "choice":
            ax.set_xticks(range(len(p.values)), [searches.format_value(v) for v in p.values])
        if p.log_axis:
            ax.set_xscale("log")
        ax.set_xlabel(k + (" (1 - value)" if p.scale == "one-minus-log" else ""))
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel(f"{_label(s.metric)} (mean)")
    if len(groups) > 1:
        axes[0].legend(fontsize=7, loc="best")
    wrapped_suptitle(fig, f"{exp.title or exp.name}: outcome of every point")
    return fig


def best_so_far_figure(exp: Experiment, runs: pd.DataFrame):
    """The best mean metric among the first n points (drawing order, stages in turn): the
    median over repetitions with the range, one line per design."""
    from matplotlib.figure import Figure


    s = exp.search
    table = S.point_table(s, runs).sort_values(["stage", "index"])
    fig = Figure(figsize=(5.4, 3.6), layout="constrained")
    ax = fig.subplots()
    best = np.maximum.accumulate if s.higher_is_better else np.minimum.accumulate
    for i, (design, g) in enumerate(table.groupby("design", sort=False)):
        curves = [best(r[s.metric].astype(float).to_numpy())
                  for _, r in g.groupby("repeat", sort=True)]
        n = min(len(c) for c in curves)
        c = np.array([c[:n] for c in curves])
        x = np.arange(1, n + 1)
        ax.plot(x, np.median(c, axis=0), color=PALETTE[i % len(PALETTE)],
                label=f"{design} (median of {len(c)})" if len(c) > 1 else design)
        if len(c) > 1:
            ax.fill_between(x, c.min(axis=0), c.max(axis=0), color=PALETTE[i % len(PALETTE)],
                            alpha=0.15, lw=0)
    for stage in range(2, int(table["stage"].max()) + 1):
        first = (table[table["stage"] < stage].groupby(["design", "repeat"]).size().max())
        ax.axvline(first + 0.5, color="0.5", ls=":", lw=1)
        ax.text(first + 0.5, ax.get_ylim()[0], f" stage {stage}", fontsize=8, va="bottom")
    ax.set_xlabel("points evaluated")
    ax.set_ylabel(f"best {_label(s.metric)} so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    wrapped_suptitle(fig, f"{exp.name}: best so far")
    return fig


def heatmap_figure(exp: Experiment, runs: pd.DataFrame, bins: int = 8):
    """The mean metric of the first stage's points binned over two parameters (the two most
    important when there are more, on their sampling scales); None for one parameter."""
    from matplotlib.figure import Figure

    s = exp.search
    numeric = [k for k, p in s.params.items() if p.scale != "choice"]
    if len(numeric) < 2:
        return None
    imp = importance_frame(exp, runs)
    pair = ([k for k in imp["parameter"] if k in numeric][:2] if imp is not None
            else numeric[:2])
    table = S.point_table(s, runs)
    table = table[table["stage"] == 1]
    edges, coords = [], []
    for k in pair:
        p = s.params[k]
        c = np.array([p.coord(v) for v in table[f"value:{k}"]])
        edges.append(np.linspace(p.low, p.high, bins + 1))
        coords.append(c)
    y = table[s.metric].astype(float).to_numpy()
    total, _, _ = np.histogram2d(coords[0], coords[1], bins=edges, weights=y)
    count, _, _ = np.histogram2d(coords[0], coords[1], bins=edges)
    with np.errstate(invalid="ignore"):
        mean = total / count
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.subplots()
    mesh = ax.pcolormesh(edges[0], edges[1], mean.T, cmap="viridis", shading="flat")
    ax.scatter(coords[0], coords[1], s=4, color="white", alpha=0.5)
    fig.colorbar(mesh, ax=ax, label=f"{_label(s.metric)} (mean of the cell)")
    for setter, k in ((ax.set_xlabel, pair[0]), (ax.set_ylabel, pair[1])):
        sc = s.params[k].scale
        setter({"log": f"log10 {k}", "one-minus-log": f"log10 (1 - {k})"}.get(sc, k))
    wrapped_suptitle(fig, f"{exp.name}: stage 1, {pair[0]} x {pair[1]}")
    return fig


def chosen_figure(exp: Experiment, runs: pd.DataFrame):
    """The report value of the point each repetition chooses, one column per design (and
    stage count): every repetition a dot, the median a bar."""
    from matplotlib.figure import Figure


    s = exp.search
    fig = Figure(figsize=(1.3 * len(s.designs) + 2.4, 3.8), layout="constrained")
    ax = fig.subplots()
    best = S.chosen(s, runs, 1)
    labels = []
    for i, d in enumerate(s.designs):
        v = best[best["design"] == d.name][s.report].astype(float).to_numpy()
        x = i + np.random.default_rng(i).uniform(-0.15, 0.15, len(v))
        ax.scatter(x, v, s=14, alpha=0.7, color=PALETTE[i % len(PALETTE)])
        ax.hlines(np.median(v), i - 0.3, i + 0.3, color="black", lw=2)
        labels.append(f"{d.name}\n({d.method}, n={d.n})")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel(f"{_label(s.report)} of the chosen point")
    ax.grid(alpha=0.3, axis="y")
    wrapped_suptitle(fig, f"{exp.title or exp.name}: {s.repeats} repetitions")
    return fig
