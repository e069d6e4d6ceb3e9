"""`dnnbench compare A B`: two stored runs of one experiment, arm by arm (exit 1 on a regression
with --fail-on-regression, 2 for unusable or incompatible inputs)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import err_console, out_console, usage_error


def _result_sets(path: Path) -> dict[tuple[str, str], tuple[Path, object, dict]]:
    """{(experiment, data set): (file, runs, meta)} of a results folder, a ``*-runs.csv`` or a check
    runs CSV (with its ``.meta.json``); SchemaError / IncompatibleBaseline for bad input."""
    from dnnbench.check import read_baseline
    from dnnbench.results.io import RUNS_SUFFIX, SchemaError, find_results, read_results

    if path.is_dir():
        files = [p for _, _, p in find_results(path)]
        if not files:
            raise SchemaError(f"{path}: holds no <experiment>-<dataset>{RUNS_SUFFIX} files")
    elif path.name.endswith(RUNS_SUFFIX):
        files = [path]
    else:
        runs, meta = read_baseline(path)
        return {("check " + meta["profile"], meta["dataset"]["name"]): (path, runs, {})}
    out = {}
    for f in files:
        runs, meta = read_results(f)
        ds = meta.get("dataset")
        out[str(meta.get("experiment")), str(ds.get("name") if isinstance(ds, dict) else ds)] = (
            f, runs, meta)
    return out


def _settings_note(meta_a: dict, meta_b: dict) -> str | None:
    """One line naming the settings that differ between the runs of A and B (configuration,
    --quick, data set contents, plug-ins), or None when they were made alike."""
    from dnnbench.results.runfolder import differences

    keys = ("config", "quick", "plugins")
    a = {k: meta_a.get(k) for k in keys} | {"data": (meta_a.get("dataset") or {}).get(
        "fingerprint")}
    b = {k: meta_b.get(k) for k in keys} | {"data": (meta_b.get("dataset") or {}).get(
        "fingerprint")}
    changed = differences(a, b)
    return f"A and B were made with different settings (A -> B): {'; '.join(changed)}" \
        if changed else None


def _has_steps(runs) -> bool:
    """Whether the runs have steps to a target (the transfer protocol's stages have none:
    target 0, every run trains its whole budget)."""
    import pandas as pd

    if "steps_to_target" not in runs.columns:
        return False
    return "target" not in runs.columns or bool(
        pd.to_numeric(runs["target"], errors="coerce").fillna(1).gt(0).any())


def compare(
    a: Annotated[Path, typer.Argument(
        help="The reference: a results folder, an <experiment>-<dataset>-runs.csv, or a check "
        "runs CSV (with NAME.meta.json).", show_default=False)],
    b: Annotated[Path, typer.Argument(
        help="The run to judge against A (same experiment, data set and arms).",
        show_default=False)],
    fail_on_regression: Annotated[bool, typer.Option(
        "--fail-on-regression", help="Exit 1 when an arm regressed (for CI).")] = False,
    max_steps_ratio: Annotated[float, typer.Option(
        help="A regression: median steps rise by more than this factor.")] = 1.15,
    max_accuracy_drop: Annotated[float, typer.Option(
        help="... or final test accuracy falls by more than this (0.01 = 1 point).")] = 0.01,
    alpha: Annotated[float, typer.Option(
        help="One-sided significance level of the regression tests.")] = 0.01,
    as_json: Annotated[bool, typer.Option(
        "--json", show_default=False,
        help="Print the comparison on stdout as one JSON object instead of the tables "
             "(schema dnnbench-compare: a, b, thresholds, and per experiment and data set "
             "the settings that differ, every arm's numbers and verdicts).")] = False,
) -> None:
    """Compare two stored runs of the same experiment arm by arm: B against A.

    A and B: two results folders (every experiment and data set found in both is compared)
    or two runs CSVs.

    Per arm: Kaplan-Meier median steps to target (ratio B/A with a 95% bootstrap interval) and
    mean final test accuracy (difference in points with its interval), each with a verdict
    (ok / regression / improvement) from the same one-sided tests against a minimum effect as
    `dnnbench check`. Seeds are treated as independent samples, even when A and B used the
    same ones. Results without a target (the transfer stages): the final test accuracy per arm.
    Exit 0, or 1 with --fail-on-regression when an arm regressed; 2 for unusable inputs,
    different experiments, data sets or arms.
    """
    from dnnbench.check import IncompatibleBaseline, IncompatibleRuns, Thresholds, compare_runs
    from dnnbench.cli.check import check_table
    from dnnbench.results.io import SchemaError

    for opt, v, ok, need in (("--max-steps-ratio", max_steps_ratio, max_steps_ratio >= 1, ">= 1"),
                             ("--max-accuracy-drop", max_accuracy_drop, max_accuracy_drop >= 0,
                              ">= 0"), ("--alpha", alpha, 0 < alpha < 1, "in (0, 1)")):
        if not (math.isfinite(v) and ok):
            usage_error(f"{opt} must be {need}, got {v}")
    sets = []
    for path in (a, b):
        if not path.exists():
            usage_error(f"{path}: no such file or folder")
        try:
            sets.append(_result_sets(path))
        except (SchemaError, IncompatibleBaseline, FileNotFoundError) as e:
            usage_error(str(e))
    common = sorted(set(sets[0]) & set(sets[1]))
    if not common:
        names = [", ".join(f"{e} on {d}" for e, d in s) for s in sets]
        usage_error(f"A and B hold no results of the same experiment and data set (A: "
                    f"{names[0]}; B: {names[1]})")
    th = Thresholds(max_steps_ratio, max_accuracy_drop, alpha)
    reports, docs = [], []
    for exp, ds in common:
        (fa, ra, ma), (fb, rb, mb) = sets[0][exp, ds], sets[1][exp, ds]
        note = _settings_note(ma, mb)
        if note is not None:
            err_console().print(f"{exp} on {ds}: {note}", highlight=False, markup=False)
        steps = _has_steps(ra)
        try:
            report = compare_runs(ra, rb, th, fresh_seeds=False, names=("A", "B"), steps=steps)
        except IncompatibleRuns as e:
            usage_error(f"cannot compare {fa} with {fb}: {e}")
        reports.append(report)
        docs.append({"experiment": exp, "dataset": ds, "a": str(fa), "b": str(fb),
                     "settings_differ": note, **report.to_dict()})
        if as_json:
            continue
        status = "no regression" if report.passed else f"{len(report.regressions)} regression(s)"
        out_console().print(check_table(report, exp, ds, names=("A", "B"), title=(
            f"{exp} on {ds}: B ({fb}, {report.n_current_seeds} seeds per arm) vs A ({fa}, "
            f"{report.n_baseline_seeds}): {status}")))
    n_reg = sum(len(r.regressions) for r in reports)
    n_imp = sum(len(r.improvements) for r in reports)
    if as_json:
        import json

        from dnnbench.check.report import clean_json

        print(json.dumps(clean_json({
            "schema": "dnnbench-compare", "schema_version": 1, "a": str(a), "b": str(b),
            "thresholds": {"max_steps_ratio": max_steps_ratio,
                           "max_accuracy_drop": max_accuracy_drop, "alpha": alpha},
            "regressions": n_reg, "improvements": n_imp, "comparisons": docs}),
            indent=1, ensure_ascii=False))
    err_console().print(f"compare: {n_reg} regression(s), {n_imp} improvement(s)",
                        highlight=False)
    raise typer.Exit(1 if fail_on_regression and n_reg else 0)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
