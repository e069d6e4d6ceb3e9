"""Atomic, schema-versioned result files: ``<exp>-<dataset>-runs.csv``, ``-curves.csv``, ``-meta.json``.

Every file is written to a temporary file in the same folder, flushed to disk and renamed over
the target (then the folder entry is flushed too), so a reader never sees a half-written CSV or
JSON, even if the process dies mid-write; when the write fails, the previous file is left intact
and the temporary file is removed. A process killed with SIGKILL cannot clean up: its temporary
file (``.<name>.<host>.<pid>-XXXX.tmp``, hidden and never matched by ``*-runs.csv``) is removed
by the next writer into that folder (:func:`remove_stale_temps`) once that process is gone.

The metadata file is written last and is the commit point of a result set: it carries
``schema_version`` and the row count and SHA-256 of the runs and curves files, so a reader can
tell a complete, consistent set from one whose writing was interrupted (:func:`read_results`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import platform
import subprocess
from pathlib import Path

import pandas as pd

from dnnbench import package_versions
from dnnbench.files import atomic_write_bytes, atomic_write_text, remove_stale_temps
from dnnbench.limits import cpu_model

SCHEMA_VERSION = 1
RUNS_SUFFIX = "-runs.csv"
META_SUFFIX = "-meta.json"
CURVES_SUFFIX = "-curves.csv"


class SchemaError(Exception):
    """A result file has an unknown schema version or lacks required columns (user-facing)."""


def csv_text(df: pd.DataFrame) -> str:
    """The exact text :func:`write_csv` writes for ``df``."""
    return df.to_csv(index=False, lineterminator="\n")


def write_csv(path: str | Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, csv_text(df))


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def content_digest(data: bytes) -> str:
    """SHA-256 of a text file's bytes, line endings normalized (a CRLF checkout still matches)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def result_paths(out: str | Path, experiment: str, dataset: str) -> dict[str, Path]:
    stem = Path(out) / f"{experiment}-{dataset}"
    return {"runs": Path(f"{stem}-runs.csv"), "curves": Path(f"{stem}-curves.csv"),
            "meta": Path(f"{stem}-meta.json")}


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, backend and device of this process (for the metadata file)."""
    import jax


    versions = package_versions("dnnbench", "jax", "jaxlib", "flax", "optax", "numpy",
                                "pandas", "scipy")
    devices = jax.devices()
    return {"versions": versions, "backend": jax.default_backend(),
            "devices": [str(d) for d in devices], "device_kind": devices[0].device_kind,
            "cpu_count": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "platform": platform.platform(), "git_commit": _git_commit()}


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_results(out: str | Path, experiment: str, dataset, runs: pd.DataFrame,
                  curves: pd.DataFrame, meta: dict,
                  layers: pd.DataFrame | None = None,
                  tables: dict[str, pd.DataFrame] | None = None) -> dict[str, Path]:
    """Write the three files of an experiment (runs, curves, then meta); returns their paths.

    Each file is atomic; the meta file, written last, records the row count and digest of the
    other two, so an interruption between the writes is detected by :func:`read_results`.
    ``layers`` (per-layer diagnostics) and the other ``tables`` (kind -> frame, e.g. the
    interleaved ``timing``: ``<name>-<dataset>-<kind>.csv``), if given, are written before the
    meta file too."""
    paths = result_paths(out, experiment, dataset.name)
    remove_stale_temps(paths["runs"].parent)
    files = {}
    extra = {**({"layers": layers} if layers is not None else {}), **(tables or {})}
    written = [("runs", runs), ("curves", curves)]
    for kind, df in extra.items():
        paths = {**paths, kind: table_path_of(paths["runs"], kind)}
        written.append((kind, df))
    for kind, df in written:
        data = csv_text(df).encode("utf-8")
        atomic_write_bytes(paths[kind], data)
        files[kind] = {"name": paths[kind].name, "rows": len(df),
                       "sha256": content_digest(data)}
    full_meta = {"schema_version": SCHEMA_VERSION, "experiment": experiment,
                 "dataset": {"name": dataset.name, "source": dataset.source,
                             "requested": dataset.requested or dataset.name,
                             "fallback_reason": dataset.fallback_reason,
                             "hashes": dataset.hashes, "fingerprint": dataset.fingerprint,
                             "n_train": len(dataset.y_train), "n_val": len(dataset.y_val),
                             "n_test": len(dataset.y_test)},
                 **environment(), **meta, "files": files}
    write_json(paths["meta"], full_meta)
    return paths


# ------------------------------------------------------------------------------------ reading

def meta_path_of(runs_path: str | Path) -> Path:
    runs_path = Path(runs_path)
    return runs_path.with_name(runs_path.name.removesuffix(RUNS_SUFFIX) + META_SUFFIX)


def table_path_of(runs_path: str | Path, kind: str) -> Path:
    """The table ``kind`` beside ``runs_path`` (``<name>-<dataset>-<kind>.csv``)."""
    runs_path = Path(runs_path)
    return runs_path.with_name(runs_path.name.removesuffix(RUNS_SUFFIX) + f"-{kind}.csv")


def layers_path_of(runs_path: str | Path) -> Path:
    """The per-layer diagnostics beside ``runs_path`` (``<name>-<dataset>-layers.csv``)."""
    return table_path_of(runs_path, "layers")


def read_table(runs_path: str | Path, kind: str) -> pd.DataFrame | None:
    """The table ``kind`` beside ``runs_path`` (``layers``, ``timing``), checked against the
    meta file like the curves; None when the run has none."""
    meta = read_meta(meta_path_of(runs_path))
    if kind not in (meta.get("files") or {}):
        return None
    return _read_checked_csv(table_path_of(runs_path, kind), meta, kind, ())


def read_layers(runs_path: str | Path) -> pd.DataFrame | None:
    """The per-layer diagnostics beside ``runs_path``; None when the run has none."""
    return read_table(runs_path, "layers")


def curves_path_of(runs_path: str | Path) -> Path:
    runs_path = Path(runs_path)
    return runs_path.with_name(runs_path.name.removesuffix(RUNS_SUFFIX) + CURVES_SUFFIX)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def read_meta(meta_path: str | Path) -> dict:
    """A result set's metadata; SchemaError unless it is a JSON object of this schema version."""
    meta_path = Path(meta_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{meta_path}: metadata file is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SchemaError(f"{meta_path}: not a readable metadata file ({_one_line(e)})") from None
    if not isinstance(meta, dict):
        raise SchemaError(f"{meta_path}: not a dnnbench metadata file (no JSON object)")
    version = meta.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaError(f"{meta_path}: unknown schema version {version!r} "
                          f"(this dnnbench reads version {SCHEMA_VERSION})")
    return meta


def _read_checked_csv(path: Path, meta: dict, kind: str,
                      required: list[str] | tuple[str, ...]) -> pd.DataFrame:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"{path}: {kind} file is missing") from None
    except OSError as e:
        raise SchemaError(f"{path}: cannot read ({_one_line(e)})") from None
    files = meta.get("files")
    if files is not None and not isinstance(files, dict):
        raise SchemaError(f"{meta_path_of_kind(path, kind)}: its 'files' entry is not a table "
                          "of the result files (a damaged or hand-edited metadata file)")
    recorded = (files or {}).get(kind)
    if recorded is not None and not isinstance(recorded, dict):
        raise SchemaError(f"{meta_path_of_kind(path, kind)}: its 'files' entry for the {kind} "
                          "file is not a table (a damaged or hand-edited metadata file)")
    if isinstance(recorded, dict) and recorded.get("sha256") not in (None, content_digest(data)):
        raise SchemaError(f"{path}: does not match its metadata file (changed after it was "
                          "written, or the write was interrupted); run the command again")
    try:
        df = pd.read_csv(io.BytesIO(data))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SchemaError(f"{path}: not a readable CSV file ({_one_line(e)})") from None
    _whole_rows(path, data, len(df.columns), recorded)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing columns: {', '.join(missing)}")
    if kind == "runs":
        if df.empty:
            raise SchemaError(f"{path}: has no runs")
        check_types(df, path)
        df = _whole_int_settings(df)
    return df


