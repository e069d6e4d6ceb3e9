"""Figures of the experiments (matplotlib, headless): PNG and SVG next to the result CSVs.

Every plotting function takes DataFrames (the tidy runs/curves tables) and returns a
``matplotlib.figure.Figure`` so that tests can inspect its axes (``ax.lines``, labels).
Figures are built with ``Figure()`` directly, not through pyplot: nothing global is kept and
nothing needs closing.  All intervals come from ``dnnbench.stats``.

Entry point: ``plot_results(runs_csv_path, out_dir=None) -> list[Path]`` detects the
experiment and writes ``<experiment>-<dataset>-<figure>.png`` and ``.svg``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dnnbench.report.io import SchemaError, atomic_write_bytes, read_results  # noqa: E402
from dnnbench.stats import (  # noqa: E402
    kaplan_meier,
    km_median,
    mean_ci,
    paired_difference,
    star_ratings,
    verdict_from_interval,
)

FORMATS = ("png", "svg")
DPI = 110
BN_STYLE = {False: {"color": "#d95f02", "label": "no BN"}, True: {"color": "#1b6ca8", "label": "BN"}}
PALETTE = ["#1b6ca8", "#d95f02", "#2a9d55", "#c0392b", "#7d5ba6", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
ACT_LINESTYLES = ["-", "--", ":", "-."]
TRANSFER_VERDICTS = ("helps", "hurts", "no clear difference")

# Columns each experiment's runs / curves files must have to be plotted and summarized.
RUNS_REQUIRED = {
    "depth-sweep": ["arm", "depth", "activation", "bn", "seed", "target", "reached",
                    "steps_to_target", "max_steps", "diverged", "step_ms", "compile_s"],
    "optimizers": ["arm", "optimizer", "learning_rate", "lr_source", "seed", "target",
                   "target_kind", "reached", "steps_to_target", "max_steps", "diverged",
                   "final_val_accuracy", "final_test_accuracy", "step_ms"],
    "transfer": ["pair", "pos_class", "neg_class", "arm", "seed", "test_accuracy", "diverged"],
}
CURVES_REQUIRED = {
    "depth-sweep": ["arm", "seed", "step", "test_accuracy"],
    "optimizers": ["arm", "seed", "step", "train_loss", "val_loss"],
    "transfer": ["pair", "arm", "seed", "step"],
}
EXPERIMENT_TITLES = {"depth-sweep": "Depth sweep: batch normalization vs depth",
                     "optimizers": "Optimizers: speed and quality",
                     "transfer": "Transfer: reusing layers of task A for task B"}


# ------------------------------------------------------------------ loading

@dataclass
class ResultSet:
    """One experiment's result files, read and checked."""

    experiment: str
    dataset: str
    runs: pd.DataFrame
    curves: pd.DataFrame | None
    meta: dict
    runs_path: Path

    @property
    def stem(self) -> str:
        return self.runs_path.name[: -len("-runs.csv")]


def experiment_of(runs: pd.DataFrame, meta: dict) -> str:
    exp = meta.get("experiment")
    if not exp and "experiment" in runs.columns and len(runs):
        exp = str(runs["experiment"].iloc[0])
    return str(exp or "")


def load_results(runs_path: str | Path, require_known: bool = True) -> ResultSet:
    """Read ``*-runs.csv`` with its meta JSON and curves CSV; SchemaError (one line) on a bad
    schema version, missing files or columns, or (``require_known``) an unknown experiment."""
    runs_path = Path(runs_path)
    if not runs_path.name.endswith("-runs.csv"):
        raise SchemaError(f"{runs_path}: not a results file (expected a name ending in -runs.csv)")
    runs, meta = read_results(runs_path)
    exp = experiment_of(runs, meta)
    if exp not in RUNS_REQUIRED:
        if require_known:
            raise SchemaError(f"{runs_path}: unknown experiment {exp!r}; figures exist for: "
                              f"{', '.join(RUNS_REQUIRED)}")
        return ResultSet(exp, "", runs, None, meta, runs_path)
    missing = [c for c in RUNS_REQUIRED[exp] if c not in runs.columns]
    if missing:
        raise SchemaError(f"{runs_path}: missing columns: {', '.join(missing)}")
    curves_path = runs_path.with_name(runs_path.name.replace("-runs.csv", "-curves.csv"))
    if not curves_path.exists():
        raise SchemaError(f"{runs_path}: curves file {curves_path.name} is missing")
    curves = pd.read_csv(curves_path)
    missing = [c for c in CURVES_REQUIRED[exp] if c not in curves.columns]
    if missing:
        raise SchemaError(f"{curves_path}: missing columns: {', '.join(missing)}")
    dataset = (meta.get("dataset") or {}).get("name") or (
        str(runs["dataset"].iloc[0]) if "dataset" in runs.columns and len(runs) else "?")
    return ResultSet(exp, dataset, _normalize(runs), curves, meta, runs_path)


