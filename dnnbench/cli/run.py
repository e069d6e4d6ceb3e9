"""`dnnbench run NAME_OR_FILE` and `dnnbench list`: experiments as data files."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli import executor as executors
from dnnbench.cli import options
from dnnbench.cli.common import (
    file_data,
    file_seeds,
    out_console,
    run_experiment,
    usage_error,
    warn,
)
from dnnbench.cli.options import TRAINING


def run(
    experiment: options.ExperimentFile,
    set_: options.Sets = None,
    seeds: options.FileSeeds = None,
    quick: options.FileQuick = False,
    dataset: options.FileDataset = None,
    data_dir: options.DataDir = None,
    out: options.Out = Path("out"),
    fresh: options.Fresh = False,
    force: options.Force = False,
    plot: options.Plot = False,
    one_program_per_arm: Annotated[bool, typer.Option(
        rich_help_panel=TRAINING, show_default=False, hidden=True,
        help="Compile every arm as its own program (to measure what lanes save).")] = False,
    executor: executors.Executor = "local",
    scheduler: executors.Scheduler = None,
    workers: executors.Workers = None,
    slurm_param: executors.SlurmParam = None,
    lanes_per_unit: executors.LanesPerUnit = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", rich_help_panel=TRAINING, show_default=False,
        help="Say what the run would do (arms, lanes, compiled programs, units, a lower "
             "estimate of the largest program's memory) and stop: nothing is trained or "
             "written.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", show_default=False,
        help="Print the results on stdout as one JSON object instead of the tables (schema "
             "dnnbench-run: experiment, dataset, files, arms: one object per arm with its "
             "summary numbers, claims: the file's claims; with --dry-run, dnnbench-dry-run). "
             "Progress and messages stay on stderr.")] = False,
) -> None:
    """Run an experiment file: its grid of arms x paired seeds, then the summary and claims.

    Arms that differ only in numbers (learning rate, optimizer coefficients, penalties,
    dropout, clipping, BN momentum, leaky slope, the initializer's scale) are lanes of one
    compiled program; results are written as <out>/<name>-<dataset>-runs.csv, -curves.csv
    and -meta.json (and -layers.csv with diagnostics = true: per-layer statistics at step 0
    and every evaluation). Example: dnnbench run
    my-grid.toml --seeds 3 --set learning_rate=0.001,0.01 --out results-grid
    """
    from dnnbench import definition
    from dnnbench.limits import LimitError, check

    try:
        exp = definition.load(experiment)
        sets = dict(definition.parse_assignment(s) for s in (set_ or []))
        if quick:
            exp = definition.quick_variant(exp)
        exp = definition.override(exp, sets)
        check("grid", exp.n_arms, f"{exp.name}: arms")
    except (definition.ExperimentError, LimitError) as e:
        usage_error(str(e))
    n_seeds = file_seeds(exp, seeds, quick)
    data = file_data(exp, dataset, data_dir, quick)
    if dry_run:
        from dnnbench.run.dryrun import dry_run as plan_only

        try:
            planned = plan_only(exp, data, n_seeds, lanes_per_unit=lanes_per_unit,
                                one_program_per_arm=one_program_per_arm)
        except (definition.ExperimentError, ValueError) as e:
            usage_error(str(e))
        if as_json:
            _print_json({"schema": "dnnbench-dry-run", "schema_version": 1,
                         "experiment": exp.name, "dataset": data.name, "quick": quick,
                         **dataclasses.asdict(planned)})
            return
        out_console().print(f"dry run of {exp.name} on {data.name}"
                            f"{' (--quick)' if quick else ''}:", highlight=False)
        for line in planned.lines():
            out_console().print(f"  {line}", highlight=False)
        return
    worker_data = executors.worker_data(data, data_dir, quick and exp.quick.get(
        "subset", True)) if executor != "local" else None
    execute(exp, data, n_seeds, out, fresh=fresh, force=force, plot=plot,
            meta={"experiment_file": definition.recorded_source(exp), "quick": quick},
            one_program_per_arm=one_program_per_arm, lanes_per_unit=lanes_per_unit,
            worker_data=worker_data, executor=executor, scheduler=scheduler, workers=workers,
            slurm_param=slurm_param, as_json=as_json)


def _print_json(doc: dict) -> None:
    import json

    from dnnbench.check.report import clean_json

    print(json.dumps(clean_json(doc), indent=1, ensure_ascii=False))


def execute(exp, data, n_seeds: int, out: Path, *, fresh: bool = False, force: bool = False,
            plot: bool = False, meta: dict | None = None, one_program_per_arm: bool = False,
            lanes_per_unit: int | None = None, worker_data=None, executor: str = "local",
            scheduler=None, workers=None, slurm_param=None, timing: bool | str = True,
            as_json: bool = False):
    """Train ``exp`` (its arms x ``n_seeds`` paired seeds, on ``data``) with its protocol,
    resumably into ``out``, then print the summary and claims (and, with ``plot``, write the
    figures). Shared by `dnnbench run` and the commands that are presets over a packaged
    file. ``timing``: measure the step time in every unit, in the "first" only (a transfer
    sweep over class pairs), or not at all (False). Returns (runs, curves, paths)."""
    from dnnbench import definition
    from dnnbench.definition.protocols import DEFAULT
    from dnnbench.run import plan, protocols

    config = {"base": exp.base, "factors": exp.factors, "reference": exp.reference,
              "seeds": n_seeds, "one_program_per_arm": one_program_per_arm,
              "lanes_per_unit": lanes_per_unit}
    meta = {**(meta or {}), "config": config}
    try:
        plugins = _plugins(exp)
    except (definition.ExperimentError, ValueError) as e:
        usage_error(str(e))
    if plugins:  # what their results depend on: import path, source digest, version
        meta["plugins"] = plugins
    if exp.search is None:
        meta |= {"units": None, "arms": exp.n_arms}
    else:  # the points of the fine stages depend on the results: not settings of the run
        config["factors"] = {k: v for k, v in exp.factors.items() if k != definition.POINT}
        config["search"] = exp.search.source
    # the interleaved timing pass (``timing_rounds``) replaces every unit's own step time: the
    # units then skip theirs (~0.8 s a program on 2 CPU cores)
    unit_timing = False if _interleaved(exp, timing) else timing
    with executors.executor_for(executor, scheduler=scheduler, workers=workers,
                                slurm_param=slurm_param, out=out) as ex:
        stage = 1
        while True:  # a search's stages: each later one drawn from the results so far
            try:
                units = protocols.build_units(exp, data, range(n_seeds), timing=unit_timing,
                                              one_program_per_arm=one_program_per_arm,
                                              lanes_per_unit=lanes_per_unit,
                                              worker_data=worker_data)
            except (definition.ExperimentError, ValueError) as e:
                usage_error(str(e))
            if exp.search is None:
                meta["units"] = len(units)
                if exp.protocol in (None, DEFAULT):  # (a transfer unit: 3 programs)
                    meta["compiled_programs"] = plan.compiled_programs(units)
            runs, curves, paths = run_experiment(
                exp.name, units, data, out, fresh=fresh and stage == 1, force=force,
                meta=meta, finalize=functools.partial(_finalize, exp, data, units,
                                                      seeds=range(n_seeds), timing=timing),
                executor=ex)
            if exp.search is None or stage >= exp.search.stages:
                break
            stage += 1
            exp = _next_stage(exp, runs, stage)
    show_results(exp, runs, curves, paths, data.name, plot, as_json=as_json)
    return runs, curves, paths


def _plugins(exp) -> dict[str, dict]:
    """The plug-ins ``exp`` names (import path -> fingerprint), read from its base settings,
    factor levels and named levels (the arms were expanded and checked when it was read)."""
    from dnnbench.registry import PLUGIN_SETTINGS, plugins_of

    named = [s for levels in exp.named_levels.values() for s in levels.values()]
    values = [*(exp.base.get(k) for k in PLUGIN_SETTINGS),
              *(v for k in PLUGIN_SETTINGS if k not in exp.named_levels
                for v in exp.factors.get(k, ())),
              *(s.get(k) for s in named for k in PLUGIN_SETTINGS)]
    return plugins_of(values)


def show_results(exp, runs, curves, paths: dict, dataset: str, plot: bool,
                 as_json: bool = False) -> None:
    """Print the summary (or a search's tables) and the file's claims; with ``plot``, write
    the experiment's figures next to the results (dnnbench.report.figure_kinds). Shared by
    `dnnbench run` and the commands that are presets over a packaged file."""
    from dnnbench.analysis.claims import check_claims
    from dnnbench.analysis.summary import summarize
    from dnnbench.report.figure_kinds import save
    from dnnbench.report.figures import FigureInput
    from dnnbench.report.generic import claims_table, summary_table
    from dnnbench.results.io import read_layers

    layers = read_layers(paths["runs"]) if "layers" in paths else None
    if as_json:
        _print_json(run_json(exp, runs, layers, paths, dataset))
        if plot:
            save(FigureInput(exp, runs, curves, layers, dataset), paths["runs"])
        return
    console = out_console()
    if exp.search is not None:
        from dnnbench.report.search import search_tables

        for table in search_tables(exp, runs, dataset):
            console.print(table)
    else:
        console.print(summary_table(exp, summarize(exp, runs), dataset))
    claims = check_claims(exp, runs, layers) if exp.claims else None
    if claims is not None and len(claims):  # (evaluator claims: `dnnbench claims`)
        console.print(claims_table(claims))
    if plot:
        written = save(FigureInput(exp, runs, curves, layers, dataset), paths["runs"])
        if written:
            typer.echo("Figures: " + ", ".join(str(p) for p in written), err=True)
        else:
            warn("no figure: no factor varies and the results hold nothing to draw")


def run_json(exp, runs, layers, paths: dict, dataset: str) -> dict:
    """The dnnbench-run document (schema_version 1): the experiment and data set, the files
    written, one object per arm (its factor levels, seeds, the summary's numbers: medians,
    means and 95% intervals, the comparison with the reference), and the file's claims (id,
    claim, verdict, effect, low, high, n, effects). Non-finite numbers are null."""
    from dnnbench.analysis.claims import check_claims
    from dnnbench.analysis.summary import summarize

    arms = (summarize(exp, runs).to_dict(orient="records") if exp.search is None
            else runs.to_dict(orient="records"))
    claims = check_claims(exp, runs, layers) if exp.claims else None
    return {"schema": "dnnbench-run", "schema_version": 1, "experiment": exp.name,
            "dataset": dataset, "seeds": int(runs["seed"].nunique()),
            "files": {k: str(v) for k, v in paths.items()},
            "arms" if exp.search is None else "runs": arms,
            "claims": [] if claims is None else claims.to_dict(orient="records")}


def _interleaved(exp, timing) -> bool:
    """Whether the run ends with interleaved step timings (its file's ``timing_rounds``)."""
    return bool(exp.timing_rounds) and timing is True and exp.search is None


def _finalize(exp, data, units, runs, curves, *, seeds=(), timing=True):
    from dnnbench.definition import search
    from dnnbench.run import plan

    runs, curves, extra = plan.finalize(exp, data, runs, curves)
    if exp.search is not None:
        extra |= {"compiled_programs": plan.compiled_programs(units), "units": len(units),
                  "arms": exp.n_arms,
                  "search_refine_rule": search.REFINE_RULE}
    tables = {}
    if _interleaved(exp, timing):
        from dnnbench.run import timing as interleaved

        typer.echo(f"Timing every program in {exp.timing_rounds} interleaved rounds ...",
                   err=True)
        table = interleaved.interleaved_timings(exp, data, seeds, exp.timing_rounds)
        table = table[table["arm"].isin(set(runs["arm"]))]
        runs = interleaved.with_interleaved_step_time(runs, table)
        tables["timing"] = table
        extra |= {"timing_rounds": exp.timing_rounds}
    return runs, curves, extra, tables


def _next_stage(exp, runs, stage: int):
    """``exp`` with the points of ``stage`` drawn around the best of the stage before."""
    from dnnbench import definition
    from dnnbench.analysis import search

    drawn = search.refine(exp.search, runs, stage)
    return definition.with_search(exp, None, exp.source, drawn=drawn)


def list_(
    name: Annotated[str | None, typer.Argument(
        metavar="NAME", show_default=False,
        help="Print this packaged experiment's file instead.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the experiments and the registries' names as JSON.")] = False,
) -> None:
    """List the packaged experiments and every registry (optimizers and their coefficients,
    activations, initializers, schedules, normalizations, data sets, run settings)."""
    from dnnbench import definition

    console = out_console()
    if as_json and name is None:
        _print_json_listing()
        return
    if name is not None:
        try:
            path = definition.find(name)
            definition.load(name)
        except definition.ExperimentError as e:
            usage_error(str(e))
        console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False)
        return
    from rich.table import Table

    from dnnbench import choices, registry
    from dnnbench.definition import figures, protocols
    from dnnbench.models import norms

    t = Table(title="Experiments (dnnbench run NAME)", title_justify="left",
              header_style="bold")
    for c in ("name", "question", "arms", "command"):
        t.add_column(c)
    for exp_name in definition.catalogue():
        exp = definition.load(exp_name)
        t.add_row(exp.name, exp.question, str(exp.n_arms), exp.command)
    console.print(t)
    r = Table(title="Registries (plug-ins: package.module:factory)", title_justify="left",
              header_style="bold")
    r.add_column("registry")
    r.add_column("names")
    opts = "; ".join(f"{n} ({', '.join(f'{k}={v:g}' for k, v in o.defaults.items())})"
                     for n, o in registry.OPTIMIZERS.items())
    for label, names in (("optimizers (coefficients)", opts),
                         ("activations", ", ".join(registry.ACTIVATIONS)),
                         ("initializers", ", ".join(registry.INITIALIZERS)),
                         ("schedules (parameters)", "; ".join(
                             f"{n} ({', '.join(f'{k}={v:g}' for k, v in s.params.items())})"
                             for n, s in registry.SCHEDULES.items())),
                         ("normalizations", norms.listing()),
                         ("gradient clipping (clip; threshold clip_norm)",
                          ", ".join(registry.CLIPPINGS)),
                         ("input scalings (inputs)", ", ".join(choices.INPUTS)),
                         ("data sets", ", ".join(choices.DATASETS)),
                         ("run settings", ", ".join(definition.SETTINGS)),
                         (("figures (figures = [...]; automatic: drawn when the "
                           "results allow)"), "; ".join(
                             f"{k.name}{' (automatic)' if k.auto else ''}"
                             for k in figures.FIGURES.values())),
                         ("protocols (their settings)", "; ".join(
                             f"{p.name} ({', '.join(p.settings) or 'none'})"
                             for p in protocols.PROTOCOLS.values()))):
        r.add_row(label, names)
    profiles = _profiles()
    if profiles:
        r.add_row("check profiles", profiles)
    console.print(r)


def _print_json_listing() -> None:
    """`dnnbench list --json`: the experiments (name, title, question, arms, claims, command)
    and the names of every registry."""
    import json

    from dnnbench import choices, definition, registry
    from dnnbench.definition import figures, protocols

    experiments = []
    for exp_name in definition.catalogue():
        exp = definition.load(exp_name)
        experiments.append({"name": exp.name, "title": exp.title, "question": exp.question,
                            "arms": exp.n_arms, "claims": [c.id for c in exp.claims],
                            "command": exp.command})
    registries = {"optimizers": {n: dict(o.defaults) for n, o in registry.OPTIMIZERS.items()},
                  "activations": list(registry.ACTIVATIONS),
                  "initializers": list(registry.INITIALIZERS),
                  "schedules": {n: dict(sc.params) for n, sc in registry.SCHEDULES.items()},
                  "clippings": list(registry.CLIPPINGS), "inputs": list(choices.INPUTS),
                  "datasets": list(choices.DATASETS), "settings": list(definition.SETTINGS),
                  "figures": list(figures.FIGURES), "protocols": list(protocols.PROTOCOLS)}
    print(json.dumps({"experiments": experiments, "registries": registries}, indent=1))


def _profiles() -> str:
    """The names of the regression profiles of `dnnbench check` (empty when the file is
    unusable), read as written: the gate's statistics (SciPy, pandas) are not imported."""
    import tomllib
    from pathlib import Path

    # check.profiles.default_profiles_path's rule, without importing check/ (SciPy, pandas)
    name = Path("benchmarks") / "regression.toml"
    path = name if name.exists() else Path(__file__).resolve().parents[2] / name
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("profiles")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    return ", ".join(tables) if isinstance(tables, dict) else ""


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("list")(list_)
