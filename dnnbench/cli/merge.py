"""`dnnbench merge DIR... --out DIR`: result folders made separately, as one result set.

Result sets of one experiment run in parts (machines without a shared file system, or halves
of a grid given with ``--set``) are combined by experiment and data set. Parts are "the same
experiment" when their metadata agree on everything but what says which arms and seeds ran:
the experiment, the data set (its fingerprint), ``--quick``, the configuration apart from the
factors' levels and the number of seeds (base settings, reference, factor names...), the
dnnbench, jax, jaxlib, flax and optax versions, the backend and device kind, and the code
that trained them (the ``code`` fingerprint of the metadata). A run (arm + seed) present in
several parts must have the same numbers there (timing columns and the program bookkeeping
aside; ``--tolerance``: floats within a relative difference, for the float32 rounding between
a run as lanes of one program and as its own) and is kept once; anything else is refused with
one line, exit 2.
Rows keep the order of the folders given; programs are numbered anew across the parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import command_line, err_console, usage_error

TIMING = ("compile_s", "step_ms", "eval_ms", "time_to_target_s")
BOOKKEEPING = ("program", "program_lanes")  # how the part grouped its arms into programs
RUN_KEYS = ("pair", "arm", "seed")  # the columns that name a run (those present)
# metadata that says how, where and which part ran, not what was run
PER_PART = ("command", "started", "resumed", "finished", "settings_digest", "executor", "files",
            "git_commit", "platform", "python", "cpu_count", "devices", "arms",
            "compiled_programs", "merged_from", "experiment_file", "versions", "dataset",
            "config")
VERSIONS = ("dnnbench", "jax", "jaxlib", "flax", "optax")
PER_PART_CONFIG = ("factors", "seeds")
DEFINITION = "experiment_definition"  # the experiment as a TOML document (JSON), of `run`
PER_PART_DEFINITION = ("factors", "claims")  # claims: those of the part's levels


def _definition(meta: dict) -> dict | None:
    try:
        doc = json.loads(meta[DEFINITION])
    except (KeyError, TypeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _identity(meta: dict) -> dict:
    """What must agree between the parts of one experiment."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    versions = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
    doc = _definition(meta) or {}
    return {**{k: v for k, v in meta.items() if k not in PER_PART + (DEFINITION,)},
            "definition": {k: v for k, v in doc.items() if k not in PER_PART_DEFINITION},
            "definition_factors": list(doc.get("factors") or {}),
            "dataset": dataset.get("fingerprint"),
            "versions": {k: versions.get(k) for k in VERSIONS},
            "config": {k: v for k, v in config.items() if k not in PER_PART_CONFIG},
            "factor_names": sorted((config.get("factors") or {}).keys())}


def _differs(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(keys)


def _same(x, y, tolerance: float = 0.0) -> bool:
    """Equal values (both missing counts as equal); with ``tolerance``, floats within that
    relative difference too."""
    import math

    import pandas as pd

    if pd.isna(x) and pd.isna(y):
        return True
    if tolerance and isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=tolerance)
    return x == y


def _merge_levels(factors: list[dict]) -> dict:
    """The factors' levels of all parts, in order of appearance (named levels: a mapping)."""
    merged: dict = {}
    for part in factors:
        for name, levels in (part or {}).items():
            if isinstance(levels, dict):
                merged.setdefault(name, {}).update(
                    {k: v for k, v in levels.items() if k not in merged[name]})
                continue
            have = merged.setdefault(name, [])
            for level in levels if isinstance(levels, list) else [levels]:
                if level not in have:
                    have.append(level)
    return merged


def _merge_definition(docs: list[dict]) -> dict:
    """The experiment definition of the merged parts: their levels and claims."""
    doc = dict(docs[0])
    doc["factors"] = _merge_levels([d.get("factors") for d in docs])
    claims: dict = {}
    for d in docs:
        for c in d.get("claims") or []:
            have = claims.setdefault(c["id"], {**c, "where": {}})
            where = _merge_levels([have["where"], c.get("where") or {}])
            have["where"] = where
    doc["claims"] = list(claims.values())
    return doc