def _whole_int_settings(df: pd.DataFrame) -> pd.DataFrame:
    """Integer settings with empty cells (transfer's A rows, shared by groups that differ in
    train_size or reuse_layers) read back as whole numbers (``Int64``), as they were written:
    a level 50 stays "50", not "50.0", for the claims and summaries that match levels."""
    from dnnbench.definition.settings import PROTOCOL_SETTINGS, SETTINGS

    for k, v in {**SETTINGS, **PROTOCOL_SETTINGS}.items():
        if v.kind == "int" and k in df and pd.api.types.is_float_dtype(df[k]):
            x = df[k].dropna()
            if len(x) and (x == x.round()).all():
                df[k] = df[k].astype("Int64")
    return df


def meta_path_of_kind(path: Path, kind: str) -> Path:
    """The metadata file of a result set's ``kind`` CSV (``<stem>-<kind>.csv``)."""
    return path.with_name(path.name.removesuffix(f"-{kind}.csv") + META_SUFFIX)


def _whole_rows(path: Path, data: bytes, n_columns: int, recorded) -> None:
    """Every record of the CSV has the header's number of fields (a file cut mid-row, even
    with its digest recomputed, is refused), and as many records as the metadata says."""
    import csv

    records = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    next(records, None)  # the header
    n_rows = 0
    for n_rows, record in enumerate((r for r in records if r), start=1):
        if len(record) != n_columns:
            raise SchemaError(f"{path}: row {n_rows + 1} has {len(record)} fields, the header "
                              f"{n_columns} (a cut or damaged file)")
    rows = recorded.get("rows") if isinstance(recorded, dict) else None
    if isinstance(rows, int) and not isinstance(rows, bool) and rows != n_rows:
        raise SchemaError(f"{path}: holds {n_rows} rows, its metadata file says {rows}")


