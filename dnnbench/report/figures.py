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
# fixed ids in SVG files: the same results give byte-identical figures
matplotlib.rcParams["svg.hashsalt"] = "dnnbench"

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dnnbench.files import atomic_write_bytes
from dnnbench.report.io import SchemaError, curves_path_of, read_curves, read_results
from dnnbench.stats import mean_ci

FORMATS = ("png", "svg")
DPI = 110
PALETTE = ["#1b6ca8", "#d95f02", "#2a9d55", "#c0392b", "#7d5ba6", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]

# experiment name -> module in dnnbench.experiments (RUN_COLUMNS, CURVE_COLUMNS, summarize)
EXPERIMENT_MODULES = {"transfer": "transfer"}
EXPERIMENT_TITLES = {"transfer": "Transfer: reusing layers of task A for task B"}


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


def required_columns(experiment: str) -> tuple[list[str], list[str]]:
    """(runs, curves) columns an experiment's files must have: those its command writes."""
    import importlib

    mod = importlib.import_module(f"dnnbench.experiments.{EXPERIMENT_MODULES[experiment]}")
    return list(mod.RUN_COLUMNS), list(mod.CURVE_COLUMNS)


def load_results(runs_path: str | Path, require_known: bool = True) -> ResultSet:
    """Read ``*-runs.csv`` with its meta JSON and curves CSV; SchemaError (one line) on a bad
    schema version, missing files or columns, or (``require_known``) an unknown experiment."""
    runs_path = Path(runs_path)
    runs, meta = read_results(runs_path)
    exp = experiment_of(runs, meta)
    if "experiment_definition" in meta:  # an experiment file's results: the common schema
        return _file_results(exp, runs, meta, runs_path)
    if exp not in EXPERIMENT_MODULES:
        if require_known:
            raise SchemaError(f"{runs_path}: unknown experiment {exp!r}; figures exist for: "
                              f"{', '.join(EXPERIMENT_MODULES)}")
        return ResultSet(exp, "", runs, None, meta, runs_path)
    if runs.empty:
        raise SchemaError(f"{runs_path}: has no runs")
    run_cols, curve_cols = required_columns(exp)
    missing = [c for c in run_cols if c not in runs.columns]
    if missing:
        raise SchemaError(f"{runs_path}: missing columns: {', '.join(missing)}")
    runs = _typed(runs, run_cols, runs_path)
    curves = _typed(read_curves(runs_path, curve_cols, meta=meta), curve_cols,
                    curves_path_of(runs_path))
    dataset = (meta.get("dataset") or {}).get("name") or (
        str(runs["dataset"].iloc[0]) if "dataset" in runs.columns and len(runs) else "?")
    return ResultSet(exp, dataset, _normalize(runs), curves, meta, runs_path)


# the common schema of experiment files: what every result set has, and its number columns
COMMON_COLUMNS = ("arm", "seed", "reached", "steps_to_target", "max_steps", "diverged")
COMMON_NUMBERS = ("seed", "steps_to_target", "max_steps", "steps_done", "step_ms", "compile_s",
                  "eval_ms", "time_to_target_s", "final_eval_accuracy", "best_eval_accuracy",
                  "final_eval_loss", "final_train_loss", "final_test_accuracy",
                  "final_test_loss")


def _file_results(exp: str, runs: pd.DataFrame, meta: dict, runs_path: Path) -> ResultSet:
    """An experiment file's results, checked: the common columns and the file's factors are
    there, numbers are numbers, flags are flags (SchemaError, one line, otherwise)."""
    import json

    from dnnbench.experiments import files

    try:
        definition = files.parse(json.loads(meta["experiment_definition"]), str(runs_path))
    except (ValueError, TypeError) as e:
        raise SchemaError(f"{runs_path}: its metadata holds no valid experiment definition "
                          f"({e})") from None
    if runs.empty:
        raise SchemaError(f"{runs_path}: has no runs")
    factors = [f for f in definition.factors if not (definition.search and f == files.POINT)]
    missing = [c for c in (*COMMON_COLUMNS, *factors) if c not in runs.columns]
    if missing:
        raise SchemaError(f"{runs_path}: missing columns: {', '.join(missing)}")
    runs = _typed(runs, [*COMMON_NUMBERS, *BOOL_COLUMNS], runs_path, text=())
    dataset = (meta.get("dataset") or {}).get("name") or str(runs["dataset"].iloc[0])
    return ResultSet(exp, dataset, _normalize(runs), None, meta, runs_path)