def _bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _normalize(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for c in ("bn", "reached", "diverged"):
        if c in runs.columns:
            runs[c] = _bool(runs[c])
    return runs


# ------------------------------------------------------------------ small helpers

def n_seeds_text(runs: pd.DataFrame, by: str | Sequence[str] = "arm") -> str:
    """'3 seeds per arm' (or '2-3 seeds per arm' when arms differ)."""
    counts = runs.groupby(list(by) if not isinstance(by, str) else by)["seed"].nunique()
    lo, hi = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    n = f"{lo}" if lo == hi else f"{lo}-{hi}"
    return f"{n} seed{'s' if hi != 1 else ''} per arm"


def censored(df: pd.DataFrame):
    """(times, reached, censor_at) of a block of runs: a run that did not reach the target
    (or diverged) is censored at its budget; nothing is imputed."""
    reached = df["reached"].to_numpy(bool) & ~df["diverged"].to_numpy(bool)
    times = pd.to_numeric(df["steps_to_target"], errors="coerce").to_numpy(float)
    return np.where(reached, times, np.nan), reached, df["max_steps"].astype(float).to_numpy()


def _mean_band(table: pd.DataFrame, log: bool = False):
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


def _finish(fig: Figure, title: str) -> Figure:
    """Bold title, wrapped to the figure's width."""
    import textwrap

    chars = max(40, int(fig.get_figwidth() * 10.5))
    fig.suptitle("\n".join(textwrap.wrap(title, chars)), fontsize=12, fontweight="bold")
    return fig


def _figure_legend(fig: Figure, axes, ncol: int = 4) -> None:
    """One legend below the panels with the distinct entries of ``axes``."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center",
               ncol=min(ncol, len(seen)), fontsize=9, frameon=False)


def _grid(n: int, max_cols: int = 3):
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def _axes(fig: Figure, n: int, max_cols: int = 3, **kw):
    rows, cols = _grid(n, max_cols)
    axs = fig.subplots(rows, cols, squeeze=False, **kw).ravel()
    for ax in axs[n:]:
        ax.set_visible(False)
    return axs[:n]


def _target_text(runs: pd.DataFrame) -> str:
    t = runs["target"].dropna()
    return f"{float(t.iloc[0]):.0%}" if len(t) else "target"


# ------------------------------------------------------------------ depth sweep

def depth_summary(runs: pd.DataFrame) -> pd.DataFrame:
    from dnnbench.experiments.depth_sweep import summarize

    return summarize(runs)


def depth_steps_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Steps to target vs depth, BN vs no BN: KM median with its 95% interval band, one panel
    per activation. A median never reached is drawn as an open triangle at the budget."""
    summary = depth_summary(runs)
    acts = list(dict.fromkeys(summary["activation"]))
    budget = float(runs["max_steps"].max())
    fig = Figure(figsize=(max(7.0, 5.2 * min(len(acts), 3)), 4.6 * _grid(len(acts))[0]),
                 layout="constrained")
    axes = _axes(fig, len(acts), sharey=True)
    for ax, act in zip(axes, acts, strict=True):
        s_act = summary[summary["activation"] == act]
        for bn, g in s_act.groupby("bn", sort=True):
            style = BN_STYLE[bool(bn)]
            x = g["depth"].to_numpy(float)
            med = g["median_steps"].to_numpy(float)
            low = g["steps_low"].to_numpy(float)
            high = np.where(np.isnan(g["steps_high"]), budget, g["steps_high"]).astype(float)
            high = np.where(np.isnan(med), np.nan, high)
            ax.plot(x, med, "o-", color=style["color"], label=f"{style['label']}: median", lw=2)
            ax.fill_between(x, low, high, color=style["color"], alpha=0.15, lw=0,
                            label=f"{style['label']}: 95% CI (unbounded upper limit drawn "
                                  "to the budget)")
            miss = np.isnan(med)
            if miss.any():
                ax.scatter(x[miss], np.full(miss.sum(), budget), marker="^", s=70,
                           facecolors="white", edgecolors=style["color"], linewidths=1.8,
                           zorder=3, label=f"{style['label']}: not reached")
        ax.axhline(budget, color="0.4", ls="--", lw=1, label="step budget")
        ax.set_title(f"activation: {act}")
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel(f"steps to {_target_text(runs)} test accuracy")
        ax.set_xticks(sorted(s_act["depth"].unique()))
        ax.set_ylim(0, budget * 1.08)
        ax.grid(alpha=0.3)
    _figure_legend(fig, axes, ncol=3)
    return _finish(fig, f"Steps to {_target_text(runs)} test accuracy vs depth on {dataset} "
                        f"({n_seeds_text(runs)}; Kaplan-Meier median, 95% CI)")


def depth_timing_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Left: time per training step vs depth; right: time to target (median steps x step time,
    band = the steps interval x step time). One line per (activation, BN)."""
    summary = depth_summary(runs)
    acts = list(dict.fromkeys(summary["activation"]))
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    ax_step, ax_ttt = fig.subplots(1, 2)
    for (act, bn), g in summary.groupby(["activation", "bn"], sort=True):
        style = BN_STYLE[bool(bn)]
        ls = ACT_LINESTYLES[acts.index(act) % len(ACT_LINESTYLES)]
        label = f"{act}, {style['label']}"
        x = g["depth"].to_numpy(float)
        ax_step.plot(x, g["step_ms"], marker="o", ls=ls, color=style["color"], label=label)
        scale = g["step_ms"].to_numpy(float) / 1e3
        ax_ttt.plot(x, g["time_to_target_s"], marker="o", ls=ls, color=style["color"], label=label)
        ax_ttt.fill_between(x, g["steps_low"].to_numpy(float) * scale,
                            g["steps_high"].to_numpy(float) * scale, color=style["color"],
                            alpha=0.12, lw=0)
    depths = sorted(summary["depth"].unique())
    for ax in (ax_step, ax_ttt):
        ax.set_xlabel("depth (hidden layers)")
        ax.set_xticks(depths)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_step.set_ylabel("ms per training step (all seeds vmapped)")
    ax_step.set_title("time per step (compile and eval excluded)")
    ax_ttt.set_ylabel(f"seconds to {_target_text(runs)} test accuracy")
    ax_ttt.set_title("time to target = median steps x step time")
    return _finish(fig, f"Step time and time to target vs depth on {dataset} ({n_seeds_text(runs)})")


def _seed_table(curves: pd.DataFrame, arm: str, metric: str, steps: np.ndarray,
                hold: set[int]) -> pd.DataFrame:
    """(step x seed) table of a metric; seeds in ``hold`` (stopped at the target) keep their
    last value after they stopped, the others stay missing."""
    c = curves[curves["arm"] == arm]
    t = c.pivot_table(index="step", columns="seed", values=metric, aggfunc="mean")
    t = t.reindex(steps)
    for seed in t.columns:
        if int(seed) in hold:
            last = t[seed].last_valid_index()
            if last is not None:
                t.loc[t.index > last, seed] = t.loc[last, seed]
    return t


def depth_curves_figure(runs: pd.DataFrame, curves: pd.DataFrame, dataset: str = "",
                        depth: int | None = None) -> Figure:
    """Test accuracy vs step of both arms at one depth (default: the deepest), one panel per
    activation: thin lines per seed, mean across seeds with its 95% t-interval band. Runs stop
    at the target; a run that reached it is held at its last value afterwards."""
    depth = int(runs["depth"].max()) if depth is None else int(depth)
    at = runs[runs["depth"] == depth]
    if at.empty:
        raise ValueError(f"no runs at depth {depth}; depths: {sorted(runs['depth'].unique())}")
    acts = list(dict.fromkeys(at["activation"]))
    target = float(at["target"].dropna().iloc[0]) if at["target"].notna().any() else None
    fig = Figure(figsize=(5.2 * min(len(acts), 3), 4.2 * _grid(len(acts))[0]),
                 layout="constrained")
    for ax, act in zip(_axes(fig, len(acts), sharey=True), acts, strict=True):
        block = at[at["activation"] == act]
        arms = block.groupby("bn", sort=True)["arm"].first()
        steps = np.sort(curves[curves["arm"].isin(arms)]["step"].unique())
        for bn, arm in arms.items():
            style = BN_STYLE[bool(bn)]
            r = block[block["arm"] == arm]
            hold = set(r.loc[r["reached"], "seed"].astype(int))
            t = _seed_table(curves, arm, "test_accuracy", steps, hold)
            for seed in t.columns:
                ax.plot(steps, t[seed], color=style["color"], alpha=0.3, lw=0.8)
            est, low, high = _mean_band(t)
            ax.plot(steps, est, color=style["color"], lw=2.2,
                    label=f"{style['label']}: mean of {t.shape[1]} seeds")
            ax.fill_between(steps, low, high, color=style["color"], alpha=0.18, lw=0)
        if target is not None:
            ax.axhline(target, color="0.3", ls="--", lw=1, label=f"target {target:.0%}")
        ax.set_title(f"activation: {act}, depth {depth}")
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, f"Test accuracy during training at depth {depth} on {dataset} "
                        f"({n_seeds_text(at)}; band: 95% CI of the mean; thin: seeds)")


def depth_km_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Kaplan-Meier curves: fraction of seeds that reached the target by step s, BN vs no BN,
    one panel per (activation, depth)."""
    acts = list(dict.fromkeys(runs["activation"]))
    depths = sorted(runs["depth"].unique())
    budget = float(runs["max_steps"].max())
    cols = len(depths)
    fig = Figure(figsize=(max(6.0, 2.6 * cols + 1), 2.6 * len(acts) + 0.9), layout="constrained")
    axs = fig.subplots(len(acts), cols, squeeze=False, sharex=True, sharey=True)
    for i, act in enumerate(acts):
        for j, depth in enumerate(depths):
            ax = axs[i, j]
            block = runs[(runs["activation"] == act) & (runs["depth"] == depth)]
            for bn, g in block.groupby("bn", sort=True):
                style = BN_STYLE[bool(bn)]
                km = kaplan_meier(*censored(g))
                x = np.concatenate(([0.0], km.times, [budget]))
                y = np.concatenate(([0.0], 1 - km.survival, [1 - km.survival[-1]
                                                             if km.survival.size else 0.0]))
                ax.step(x, y, where="post", color=style["color"], lw=2,
                        label=f"{style['label']} ({km.n_reached}/{km.n})")
            ax.axhline(0.5, color="0.6", ls=":", lw=1)
            ax.set_title(f"{act}, depth {depth}", fontsize=10)
            ax.set_ylim(-0.02, 1.04)
            ax.set_xlim(0, budget)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
            if i == len(acts) - 1:
                ax.set_xlabel("training step")
            if j == 0:
                ax.set_ylabel("fraction at target")
    return _finish(fig, f"Fraction of seeds that reached {_target_text(runs)} test accuracy by "
                        f"step s (Kaplan-Meier) on {dataset} ({n_seeds_text(runs)})")


def depth_sweep_figures(rs: ResultSet) -> dict[str, Figure]:
    figs = {"steps-vs-depth": depth_steps_figure(rs.runs, rs.dataset),
            "timing-vs-depth": depth_timing_figure(rs.runs, rs.dataset)}
    if rs.curves is not None and len(rs.curves):
        figs["curves"] = depth_curves_figure(rs.runs, rs.curves, rs.dataset)
    figs["kaplan-meier"] = depth_km_figure(rs.runs, rs.dataset)
    return figs


# ------------------------------------------------------------------ optimizers

def optimizer_label(optimizer: str, lr: float, lr_source: str = "default") -> str:
    return f"{optimizer} lr={lr:g}" + (" (tuned)" if str(lr_source) == "tuned" else "")


def optimizer_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (in file order): reached n/N, KM median steps to target with 95% CI,
    final validation/test accuracy mean with 95% CI, step and time to target, and measured
    star ratings for speed (fewer steps) and quality (higher validation accuracy)."""
    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        g = g.sort_values("seed")
        km = km_median(*censored(g))
        val = mean_ci(g["final_val_accuracy"])
        test = mean_ci(g["final_test_accuracy"])
        step_ms = float(g["step_ms"].iloc[0])
        first = g.iloc[0]
        rows.append({
            "arm": arm, "label": optimizer_label(first["optimizer"], float(first["learning_rate"]),
                                                 first["lr_source"]),
            "optimizer": first["optimizer"], "learning_rate": float(first["learning_rate"]),
            "lr_source": first["lr_source"], "n": km.n, "reached": km.n_reached,
            "diverged": int(g["diverged"].sum()), "median_steps": km.median,
            "steps_low": km.low, "steps_high": km.high, "max_steps": float(g["max_steps"].max()),
            "val_acc": val.estimate, "val_low": val.low, "val_high": val.high,
            "test_acc": test.estimate, "test_low": test.low, "test_high": test.high,
            "step_ms": step_ms,
            "time_to_target_s": km.median * step_ms / 1e3 if not math.isnan(km.median)
            else math.nan})
    out = pd.DataFrame(rows)
    if len(out):
        out["speed_stars"] = star_ratings(out["median_steps"], out["steps_low"],
                                          out["steps_high"], higher_is_better=False)
        out["quality_stars"] = star_ratings(out["val_acc"], out["val_low"], out["val_high"],
                                            higher_is_better=True)
    return out


def _arm_labels(runs: pd.DataFrame) -> dict[str, str]:
    first = runs.groupby("arm", sort=False).first()
    return {arm: optimizer_label(r["optimizer"], float(r["learning_rate"]), r["lr_source"])
            for arm, r in first.iterrows()}


def optimizer_loss_figure(runs: pd.DataFrame, curves: pd.DataFrame, dataset: str = "") -> Figure:
    """Training and validation loss vs step (log scale), one line per optimizer arm: geometric
    mean across seeds with its 95% t-interval band on the log scale (a diverged seed drops out
    where its loss is not finite)."""
    labels = _arm_labels(runs)
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axs = fig.subplots(1, 2, sharey=True)
    for k, (metric, title) in enumerate([("train_loss", "training loss"),
                                         ("val_loss", "validation loss")]):
        ax = axs[k]
        for i, arm in enumerate(labels):
            c = curves[curves["arm"] == arm]
            t = c.pivot_table(index="step", columns="seed", values=metric, aggfunc="mean",
                              dropna=False)
            t = t.where(np.isfinite(t))
            steps = t.index.to_numpy(float)
            est, low, high = _mean_band(t, log=True)
            color = PALETTE[i % len(PALETTE)]
            ax.plot(steps, est, color=color, lw=2, label=labels[arm])
            ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{title} (geometric mean, 95% CI)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _finish(fig, f"Loss curves per optimizer on {dataset} ({n_seeds_text(runs)})")


def optimizer_tradeoff_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Speed vs quality: x = KM median steps to target (95% CI), y = final validation accuracy
    (mean, 95% CI); an arm whose median is never reached sits at the budget (open marker)."""
    s = optimizer_summary(runs)
    budget = float(runs["max_steps"].max())
    kind = str(runs["target_kind"].iloc[0]).replace("_", " ") if len(runs) else "target"
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.subplots()
    for i, r in s.reset_index(drop=True).iterrows():
        color = PALETTE[i % len(PALETTE)]
        reached = not math.isnan(r["median_steps"])
        x = r["median_steps"] if reached else budget
        lo = r["steps_low"] if not math.isnan(r["steps_low"]) else x
        hi = r["steps_high"] if not math.isnan(r["steps_high"]) else budget
        xerr = [[max(x - lo, 0)], [max(hi - x, 0)]] if reached else None
        y = r["val_acc"]
        yerr = [[max(y - r["val_low"], 0)], [max(r["val_high"] - y, 0)]] if not math.isnan(y) else None
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o" if reached else ">", ms=8,
                    color=color, mfc=color if reached else "white", capsize=3, lw=1.5,
                    label=f"{r['label']} ({r['reached']}/{r['n']} reached)")
    ax.axvline(budget, color="0.4", ls="--", lw=1, label="step budget")
    ax.set_xlim(0, budget * 1.12)
    ax.set_xlabel(f"steps to {_target_text(runs)} {kind} (Kaplan-Meier median, 95% CI)")
    ax.set_ylabel("final validation accuracy (mean, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return _finish(fig, f"Speed vs quality of the optimizers on {dataset} ({n_seeds_text(runs)})")


def optimizers_figures(rs: ResultSet) -> dict[str, Figure]:
    figs = {}
    if rs.curves is not None and len(rs.curves):
        figs["loss-curves"] = optimizer_loss_figure(rs.runs, rs.curves, rs.dataset)
    figs["speed-vs-quality"] = optimizer_tradeoff_figure(rs.runs, rs.dataset)
    return figs


# ------------------------------------------------------------------ transfer

def _pair_frame(runs: pd.DataFrame, pair) -> pd.DataFrame:
    """(seed x arm) test accuracy of one class pair (diverged runs missing)."""
    g = runs[runs["pair"] == pair]
    g = g.assign(test_accuracy=g["test_accuracy"].where(~g["diverged"]))
    return g.pivot_table(index="seed", columns="arm", values="test_accuracy", aggfunc="mean",
                         dropna=False)


def transfer_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per class pair: B and B-on-A test accuracy (means with 95% CI), the paired gain
    B-on-A minus B with its 95% CI, Wilcoxon p, fraction of seeds where reuse won, verdict."""
    rows = []
    for pair in dict.fromkeys(runs["pair"]):
        t = _pair_frame(runs, pair)
        g = runs[runs["pair"] == pair].iloc[0]
        b = t["B"] if "B" in t else pd.Series(np.nan, index=t.index)
        ba = t["B-on-A"] if "B-on-A" in t else pd.Series(np.nan, index=t.index)
        cmp = paired_difference(ba.to_numpy(float), b.to_numpy(float))
        mb, mba = mean_ci(b), mean_ci(ba)
        ma = mean_ci(t["A"]) if "A" in t else mean_ci([])
        rows.append({
            "pair": pair, "pos_class": g["pos_class"], "neg_class": g["neg_class"],
            "n": cmp.n, "a_acc": ma.estimate, "b_acc": mb.estimate, "b_low": mb.low,
            "b_high": mb.high, "ba_acc": mba.estimate, "ba_low": mba.low, "ba_high": mba.high,
            "gain": cmp.mean_diff, "gain_low": cmp.low, "gain_high": cmp.high,
            "p_value": cmp.p_value, "frac_reuse_better": cmp.frac_a_better,
            "verdict": verdict_from_interval(cmp.low, cmp.high, labels=TRANSFER_VERDICTS)
            if cmp.n >= 2 else TRANSFER_VERDICTS[2]})
    return pd.DataFrame(rows)


def transfer_overall(summary: pd.DataFrame) -> dict:
    """Across class pairs: mean of the per-pair gains with a 95% CI, and verdict counts."""
    ci = mean_ci(summary["gain"])
    counts = summary["verdict"].value_counts()
    return {"pairs": int(len(summary)), "gain": ci.estimate, "low": ci.low, "high": ci.high,
            "verdict": verdict_from_interval(ci.low, ci.high, labels=TRANSFER_VERDICTS)
            if ci.n >= 2 else TRANSFER_VERDICTS[2],
            **{v: int(counts.get(v, 0)) for v in TRANSFER_VERDICTS}}


MAX_PAIR_PANELS = 12


def transfer_paired_figure(runs: pd.DataFrame, dataset: str = "",
                           max_panels: int = MAX_PAIR_PANELS) -> Figure:
    """Test accuracy of B (trained from scratch) and B-on-A (reused layers) per seed, one line
    joining the two runs of each seed, one panel per class pair (the first ``max_panels``)."""
    pairs = list(dict.fromkeys(runs["pair"]))
    shown = pairs[:max_panels]
    rows, cols = _grid(len(shown), 4)
    fig = Figure(figsize=(3.2 * cols + 0.6, 3.4 * rows + 0.6), layout="constrained")
    axs = _axes(fig, len(shown), 4, sharey=True)
    for ax, pair in zip(axs, shown, strict=True):
        t = _pair_frame(runs, pair)
        b = t["B"] if "B" in t else pd.Series(np.nan, index=t.index)
        ba = t["B-on-A"] if "B-on-A" in t else pd.Series(np.nan, index=t.index)
        for seed in t.index:
            better = ba[seed] > b[seed]
            ax.plot([0, 1], [b[seed], ba[seed]], "o-", color=PALETTE[0] if better else PALETTE[1],
                    alpha=0.6, lw=1.2, ms=4)
        ax.plot([0, 1], [np.nanmean(b), np.nanmean(ba)], "s-", color="black", lw=2.5, ms=7,
                label="mean")
        ax.set_xticks([0, 1], ["B (scratch)", "B-on-A"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"pair {pair} ({len(t)} seeds)", fontsize=10)
        ax.set_xlabel("arm")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, loc="lower right")
    more = f"; first {len(shown)} of {len(pairs)} pairs" if len(pairs) > len(shown) else ""
    return _finish(fig, f"Task B test accuracy per seed, from scratch vs reused layers on "
                        f"{dataset} ({n_seeds_text(runs, ['pair', 'arm'])}{more}; blue: reuse "
                        "won, orange: reuse lost)")


def transfer_gains_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Distribution of the gain (B-on-A minus B test accuracy) across class pairs: per pair,
    the seeds (dots) and the mean gain with its paired 95% CI, sorted by mean gain."""
    s = transfer_summary(runs).sort_values("gain").reset_index(drop=True)
    fig = Figure(figsize=(8, 2.4 + 0.38 * len(s)), layout="constrained")
    ax = fig.subplots()
    colors = {"helps": PALETTE[2], "hurts": PALETTE[3], "no clear difference": "0.35"}
    for i, r in s.iterrows():
        t = _pair_frame(runs, r["pair"])
        if "B" in t and "B-on-A" in t:
            d = (t["B-on-A"] - t["B"]).dropna()
            ax.scatter(d, np.full(len(d), i), s=14, color="0.6", zorder=2)
        ax.errorbar([r["gain"]], [i], xerr=[[max(r["gain"] - r["gain_low"], 0)],
                                            [max(r["gain_high"] - r["gain"], 0)]],
                    fmt="D", color=colors[r["verdict"]], capsize=3, ms=6, zorder=3)
    for verdict, color in colors.items():  # legend entries for the verdict colours
        ax.plot([], [], "D", color=color, label=f"mean gain, 95% CI: {verdict}")
    ax.scatter([], [], s=14, color="0.6", label="one seed")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(s)), [str(p) for p in s["pair"]])
    ax.set_ylim(-0.6, len(s) - 0.4)
    ax.set_xlabel("gain in test accuracy: B-on-A minus B (paired by seed)")
    ax.set_ylabel("class pair")
    ax.grid(alpha=0.3, axis="x")
    _figure_legend(fig, [ax], ncol=2)
    return _finish(fig, f"Gain from reusing layers across {len(s)} class pairs on {dataset} "
                        f"({n_seeds_text(runs, ['pair', 'arm'])})")