# the common schema of result tables: the columns that are numbers, and those that are flags
NUMBER_COLUMNS = ("seed", "steps_to_target", "max_steps", "steps_done", "step_ms", "compile_s",
                  "eval_ms", "time_to_target_s", "final_eval_accuracy", "best_eval_accuracy",
                  "final_eval_loss", "final_train_loss", "final_test_accuracy",
                  "final_test_loss")
FLAG_COLUMNS = ("reached", "diverged")
FLAG_TEXT = ("true", "false", "1", "0", "yes", "no")
# what a number column may hold besides being a number: (whole numbers only, lowest, highest);
# missing values are allowed everywhere, infinite losses too (a diverged run's)
_COUNT, _ACCURACY, _COST = (True, 0, None), (False, 0.0, 1.0), (False, 0.0, None)
RANGES = {"seed": _COUNT, "steps_to_target": _COUNT, "max_steps": _COUNT, "steps_done": _COUNT,
          **dict.fromkeys(("final_eval_accuracy", "best_eval_accuracy", "final_test_accuracy"),
                          _ACCURACY),
          **dict.fromkeys(("step_ms", "compile_s", "eval_ms", "time_to_target_s"), _COST),
          **dict.fromkeys(("final_eval_loss", "final_train_loss", "final_test_loss"), _COST)}


def _numeric_settings() -> tuple[str, ...]:
    from dnnbench.definition.settings import PROTOCOL_SETTINGS, SETTINGS

    return tuple(k for k, v in {**SETTINGS, **PROTOCOL_SETTINGS}.items()
                 if v.kind in ("int", "float"))