def merge_sets(sets: list[tuple], tolerance: float = 0.0):
    """[(folder, runs, curves, meta[, layers])] of one experiment and data set -> (runs,
    curves, meta, layers); the per-layer diagnostics (``layers``) are merged like the curves
    when every part has them (None otherwise).

    ValueError (one line) for parts of different experiments or settings, other columns, or
    conflicting rows (numbers that differ; with ``tolerance``, by more than that relative
    difference: float32 rounding between lanes and separate programs is ~1e-6)."""
    import pandas as pd

    first_dir, first_runs, _, first_meta = sets[0][:4]
    with_layers = all(len(t) > 4 and t[4] is not None for t in sets)
    metas = [t[3] for t in sets]
    ident = _identity(first_meta)
    keys = [k for k in RUN_KEYS if k in first_runs.columns]
    if "arm" not in keys or "seed" not in keys:
        raise ValueError(f"{first_dir}: its runs have no arm and seed columns")
    compared = [c for c in first_runs.columns if c not in TIMING + BOOKKEEPING]
    seen: dict[tuple, tuple[Path, pd.Series]] = {}
    runs_parts, curves_parts, layers_parts, programs = [], [], [], {}
    for folder, runs, curves, meta, *layers in sets:
        other = _identity(meta)
        if other != ident:
            raise ValueError(f"{folder} and {first_dir} hold {first_meta.get('experiment')} "
                             f"results made with other settings (they differ in: "
                             f"{_differs(other, ident)})")
        if list(runs.columns) != list(first_runs.columns):
            raise ValueError(f"{folder} and {first_dir}: the runs files have other columns")
        keep = []
        for i, row in runs.iterrows():
            k = tuple(row[c] for c in keys)
            if k in seen:
                where, prev = seen[k]
                bad = [c for c in compared if not _same(row[c], prev[c], tolerance)]
                if bad:
                    name = ", ".join(f"{c}={v}" for c, v in zip(keys, k, strict=True))
                    hint = ("" if tolerance else "; if they differ only by float32 rounding "
                            "(the same run as lanes of one program and as its own program), "
                            "merge with --tolerance 1e-5")
                    raise ValueError(f"conflicting rows: {name} differs in {', '.join(bad[:3])} "
                                     f"(" + ", ".join(f"{prev[c]!r} vs {row[c]!r}"
                                                      for c in bad[:3])
                                     + f") between {where} and {folder}{hint}")
                continue
            seen[k] = (folder, row)
            keep.append(i)
        part = runs.loc[keep].copy()
        if "program" in part.columns:
            part["program"] = [programs.setdefault((str(folder), p), len(programs))
                               for p in part["program"]]
        if part.empty:  # every run of this part is in an earlier one
            continue
        runs_parts.append(part)
        for table, parts in ((curves, curves_parts),
                             (layers[0] if with_layers else None, layers_parts)):
            if table is None:
                continue
            ck = [c for c in keys if c in table.columns]
            kept = set(map(tuple, part[ck].to_numpy()))
            parts.append(table[[tuple(r) in kept for r in table[ck].to_numpy()]])
    runs = pd.concat(runs_parts, ignore_index=True)
    curves = pd.concat(curves_parts, ignore_index=True)
    layers = pd.concat(layers_parts, ignore_index=True) if with_layers else None
    if "steps_to_target" in runs.columns:
        runs["steps_to_target"] = runs["steps_to_target"].astype("Int64")
    meta = {k: v for k, v in first_meta.items() if k not in ("files", "schema_version")}
    from dnnbench.results.runfolder import settings_digest

    config = dict(meta.get("config") or {})
    if "factors" in config:
        config["factors"] = _merge_levels([(m.get("config") or {}).get("factors")
                                           for m in metas])
    docs = [_definition(m) for m in metas]
    if all(d is not None for d in docs):
        meta[DEFINITION] = json.dumps(_merge_definition(docs))
    if "seeds" in config:
        config["seeds"] = int(runs["seed"].nunique())
    meta.update(config=config, arms=int(runs["arm"].nunique()),
                merged_from=[{"folder": str(f), "command": m.get("command"),
                              "settings_digest": m.get("settings_digest"), "rows": len(r)}
                             for (f, r, _, m, *_) in sets],
                settings_digest=settings_digest(
                    {"merged": sorted(str(m.get("settings_digest")) for m in metas)}))
    if "compiled_programs" in meta:
        meta["compiled_programs"] = len(programs)
    return runs, curves, meta, layers


