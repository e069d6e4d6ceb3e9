"""`dnnbench profiles DIR`: optimizer performance profiles across the result sets of a folder
(:mod:`dnnbench.analysis.profiles`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import check_writable_folder, err_console, out_console, usage_error

STEM = "performance-profiles"


def profiles(
    results_dir: Annotated[Path, typer.Argument(
        help="Folder holding the result files (<experiment>-<dataset>-runs.csv + -meta.json; "
        "searched recursively).")] = Path("results"),
    out: Annotated[Path | None, typer.Option(
        help=f"Folder for the figure ({STEM}.png, .svg) and the tables ({STEM}.csv: the "
        f"table printed; {STEM}-problems.csv: every problem's median steps and ratios; "
        f"{STEM}-curves.csv: the profiles on the tau grid).", show_default=False)] = None,
    tau_max: Annotated[float, typer.Option(
        "--tau-max", help="The largest tau of the figure and of the score (the area under "
        "the profile from 1 to tau_max, over tau_max - 1; AlgoPerf's is 4).")] = 4.0,
    as_json: Annotated[bool, typer.Option(
        "--json", show_default=False,
        help="Print the profiles on stdout as one JSON object instead of the table (schema "
             "dnnbench-profiles: tau_max, confidence, resamples; per optimizer its problems, "
             "rho at tau 1, 1.5, 2 and 4 with low and high, the score with its interval and "
             "the median ratio; per problem the experiment, data set, levels and per "
             "optimizer seeds, reached, median_steps and ratio (null: never reached); the "
             "skipped result sets with the reason; the files written).")] = False,
) -> None:
    """Optimizer performance profiles: for each optimizer, rho(tau) is the fraction of the
    problems it appears in where it reaches the target within tau times the steps of the
    fastest optimizer on that problem (Dolan & Moré 2002; how AlgoPerf scores submissions).
    The higher and further left an optimizer's curve, the more often it is the fastest or
    close to it; its score is the area under the curve up to --tau-max.

    A problem is one experiment on one data set at one level of each of its other factors
    (depth, config, ...), among the result sets whose runs hold two or more optimizers and
    have a target; where the runs have lr_source, each optimizer at its tuned rate only.
    Steps per optimizer: the Kaplan-Meier median over its seeds (a run that did not reach
    the target or diverged counts as beyond its budget; a median never reached, as never
    within any tau). Intervals: 95% percentile bootstrap, resampling the seeds of each
    (problem, optimizer), 1000 draws, seed 0. Exit 2 for a missing folder, an unreadable
    result file, or a folder with no result set that varies the optimizer.
    """
    from dnnbench.analysis.profiles import ProfileError, folder_profiles
    from dnnbench.results.io import SchemaError

    if not (math.isfinite(tau_max) and tau_max > 1):
        usage_error(f"--tau-max must be a finite number > 1, got {tau_max}")
    if out is not None:
        check_writable_folder(out, "--out")
    try:
        result = folder_profiles(results_dir, tau_max=tau_max)
    except (SchemaError, ProfileError) as e:
        usage_error(str(e))
    written = _write(result, out) if out is not None else []
    if as_json:
        import json

        print(json.dumps(profiles_doc(result, results_dir, written), indent=1,
                         ensure_ascii=False))
    else:
        out_console().print(profiles_table(result, results_dir))
    for s in result.skipped:
        err_console().print(f"skipped {s.experiment} on {s.dataset}: {s.reason}",
                            highlight=False, markup=False)
    if written:
        err_console().print("Wrote " + ", ".join(str(p) for p in written), highlight=False)


def _write(result, out: Path) -> list[Path]:
    from dnnbench.report.figures import PALETTE, save_figure
    from dnnbench.report.profiles import profile_figure
    from dnnbench.results.io import write_csv

    out.mkdir(parents=True, exist_ok=True)
    paths = save_figure(profile_figure(result, PALETTE), out / STEM)
    for name, frame in ((f"{STEM}.csv", result.table()),
                        (f"{STEM}-problems.csv", result.problems_table()),
                        (f"{STEM}-curves.csv", result.curves_table())):
        write_csv(out / name, frame)
        paths.append(out / name)
    return paths


def profiles_doc(result, folder: Path, written) -> dict:
    """The --json document (schema dnnbench-profiles, version 1)."""
    from dnnbench.analysis.profiles import TABLE_TAUS
    from dnnbench.check.report import clean_json

    optimizers = []
    for row in result.table().to_dict(orient="records"):
        optimizers.append({
            "optimizer": row["optimizer"], "problems": row["problems"],
            "rho": [{"tau": t, "rho": row[f"rho@{t:g}"], "low": row[f"rho@{t:g}_low"],
                     "high": row[f"rho@{t:g}_high"]} for t in TABLE_TAUS],
            "score": {"estimate": row["score"], "low": row["score_low"],
                      "high": row["score_high"]},
            "median_ratio": row["median_ratio"]})
    problems = [{"experiment": p.experiment, "dataset": p.dataset, "levels": p.levels,
                 "optimizers": {o: {"seeds": p.seeds[o], "reached": p.reached[o],
                                    "median_steps": p.medians[o], "ratio": r}
                                for o, r in p.ratios.items()}} for p in result.problems]
    return clean_json({
        "schema": "dnnbench-profiles", "schema_version": 1, "folder": str(folder),
        "tau_max": result.tau_max, "confidence": result.confidence,
        "resamples": result.n_resamples, "seed": result.seed,
        "experiments": [{"experiment": e, "dataset": d} for e, d in result.experiments],
        "optimizers": optimizers, "problems": problems,
        "skipped": [{"experiment": s.experiment, "dataset": s.dataset, "reason": s.reason}
                    for s in result.skipped],
        "files": [str(p) for p in written]})


def _cell(est: float, low: float, high: float) -> str:
    if math.isnan(est):
        return "–"
    return f"{est:.2f} [{low:.2f}, {high:.2f}]"


def profiles_table(result, folder: Path):
    from rich.markup import escape

    from dnnbench.analysis.profiles import TABLE_TAUS
    from dnnbench.report.console import table

    rows = []
    for row in result.table().to_dict(orient="records"):
        r = row["median_ratio"]
        rows.append([escape(row["optimizer"]), str(row["problems"]),
                     *(_cell(row[f"rho@{t:g}"], row[f"rho@{t:g}_low"], row[f"rho@{t:g}_high"])
                       for t in TABLE_TAUS),
                     _cell(row["score"], row["score_low"], row["score_high"]),
                     "never" if math.isinf(r) else f"{r:.2f}"])
    n, k = len(result.problems), len(result.experiments)
    sets = ", ".join(f"{e} on {d}" for e, d in result.experiments)
    title = (f"Optimizer performance profiles over {n} problem{'s' * (n != 1)} from {k} "
             f"result set{'s' * (k != 1)} in {folder} ({sets})")
    caption = (f"rho@tau: fraction of the optimizer's problems (the 'problems' column: an "
               f"optimizer absent from a problem is not counted there) where its Kaplan-Meier "
               f"median steps to target are within tau x the fastest optimizer's; score: the "
               f"area under rho from 1 to {result.tau_max:g} over {result.tau_max - 1:g}; "
               f"median ratio: its median steps over the fastest's, the median over its "
               f"problems. [{round(result.confidence * 100)}% bootstrap interval over seeds, "
               f"{result.n_resamples} draws]. Each optimizer at its tuned rate where the runs "
               "were tuned (lr_source = tuned).")
    return table(escape(title), ["optimizer", "problems", *(f"rho@{t:g}" for t in TABLE_TAUS),
                                 "score", "median ratio"], rows, caption=escape(caption))


def register(app: typer.Typer) -> None:
    app.command("profiles")(profiles)