TEXT_COLUMNS = frozenset({"experiment", "dataset", "arm", "pair", "widths", "activation", "init",
                          "bn_position", "optimizer", "lr_source", "target_kind", "spec_hash"})
BOOL_COLUMNS = frozenset({"reached", "diverged"})
BOOL_TEXT = ("true", "false", "1", "0", "yes", "no")


def _typed(df: pd.DataFrame, columns: Sequence[str], path: Path,
           text: Sequence[str] = TEXT_COLUMNS) -> pd.DataFrame:
    """``df`` with its number columns as numbers; SchemaError (one line) for a value that is
    neither a number nor empty, or a flag that is not true/false (a damaged or hand-edited
    file), instead of a failure deep inside a summary."""
    df = df.copy()
    for c in columns:
        if c in text or c not in df.columns:
            continue
        given = df[c].notna() & df[c].astype(str).str.strip().ne("")
        if c in BOOL_COLUMNS:
            ok = df[c].astype(str).str.strip().str.lower().isin(BOOL_TEXT) | ~given
            what = "true or false"
        else:
            num = pd.to_numeric(df[c], errors="coerce")
            ok = num.notna() | ~given
            what = "numbers"
        if not ok.all():
            raise SchemaError(f"{path}: column {c!r} holds values that are not {what} "
                              f"({df.loc[~ok, c].iloc[0]!r} in {int((~ok).sum())} row(s))")
        if c not in BOOL_COLUMNS:
            df[c] = num
    return df


