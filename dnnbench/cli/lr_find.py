"""`dnnbench lr-find NAME_OR_FILE`: the learning-rate range test of an experiment's arm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli import options
from dnnbench.cli.common import (
    check_positive,
    file_data,
    file_seeds,
    out_console,
    run_experiment,
    usage_error,
    warn,
)
from dnnbench.cli.options import TRAINING


def lr_find(
    experiment: Annotated[str, typer.Argument(
        metavar="NAME_OR_FILE", show_default=False,
        help="A packaged experiment (see `dnnbench list`) or an experiment file (.toml): its "
             "reference arm (else each factor's first level) is the model and data tested.")],
    min_lr: Annotated[float, typer.Option(rich_help_panel=TRAINING,
                                          help="Learning rate of the first step.")] = 1e-5,
    max_lr: Annotated[float, typer.Option(rich_help_panel=TRAINING,
                                          help="Learning rate of the last step.")] = 10.0,
    steps: Annotated[int, typer.Option(rich_help_panel=TRAINING,
                                       help="Steps of the exponential ramp.")] = 300,
    seeds: options.FileSeeds = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", rich_help_panel=TRAINING, show_default=False,
        help="Override a setting of the arm (repeatable), e.g. --set optimizer=adam.")] = None,
    quick: options.FileQuick = False,
    dataset: options.FileDataset = None,
    data_dir: options.DataDir = None,
    out: options.Out = Path("out"),
    fresh: options.Fresh = False,
    force: options.Force = False,
    plot: options.Plot = False,
) -> None:
    """The learning-rate range test: the learning rate rises exponentially from --min-lr to
    --max-lr over --steps steps (every seed at once), the loss of every step is recorded, and
    a learning rate is suggested: ten times below the point where the smoothed loss starts to
    climb (the rule is printed and recorded). Writes <out>/lr-find-<name>-<dataset>-runs.csv,
    -curves.csv (seed, step, learning_rate, loss), -meta.json, and with --plot the loss
    against the learning rate. Example: dnnbench lr-find schedules --seeds 5 --plot
    """
    from dnnbench import definition
    from dnnbench.run import lr_find as lrf
    from dnnbench.run.units import Unit
    check_positive(min_lr, "--min-lr")
    check_positive(max_lr, "--max-lr")
    if max_lr <= min_lr:
        usage_error(f"--max-lr ({max_lr:g}) must be above --min-lr ({min_lr:g})")
    if steps < 10:
        usage_error(f"--steps must be at least 10, got {steps}")
    check_positive(steps, "--steps", integer=True)
    try:
        exp = definition.load(experiment)
        sets = dict(definition.parse_assignment(s) for s in (set_ or []))
        if any(isinstance(v, list) and k != "widths" for k, v in sets.items()):
            raise definition.ExperimentError("--set: lr-find tests one arm; give one value per key")
        overrides = {k: definition.check_setting(k, v, "--set") for k, v in sets.items()}
        settings = lrf.arm_settings(exp, overrides)
    except definition.ExperimentError as e:
        usage_error(str(e))
    n_seeds = file_seeds(exp, seeds, quick)
    data = file_data(exp, dataset, data_dir, quick)
    name = f"lr-find-{exp.name}"
    try:
        spec = lrf.range_spec(settings, len(data.y_train), min_lr=min_lr, max_lr=max_lr,
                              steps=steps, where=f"{exp.source} (lr-find)")
    except ValueError as e:  # definition.ExperimentError, or a plug-in that cannot be had
        usage_error(str(e))
    seed_list = tuple(range(n_seeds))
    unit = Unit(f"{name} ({n_seeds} seeds x {steps} steps)", ("lr-find", spec.hash, seed_list),
                lambda: lrf.train(spec, data, seed_list))
    meta = {"experiment_file": definition.recorded_source(exp), "config": {
        "arm": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "min_lr": min_lr, "max_lr": max_lr, "steps": steps, "seeds": n_seeds}, "quick": quick,
        "spec_hash": spec.hash}
    try:
        runs, curves, paths = run_experiment(
            name, [unit], data, out, fresh=fresh, force=force, meta=meta,
            finalize=lambda r, c: lrf.finalize(r, c, data.name))
    except ValueError as e:  # the loss is not finite from the start
        usage_error(str(e))
    s = lrf.overall(curves)
    console = out_console()
    from rich.table import Table

    t = Table(title=f"{name} on {data.name}: {n_seeds} seeds, learning rate {min_lr:g} -> "
                    f"{max_lr:g} over {steps} steps", title_justify="left", header_style="bold")
    for c in ("seed", "loss starts to climb at", "suggested", "steps done", "diverged"):
        t.add_column(c, justify="right")
    for _, r in runs.iterrows():
        t.add_row(str(r["seed"]), f"{r['turning_lr']:.3g}", f"{r['suggested_lr']:.3g}",
                  str(r["steps_done"]), "yes" if r["diverged"] else "no")
    console.print(t)
    console.print(f"Tested arm: {lrf.arm_words(settings)} (the reference arm of {exp.name})",
                  highlight=False)
    console.print(f"Suggested learning rate: {s.suggested_lr:.3g} (all seeds; the loss starts "
                  f"to climb at {s.turning_lr:.3g})", highlight=False)
    console.print(f"Rule: {lrf.RULE}.", highlight=False)
    if not s.climbed:
        warn(f"the smoothed loss did not climb before --max-lr {max_lr:g}: the suggestion is a "
             "lower bound; raise --max-lr")
    if plot:
        from dnnbench.report.lr_find import plot_lr_find

        written = plot_lr_find(curves, paths["runs"], f"Learning-rate range test: {exp.name} "
                                                      f"on {data.name}")
        typer.echo("Figures: " + ", ".join(str(p) for p in written), err=True)


def register(app: typer.Typer) -> None:
    app.command("lr-find")(lr_find)