def merge(
    folders: Annotated[list[Path], typer.Argument(
        metavar="DIR", show_default=False,
        help="Result folders of parts of one experiment (each made by a run on one machine, "
             "or with --set on some of the factors' levels).")],
    out: Annotated[Path, typer.Option(show_default=False,
                                      help="Folder for the merged result set.")],
    force: Annotated[bool, typer.Option("--force", show_default=False,
                                        help="Replace a result set already in --out.")] = False,
    tolerance: Annotated[float, typer.Option(
        min=0.0, max=0.01, help="Accept a run present in several parts whose numbers differ by "
        "at most this relative difference (e.g. 1e-5: float32 rounding between lanes and "
        "separate programs); 0: exactly equal.")] = 0.0,
) -> None:
    """Combine result folders produced separately into one result set (per experiment and
    data set). Parts must be of the same experiment and settings (the factors' levels and the
    seeds may differ) and by the same code; a run present in several parts must have the same
numbers (--tolerance: within a relative difference). Example:
    dnnbench merge part-a part-b --out whole"""
    import types
    from collections import defaultdict

    from dnnbench.cli.common import check_writable_folder
    from dnnbench.results.io import (
        SchemaError,
        find_results,
        read_curves,
        read_layers,
        read_results,
        result_paths,
        write_results,
    )
    from dnnbench.results.runfolder import FolderInUse, locked

    if len(folders) < 2:
        usage_error("merge needs at least two result folders")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    try:
        for folder in folders:
            found = find_results(folder)
            if not found:
                usage_error(f"{folder} holds no result set")
            for experiment, dataset, runs_path in found:
                runs, meta = read_results(runs_path)
                curves = read_curves(runs_path, meta=meta)
                groups[(experiment, dataset)].append((folder, runs, curves, meta,
                                                      read_layers(runs_path)))
    except SchemaError as e:
        usage_error(str(e))
    merged = {}
    for (experiment, dataset), sets in groups.items():
        if len(sets) < 2:
            usage_error(f"{experiment} on {dataset} is only in {sets[0][0]}: nothing to merge "
                        "it with")
        try:
            merged[(experiment, dataset)] = merge_sets(sets, tolerance)
        except ValueError as e:
            usage_error(str(e))
    check_writable_folder(out, "--out")
    try:
        with locked(out, command_line("merge")):
            written = []
            for (experiment, dataset), (runs, curves, meta, layers) in merged.items():
                if result_paths(out, experiment, dataset)["meta"].exists() and not force:
                    usage_error(f"{out} already holds {experiment} results on {dataset}; "
                                "choose another --out, or replace them with --force")
                d = meta.pop("dataset")
                shim = types.SimpleNamespace(**{k: d.get(k) for k in (
                    "name", "source", "requested", "fallback_reason", "hashes", "fingerprint")},
                    y_train=range(d.get("n_train") or 0), y_val=range(d.get("n_val") or 0),
                    y_test=range(d.get("n_test") or 0))
                meta.pop("experiment", None)
                meta["command"] = command_line("merge")
                paths = write_results(out, experiment, shim, runs, curves, meta, layers)
                written += [str(p) for p in paths.values()]
    except FolderInUse as e:
        usage_error(str(e))
    err_console().print("Wrote " + ", ".join(written), highlight=False)
    for (experiment, dataset), (runs, _, meta, _layers) in merged.items():
        typer.echo(f"{experiment} on {dataset}: {len(runs)} runs ({meta['arms']} arms) from "
                   f"{len(meta['merged_from'])} folders")


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