def transfer_figures(rs: ResultSet) -> dict[str, Figure]:
    figs = {"paired-accuracy": transfer_paired_figure(rs.runs, rs.dataset)}
    if rs.runs["pair"].nunique() > 1:
        figs["gains"] = transfer_gains_figure(rs.runs, rs.dataset)
    return figs


# ------------------------------------------------------------------ entry points

PLOTTERS: dict[str, Callable[[ResultSet], dict[str, Figure]]] = {
    "depth-sweep": depth_sweep_figures,
    "optimizers": optimizers_figures,
    "transfer": transfer_figures,
}


def make_figures(rs: ResultSet) -> dict[str, Figure]:
    """The figures of one experiment's results, by short name (e.g. "steps-vs-depth")."""
    return PLOTTERS[rs.experiment](rs)


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = DPI) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None} if fmt == "png" else None)
    return buf.getvalue()


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``stem.png`` / ``stem.svg`` atomically; returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, figure_bytes(fig, fmt))
        paths.append(path)
    return paths


def plot_results(runs_csv_path: str | Path, out_dir: str | Path | None = None,
                 formats: Sequence[str] = FORMATS) -> list[Path]:
    """Detect the experiment of ``*-runs.csv`` (meta or ``experiment`` column), draw its
    figures and write them as ``<experiment>-<dataset>-<figure>.png`` and ``.svg`` into
    ``out_dir`` (default: next to the CSVs). Raises SchemaError for unreadable results."""
    rs = load_results(runs_csv_path)
    out = Path(out_dir) if out_dir is not None else rs.runs_path.parent
    paths: list[Path] = []
    for name, fig in make_figures(rs).items():
        paths.extend(save_figure(fig, out / f"{rs.stem}-{name}", formats))
    return paths
