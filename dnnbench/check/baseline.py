"""Stored baselines: ``<name>.csv`` (one row per arm and seed) + ``<name>.meta.json``.

The metadata pins what makes a baseline comparable: its schema version, the profile's name
and settings (verbatim), the data set (name and array fingerprint) and the seed blocks (the
baseline's, and the default fresh block of check runs).  Anything else (versions, device,
git commit, wall times) is recorded for information.  Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dnnbench.check.compare import REQUIRED_COLUMNS
from dnnbench.check.profiles import Profile
from dnnbench.results.io import SchemaError, check_types, environment, now, write_csv, write_json
from dnnbench.results.runfolder import differences

BASELINE_SCHEMA = "dnnbench-check-baseline"
BASELINE_VERSION = 1


class IncompatibleBaseline(ValueError):
    """The baseline cannot be compared with this profile/data (message is user-facing)."""


def meta_path(csv_path: str | Path) -> Path:
    p = Path(csv_path)
    return p.with_name(p.name[: -len(".csv")] + ".meta.json" if p.name.endswith(".csv")
                       else p.name + ".meta.json")


def baseline_meta(profile: Profile, data, seeds: list[int], current_offset: int,
                  extra: dict | None = None) -> dict:
    return {"schema": BASELINE_SCHEMA, "schema_version": BASELINE_VERSION,
            "profile": profile.name, "profile_config": profile.config,
            "dataset": {"name": data.name, "fingerprint": data.fingerprint,
                        "source": data.source},
            "seeds": {"offset": min(seeds), "count": len(seeds)},
            "current_seed_offset": current_offset, "created": now(), **environment(),
            **(extra or {})}


def write_baseline(csv_path: str | Path, runs: pd.DataFrame, meta: dict) -> tuple[Path, Path]:
    csv_path = Path(csv_path)
    write_csv(csv_path, runs)
    write_json(meta_path(csv_path), meta)
    return csv_path, meta_path(csv_path)


def read_baseline(csv_path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a runs table and its metadata; IncompatibleBaseline for unknown schema or columns."""
    csv_path = Path(csv_path)
    mp = meta_path(csv_path)
    if csv_path.is_dir():
        raise FileNotFoundError(f"baseline {csv_path} is a folder, not a runs CSV file (name "
                                "the file, e.g. benchmarks/baselines/smoke.csv)")
    if csv_path.exists() and not csv_path.is_file():
        raise FileNotFoundError(f"baseline {csv_path} is not a regular file (a device, a "
                                "socket, ...): name a runs CSV file")
    if not csv_path.is_file():
        raise FileNotFoundError(f"baseline not found: {csv_path} (create it with "
                                "--update-baseline)")
    if not mp.is_file():
        raise IncompatibleBaseline(f"{csv_path}: its metadata file {mp.name} is missing")
    try:
        meta = json.loads(mp.read_text())
    except json.JSONDecodeError as e:
        raise IncompatibleBaseline(f"{mp}: not valid JSON ({e.msg})") from None
    if not isinstance(meta, dict):
        raise IncompatibleBaseline(f"{mp}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("schema") != BASELINE_SCHEMA or meta.get("schema_version") != BASELINE_VERSION:
        raise IncompatibleBaseline(
            f"{mp}: unknown schema {meta.get('schema')!r} version "
            f"{meta.get('schema_version')!r} (this dnnbench reads {BASELINE_SCHEMA} "
            f"version {BASELINE_VERSION})")
    _check_meta_types(meta, mp)
    try:
        runs = pd.read_csv(csv_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise IncompatibleBaseline(f"{csv_path}: not a readable CSV ({e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing:
        raise IncompatibleBaseline(f"{csv_path}: missing columns: {', '.join(missing)}")
    try:  # numbers are numbers, flags are flags: the one check of every result table
        check_types(runs, csv_path)
    except SchemaError as e:
        raise IncompatibleBaseline(str(e)) from None
    return runs, meta


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


META_TYPES = {  # key: (check, what) -- the fields that comparisons read
    "profile": (lambda v: isinstance(v, str), "a profile name"),
    "profile_config": (lambda v: isinstance(v, dict), "a table of settings"),
    "dataset": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str),
                'an object with a "name"'),
    "seeds": (lambda v: isinstance(v, dict) and all(_is_int(v.get(k)) for k in ("offset",
                                                                              "count")),
              'an object with integer "offset" and "count"'),
    "current_seed_offset": (_is_int, "an integer >= 0"),
    "wall": (lambda v: isinstance(v, dict) and _is_int(v.get("seeds")) and isinstance(
        v.get("step_ms"), dict) and all(isinstance(x, int | float) and not isinstance(x, bool)
                                        for x in v["step_ms"].values()),
        'an object with integer "seeds" and numeric "step_ms"'),
}


def _check_meta_types(meta: dict, mp: Path) -> None:
    """IncompatibleBaseline for a metadata field of the wrong type (optional ones may lack)."""
    for key, (ok, what) in META_TYPES.items():
        required = key in ("profile", "profile_config", "dataset")
        if (key in meta or required) and not ok(meta.get(key)):
            raise IncompatibleBaseline(f"{mp}: field {key!r} must be {what}, got "
                                       f"{meta.get(key)!r:.60}")


def check_compatible(meta: dict, profile: Profile, data=None, *, what: str = "baseline") -> None:
    """Raise IncompatibleBaseline unless ``meta`` was made by this profile on this data."""
    if meta.get("profile") != profile.name:
        raise IncompatibleBaseline(f"the {what} is for profile {meta.get('profile')!r}, not "
                                   f"{profile.name!r}")
    stored = json.dumps(meta.get("profile_config"), sort_keys=True)
    if stored != profile.config_json:
        changed = "; ".join(differences(meta.get("profile_config"), profile.config))
        raise IncompatibleBaseline(
            f"profile {profile.name!r} settings differ from the {what}'s ({what} -> profile: "
            f"{changed}); re-create the baseline with --update-baseline")
    ds = meta.get("dataset") or {}
    if ds.get("name") != profile.dataset:
        raise IncompatibleBaseline(f"the {what} was made on data set {ds.get('name')!r}, "
                                   f"the profile uses {profile.dataset!r}")
    if data is not None and ds.get("fingerprint") != data.fingerprint:
        raise IncompatibleBaseline(
            f"the {what}'s data set {data.name!r} has different contents (fingerprint "
            f"{ds.get('fingerprint')} vs {data.fingerprint}); re-create the baseline")