def check_types(df: pd.DataFrame, path: Path) -> None:
    """SchemaError (one line) for a value of a number column (the metrics, and the columns of
    numeric run settings) that is neither a number nor empty, or out of its range (a seed or
    a step count that is not a whole number >= 0, an accuracy outside [0, 1], a negative time
    or loss), or of a flag column that is not true/false (a damaged or hand-edited file):
    every reader refuses it, none reads it as data."""
    numeric = (*NUMBER_COLUMNS, *(c for c in _numeric_settings() if c not in NUMBER_COLUMNS))
    for c in (*numeric, *FLAG_COLUMNS):
        if c not in df.columns:
            continue
        given = df[c].notna() & df[c].astype(str).str.strip().ne("")
        if c in FLAG_COLUMNS:
            ok = df[c].astype(str).str.strip().str.lower().isin(FLAG_TEXT) | ~given
            what = "true or false"
        else:
            ok = pd.to_numeric(df[c], errors="coerce").notna() | ~given
            what = "numbers"
        if not ok.all():
            raise SchemaError(f"{path}: column {c!r} holds values that are not {what} "
                              f"({df.loc[~ok, c].iloc[0]!r} in {int((~ok).sum())} row(s))")
        if c in RANGES:
            whole, low, high = RANGES[c]
            x = pd.to_numeric(df[c], errors="coerce")
            finite = x[x.notna() & (x.abs() != float("inf"))]
            bad = (finite < low) | (finite > high if high is not None else False)
            if whole:
                bad |= finite != finite.round()
            infinite = x[x.abs() == float("inf")]
            if c not in ("final_eval_loss", "final_train_loss", "final_test_loss"):
                bad = pd.concat([bad, pd.Series(True, index=infinite.index)])
            if bad.any():
                rule = ("a whole number >= 0" if whole else f"in [{low:g}, {high:g}]"
                        if high is not None else f"a finite number >= {low:g}")
                raise SchemaError(f"{path}: column {c!r} holds values that are not {rule} "
                                  f"({float(x[bad[bad].index].iloc[0]):g} in "
                                  f"{int(bad.sum())} row(s))")


def read_results(runs_path: str | Path, required: list[str] | tuple[str, ...] = ()):
    """Read a runs CSV and its meta JSON -> (runs, meta).

    SchemaError (one line) for a missing or unreadable file, an unknown schema version, a runs
    file that does not match the digest its meta recorded, or missing ``required`` columns."""
    runs_path = Path(runs_path)
    if not runs_path.name.endswith(RUNS_SUFFIX):
        raise SchemaError(f"{runs_path}: not a results file (expected a name ending in "
                          f"{RUNS_SUFFIX})")
    if not runs_path.exists():
        raise SchemaError(f"{runs_path}: no such results file")
    meta = read_meta(meta_path_of(runs_path))
    return _read_checked_csv(runs_path, meta, "runs", required), meta


def read_curves(runs_path: str | Path, required: list[str] | tuple[str, ...] = (),
                meta: dict | None = None) -> pd.DataFrame:
    """The curves CSV beside ``runs_path``, checked like :func:`read_results` checks the runs."""
    meta = read_meta(meta_path_of(runs_path)) if meta is None else meta
    return _read_checked_csv(curves_path_of(runs_path), meta, "curves", required)


def find_results(folder: str | Path, required: list[str] | tuple[str, ...] = (), *,
                 recursive: bool = False) -> list[tuple[str, str, Path]]:
    """Validate every result set in ``folder`` -> [(experiment, dataset, runs_path)], sorted.

    A result set is a ``<exp>-<dataset>-runs.csv`` with its ``-meta.json``. Raises SchemaError
    (one line) for a missing folder, a runs file without metadata (or the reverse), an unknown
    schema version, a runs file that does not match its metadata, or missing ``required``
    columns. Hidden files (temp files, the unit store) are ignored. An empty folder gives []."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError(f"{folder}: no such results folder")
    pattern = "**/*" if recursive else "*"
    stems: set[Path] = set()
    for suffix in (RUNS_SUFFIX, META_SUFFIX):
        for p in folder.glob(pattern + suffix):
            if any(part.startswith(".") for part in p.relative_to(folder).parts):
                continue
            stems.add(p.with_name(p.name.removesuffix(suffix)))
    found = []
    for stem in sorted(stems):
        runs_path = stem.with_name(stem.name + RUNS_SUFFIX)
        if not runs_path.exists():
            raise SchemaError(f"{meta_path_of(runs_path)}: its runs file {runs_path.name} "
                              "is missing")
        _, meta = read_results(runs_path, required)
        dataset = meta.get("dataset")
        dataset = dataset.get("name") if isinstance(dataset, dict) else dataset
        experiment = meta.get("experiment")
        if not isinstance(experiment, str) or not isinstance(dataset, str):
            raise SchemaError(f"{meta_path_of(runs_path)}: metadata lacks the experiment or "
                              "data set name")
        found.append((experiment, dataset, runs_path))
    return found
