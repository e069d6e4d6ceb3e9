"""Figures of the experiments (matplotlib, headless): loading a result set, the helpers the
figure kinds share (:mod:`dnnbench.report.figure_kinds`: their makers in
:mod:`dnnbench.report.plots` and the protocols' own modules), and writing PNG and SVG.

Every plotting function takes DataFrames (the tidy runs/curves tables) and returns a
``matplotlib.figure.Figure`` so that tests can inspect its axes (``ax.lines``, labels).
Figures are built with ``Figure()`` directly, not through pyplot: nothing global is kept and
nothing needs closing.  All intervals come from ``dnnbench.stats``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
from dnnbench.report.io import SchemaError, read_results
from dnnbench.stats import mean_ci

FORMATS = ("png", "svg")
DPI = 110
PALETTE = ["#1b6ca8", "#d95f02", "#2a9d55", "#c0392b", "#7d5ba6", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]

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
    """Read ``*-runs.csv`` with its meta JSON; SchemaError (one line) on a bad schema version,
    missing files or columns, or (``require_known``) results whose metadata records no
    experiment definition (not written by dnnbench run or a preset of it)."""
    runs_path = Path(runs_path)
    runs, meta = read_results(runs_path)
    exp = experiment_of(runs, meta)
    if "experiment_definition" in meta:  # an experiment file's results: the common schema
        return _file_results(exp, runs, meta, runs_path)
    if require_known:
        raise SchemaError(f"{runs_path}: unknown experiment {exp!r} (its metadata records no "
                          "experiment definition)")
    return ResultSet(exp, "", runs, None, meta, runs_path)


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


BOOL_COLUMNS = frozenset({"reached", "diverged"})
BOOL_TEXT = ("true", "false", "1", "0", "yes", "no")


def _typed(df: pd.DataFrame, columns: Sequence[str], path: Path,
           text: Sequence[str] = ()) -> pd.DataFrame:
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