def _bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _normalize(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for c in BOOL_COLUMNS:
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


def _figure_legend(fig: Figure, axes, ncol: int = 4, loc: str = "outside lower center") -> None:
    """One legend outside the panels (below by default) with the distinct entries of ``axes``."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc=loc, ncol=min(ncol, len(seen)),
               fontsize=9, frameon=False)


def _grid(n: int, max_cols: int = 3):
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def _axes(fig: Figure, n: int, max_cols: int = 3, **kw):
    rows, cols = _grid(n, max_cols)
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


def _first_step(runs: pd.DataFrame) -> float:
    """The smallest steps-to-target of any run (a floor for log-scaled step axes)."""
    first = pd.to_numeric(runs["steps_to_target"], errors="coerce").min()
    return float(first) if np.isfinite(first) and first > 0 else 1.0


# ------------------------------------------------------------------ transfer

def transfer_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """The transfer command's own summary (``experiments.transfer.summarize``): one row per
    class pair with per-arm accuracies, the paired B-on-A minus B difference in points with
    its 95% CI, Wilcoxon p and the verdict."""
    from dnnbench.experiments.transfer import summarize

    return summarize(runs)


def _pair_frame(runs: pd.DataFrame, pair) -> pd.DataFrame:
    """(seed x arm) test accuracy of one class pair (diverged runs missing)."""
    g = runs[runs["pair"] == pair]
    g = g.assign(test_accuracy=g["test_accuracy"].where(~g["diverged"]))
    t = g.pivot_table(index="seed", columns="arm", values="test_accuracy", aggfunc="mean",
                      dropna=False)
    return t.reindex(columns=["A", "B", "B-on-A"])


MAX_PAIR_PANELS = 12


def transfer_paired_figure(runs: pd.DataFrame, dataset: str = "",
                           max_panels: int = MAX_PAIR_PANELS) -> Figure:
    """Test accuracy of B (trained from scratch) and B-on-A (reused layers) per seed, one line
    joining the two runs of each seed, one panel per class pair (the first ``max_panels``)."""
    pairs = list(dict.fromkeys(runs["pair"]))
    shown = pairs[:max_panels]
    rows, cols = _grid(len(shown), 4)
    fig = Figure(figsize=(max(6.5, 3.3 * cols + 0.6), 3.4 * rows + 1.2), layout="constrained")
    axs = _axes(fig, len(shown), 4, sharey=True)
    for ax, pair in zip(axs, shown, strict=True):
        t = _pair_frame(runs, pair)
        b, ba = t["B"] * 100, t["B-on-A"] * 100
        for seed in t.index:
            d = ba[seed] - b[seed]
            color = PALETTE[0] if d > 0 else PALETTE[1] if d < 0 else "0.5"
            ax.plot([0, 1], [b[seed], ba[seed]], "o-", color=color, alpha=0.65, lw=1.2, ms=4)
        ax.plot([0, 1], [np.nanmean(b), np.nanmean(ba)], "s-", color="black", lw=2.5, ms=7,
                label="mean over seeds")
        ax.set_xticks([0, 1], ["B (scratch)", "B-on-A"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"pair {pair} ({t['B'].notna().sum()} seeds)", fontsize=10)
        ax.set_xlabel("arm")
        ax.set_ylabel("task B test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
    for color, label in ((PALETTE[0], "one seed: reuse better"),
                         (PALETTE[1], "one seed: reuse worse"), ("0.5", "one seed: tie")):
        axs[0].plot([], [], "o-", color=color, label=label)
    _figure_legend(fig, axs[:1], ncol=4)
    more = f"; first {len(shown)} of {len(pairs)} pairs" if len(pairs) > len(shown) else ""
    return _finish(fig, f"Task B test accuracy per seed, from scratch vs reused layers on "
                        f"{dataset} ({n_seeds_text(runs, ['pair', 'arm'])}{more})")


TRANSFER_COLORS = {"helps": "#2a9d55", "hurts": "#c0392b"}
MIN_PAIRS_FOR_HISTOGRAM = 8


def transfer_gains_figure(runs: pd.DataFrame, dataset: str = "") -> Figure:
    """Distribution of the gain (B-on-A minus B test accuracy, points) across class pairs: per
    pair the seeds (dots) and the mean gain with its paired 95% CI (diamond), sorted by mean
    gain, coloured by verdict; a histogram of the per-pair mean gains beside it."""
    s = transfer_summary(runs).sort_values("diff", kind="stable").reset_index(drop=True)
    with_hist = len(s) >= MIN_PAIRS_FOR_HISTOGRAM
    fig = Figure(figsize=(11 if with_hist else 8.5, 2.6 + 0.3 * len(s)), layout="constrained")
    if with_hist:
        ax, hist = fig.subplots(1, 2, width_ratios=[2.2, 1])
    else:
        ax, hist = fig.subplots(), None
    for i, r in s.iterrows():
        t = _pair_frame(runs, r["pair"])
        d = ((t["B-on-A"] - t["B"]) * 100).dropna()
        ax.scatter(d, np.full(len(d), i), s=14, color="0.6", zorder=2)
        color = TRANSFER_COLORS.get(r["verdict"], "0.3")
        xerr = [[max(r["diff"] - r["diff_low"], 0)], [max(r["diff_high"] - r["diff"], 0)]] \
            if not math.isnan(r["diff_low"]) else None
        ax.errorbar([r["diff"]], [i], xerr=xerr, fmt="D", color=color, capsize=3, ms=6, zorder=3)
    for verdict in dict.fromkeys(["helps", "hurts", *s["verdict"]]):
        ax.plot([], [], "D", color=TRANSFER_COLORS.get(verdict, "0.3"),
                label=f"mean gain, 95% CI: {verdict}")
    ax.scatter([], [], s=14, color="0.6", label="one seed")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(s)), [str(p) for p in s["pair"]],
                  fontsize=9 if len(s) <= 20 else 6)
    ax.set_ylim(-0.6, len(s) - 0.4)
    ax.set_xlabel("gain in test accuracy, points: B-on-A minus B (paired by seed)")
    ax.set_ylabel("class pair (positive v negative)")
    ax.set_title("per class pair")
    ax.grid(alpha=0.3, axis="x")
    if hist is not None:
        hist.hist(s["diff"].dropna(), bins=min(20, max(5, len(s) // 3)), color="#1b6ca8",
                  alpha=0.8, edgecolor="white")
        hist.axvline(0, color="black", lw=1)
        hist.set_xlabel("mean gain per pair, points")
        hist.set_ylabel("class pairs")
        hist.set_title("distribution of the mean gains")
        hist.grid(alpha=0.3, axis="y")
    _figure_legend(fig, [ax], ncol=4)
    return _finish(fig, f"Gain from reusing layers across {len(s)} class pairs on {dataset} "
                        f"({n_seeds_text(runs, ['pair', 'arm'])})")


def transfer_figures(rs: ResultSet) -> dict[str, Figure]:
    figs = {"paired-accuracy": transfer_paired_figure(rs.runs, rs.dataset)}
    if rs.runs["pair"].nunique() > 1:
        figs["gains"] = transfer_gains_figure(rs.runs, rs.dataset)
    return figs


# ------------------------------------------------------------------ entry points

PLOTTERS: dict[str, Callable[[ResultSet], dict[str, Figure]]] = {
    "transfer": transfer_figures,
}


def make_figures(rs: ResultSet) -> dict[str, Figure]:
    """The figures of one experiment's results, by short name (e.g. "steps-vs-depth")."""
    return PLOTTERS[rs.experiment](rs)


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
