"""ONE result set and its loaders, for every reader (claims, report, figures, check):
an experiment's runs on one data set, with their metadata, curves and per-layer diagnostics.

:func:`load_result` reads one ``*-runs.csv`` (with its ``-meta.json``), checked against the
experiment definition its metadata records; :func:`load_results` reads every result set
under a folder, combined per (experiment, data set)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dnnbench.definition import experiment as files
from dnnbench.results.io import (
    FLAG_COLUMNS,
    NUMBER_COLUMNS,
    SchemaError,
    read_results,
    read_table,
)


@dataclass
class ResultSet:
    """All runs of one experiment on one data set (possibly from several files)."""

    experiment: str
    dataset: str
    runs: pd.DataFrame
    metas: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # relative to the folder read
    layers: pd.DataFrame | None = None  # per-layer diagnostics (runs with diagnostics)
    timing: pd.DataFrame | None = None  # interleaved step timings (runs with timing_rounds)
    curves: pd.DataFrame | None = None
    runs_path: Path | None = None  # the one file read by load_result

    @property
    def meta(self) -> dict:
        """The metadata of the (first) file."""
        return self.metas[0] if self.metas else {}

    @property
    def recorded_definition(self) -> str | None:
        """The experiment definition its metadata records (the TOML document as JSON), if any."""
        return next((m.get("experiment_definition") for m in self.metas
                     if m.get("experiment_definition")), None)

    @property
    def stem(self) -> str:
        return self.runs_path.name[: -len("-runs.csv")]


def experiment_of(runs: pd.DataFrame, meta: dict) -> str:
    exp = meta.get("experiment")
    if not exp and "experiment" in runs.columns and len(runs):
        exp = str(runs["experiment"].iloc[0])
    return str(exp or "")


def load_result(runs_path: str | Path, require_known: bool = True) -> ResultSet:
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
    return ResultSet(exp, "", runs, [meta], [runs_path.name], runs_path=runs_path)


# the common schema of experiment files: what every result set has, and its number columns
COMMON_COLUMNS = ("arm", "seed", "reached", "steps_to_target", "max_steps", "diverged")


def _file_results(exp: str, runs: pd.DataFrame, meta: dict, runs_path: Path) -> ResultSet:
    """An experiment file's results, checked: the common columns and the file's factors are
    there, numbers are numbers, flags are flags (SchemaError, one line, otherwise)."""
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
    runs = _numbers(runs)
    dataset = (meta.get("dataset") or {}).get("name") or str(runs["dataset"].iloc[0])
    return ResultSet(exp, dataset, _normalize(runs), [meta], [runs_path.name],
                     runs_path=runs_path)


def _numbers(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with its number columns as numbers (their values were checked on reading:
    :func:`dnnbench.results.io.check_types`)."""
    runs = runs.copy()
    for c in NUMBER_COLUMNS:
        if c in runs.columns:
            runs[c] = pd.to_numeric(runs[c], errors="coerce")
    return runs


def _bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _normalize(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for c in FLAG_COLUMNS:
        if c in runs.columns:
            runs[c] = _bool(runs[c])
    return runs


def load_results(folder: str | Path) -> dict[tuple[str, str], ResultSet]:
    """Every result set under ``folder`` (recursively; hidden folders skipped), combined per
    (experiment, data set).  SchemaError for a missing folder or an unreadable/unknown file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError(f"{folder}: no such results folder")
    sets: dict[tuple[str, str], ResultSet] = {}
    for path in sorted(folder.rglob("*-runs.csv")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        runs, meta = read_results(path)
        exp = meta.get("experiment")
        ds = meta.get("dataset")
        ds = ds.get("name") if isinstance(ds, dict) else ds
        if not isinstance(exp, str) or not isinstance(ds, str):
            raise SchemaError(f"{path}: metadata lacks the experiment or data set name")
        rel = str(path.relative_to(folder))
        rs = sets.setdefault((exp, ds), ResultSet(exp, ds, runs.iloc[0:0]))
        rs.runs = pd.concat([rs.runs, runs], ignore_index=True) if len(rs.runs) else runs
        rs.metas.append(meta)
        rs.files.append(rel)
        for kind in ("layers", "timing"):
            table = read_table(path, kind)
            if table is not None:
                old = getattr(rs, kind)
                setattr(rs, kind, table if old is None else pd.concat([old, table],
                                                                      ignore_index=True))
    for rs in sets.values():
        key = [c for c in ("pair", "arm", "seed", "spec_hash") if c in rs.runs.columns]
        if len(rs.files) > 1 and key:
            rs.runs = rs.runs.drop_duplicates(key, keep="last").reset_index(drop=True)
    return sets
