"""`dnnbench optimizers`: convergence speed and quality of the nine optimizers, measured."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.choices import OPTIMIZERS as OPTIMIZER_NAMES
from dnnbench.choices import listed
from dnnbench.cli import executor as executors
from dnnbench.cli import options
from dnnbench.cli.common import (
    check_choice,
    check_positive,
    check_target,
    check_unique,
    load_data,
    quick_subset,
    renamed,
    usage_error,
    warn,
    within_limits,
)
from dnnbench.cli.options import TRAINING, pick
from dnnbench.definition import ExperimentError
from dnnbench.definition.experiment import packaged_doc
from dnnbench.limits import LIMITS, check, check_memory, run_bytes

# the defaults named in the help: the packaged file's (read as written: no JAX at help time)
_FILE = packaged_doc("optimizer-comparison")
_BASE, _QUICK = _FILE["base"], _FILE["quick"]
Seeds = options.seeds(_FILE["seeds"], _QUICK["seeds"], "vmapped, paired across optimizers")
Quick = options.quick("data subset, 2 seeds, 2 epochs, 2 evaluations per epoch")
Dataset = options.dataset("fashion-mnist")


def _float(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        usage_error(f"{option}: {text!r} is not a number")
    check_positive(value, option)
    return value


def parse_lrs(values: list[str], optimizers, table) -> tuple[float | None, tuple]:
    """``--lr`` values -> (one lr for all or None, ((name, lr), ...) overrides)."""
    plain: list[float] = []
    overrides: dict[str, float] = {}
    for v in values:
        if "=" in v:
            name, _, num = v.partition("=")
            name = name.strip()
            if not name or not num.strip():
                usage_error(f"--learning-rate: {v!r} is not NAME=VALUE (e.g. adam=0.003)")
            check_choice(name, table, "--learning-rate")
            if name in overrides:
                usage_error(f"--learning-rate: {name}=... is given more than once")
            overrides[name] = _float(num.strip(), f"--learning-rate {name}")
        else:
            plain.append(_float(v, "--learning-rate"))
    if len(plain) > 1:
        usage_error("--learning-rate: give one plain value for all optimizers, plus NAME=VALUE overrides")
    for name in overrides:
        if name not in optimizers:
            warn(f"--learning-rate {name}=...: {name} is not among the selected optimizers; ignored")
    return (plain[0] if plain else None), tuple(sorted(overrides.items()))


def parse_grid(text: str) -> tuple[float, ...]:
    """'1e-4,1e-3,1e-2' or 'LO:HI:N' (N log-spaced values from LO to HI) -> learning rates."""
    import numpy as np

    parts = text.replace(" ", "").split(":")
    if len(parts) == 3:
        lo, hi = (_float(p, "--tune-grid") for p in parts[:2])
        try:
            n = int(parts[2])
        except ValueError:
            usage_error(f"--tune-grid: {parts[2]!r} is not a count (LO:HI:N, e.g. 1e-4:1e-1:5)")
        if n < 1 or (n > 1 and lo >= hi):
            usage_error(f"--tune-grid: need LO < HI and N >= 1, got {text!r}")
        with within_limits():
            check("grid", n, "--tune-grid N")
        return tuple(float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n))
    if len(parts) != 1:
        usage_error(f"--tune-grid: {text!r} is neither LO:HI:N nor a list like 1e-4,1e-3")
    items = parts[0].split(",")
    if "" in items:
        usage_error(f"--tune-grid: empty item in {text!r} (give a list like 1e-4,1e-3)")
    with within_limits():
        check("grid", len(items), "--tune-grid (values)")
    values = [_float(p, "--tune-grid") for p in items]
    check_unique(values, "--tune-grid")
    return tuple(sorted(values))


def optimizers(
    optimizer: Annotated[list[str] | None, typer.Option(
        "--optimizer", metavar="NAME", rich_help_panel=TRAINING, show_default=False,
        help=f"Optimizer to compare, repeatable: {listed(OPTIMIZER_NAMES)} (default: all "
             "nine).")] = None,
    learning_rate: Annotated[list[str] | None, typer.Option(
        "--learning-rate", metavar="LR|NAME=LR", rich_help_panel=TRAINING, show_default=False,
        help=f"Learning rate: one value for all (default {_BASE['learning_rate']:g}, the "
             "optimizer-comparison file's), and/or NAME=VALUE overrides (repeatable, e.g. "
             "--learning-rate sgd=0.01).")] = None,
    lr: Annotated[list[str] | None, typer.Option(
        "--lr", hidden=True, help="Old spelling of --learning-rate.")] = None,
    epochs: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Epochs over the training split (default: {_BASE['epochs']}; "
             f"{_QUICK['set']['epochs']} with --quick, the optimizer-comparison file's).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Mini-batch size (default: {_BASE['batch_size']}, the optimizer-comparison "
             "file's).")] = None,
    seeds: Seeds = None,
    eval_every: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Evaluate on the validation split every N steps (default: the "
             "optimizer-comparison file's, at most once per epoch; twice per epoch with "
             "--quick).")] = None,
    target: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Absolute validation-accuracy target in (0, 1] (default: relative, see "
             "--target-fraction).")] = None,
    target_fraction: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Relative target: this fraction of the best median final validation accuracy "
             "among the arms (used when --target is not given; default: "
             f"{_FILE['relative_target']:g}, the optimizer-comparison file's).")] = None,
    tune: Annotated[bool, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Also sweep each optimizer's learning rate (one vectorized program per optimizer) "
             "and report it at its best lr too.")] = False,
    tune_grid: Annotated[str | None, typer.Option(
        metavar="GRID", rich_help_panel=TRAINING, show_default=False,
        help=f"Learning rates of --tune: LO:HI:N (N log-spaced) or a list 1e-4,1e-3; at most "
             f"{LIMITS['grid'][0]:,} (default: the optimizer-comparison file's [tune] grid, "
             f"{len(_FILE['tune']['learning_rate'])} log-spaced rates from "
             f"{min(_FILE['tune']['learning_rate']):g} to "
             f"{max(_FILE['tune']['learning_rate']):g}).")] = None,
    quick: Quick = False,
    dataset: Dataset = None,
    data_dir: options.DataDir = None,
    out: options.Out = Path("out"),
    fresh: options.Fresh = False,
    force: options.Force = False,
    plot: options.Plot = False,
    executor: executors.Executor = "local",
    scheduler: executors.Scheduler = None,
    workers: executors.Workers = None,
    slurm_param: executors.SlurmParam = None,
) -> None:
    """Steps to a validation-accuracy target and final accuracy of each optimizer.

    The textbook's optimizer comparison, measured: 3x100 ReLU MLP, batch 32, 10 epochs, lr 0.001.

    A preset over the packaged experiment file optimizer-comparison (dnnbench list
    optimizer-comparison): several paired seeds per optimizer, compared with SGD.
    """
    import importlib.util

    from dnnbench.definition import optimizers as exp
    from dnnbench.registry import OPTIMIZERS
    from dnnbench.report.console import plural

    names = tuple(optimizer) if optimizer else tuple(OPTIMIZERS)
    check_unique(names, "--optimizer")
    for name in names:
        check_choice(name, OPTIMIZERS, "--optimizer")
    learning_rate = renamed(learning_rate, lr, "--learning-rate", "--lr")
    plain_lr, overrides = parse_lrs(learning_rate or [], names, OPTIMIZERS)
    epochs = pick(epochs, _BASE["epochs"], _QUICK["set"]["epochs"], quick)
    seeds = pick(seeds, _FILE["seeds"], _QUICK["seeds"], quick)
    batch_size = _BASE["batch_size"] if batch_size is None else batch_size
    check_positive(epochs, "--epochs", integer=True, limit="steps")
    check_positive(batch_size, "--batch-size", integer=True)
    check_positive(seeds, "--seeds", integer=True, limit="seeds")
    if eval_every is not None:
        check_positive(eval_every, "--eval-every", integer=True)
    if target is not None:
        check_target(target)
    if target_fraction is not None:
        check_target(target_fraction, "--target-fraction")
    grid = parse_grid(tune_grid) if tune_grid is not None else None
    n_grid = len(grid or _FILE["tune"]["learning_rate"])
    if plot and importlib.util.find_spec("dnnbench.report.figures") is None:
        warn("--plot: figures are not available in this version (dnnbench.report.figures is "
             "missing); the run continues without figures")
        plot = False

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)
    n_train = len(data.y_train)
    if batch_size > n_train:
        usage_error(f"--batch-size {batch_size} is larger than the training split "
                    f"({n_train} examples of {data.name})")
    per_epoch = n_train // batch_size
    if quick and eval_every is None:  # two evaluations per epoch
        eval_every = max(1, per_epoch // 2)
    elif eval_every is None and isinstance(_BASE["eval_every"], int):
        eval_every = min(_BASE["eval_every"], per_epoch)  # the file's, at most an epoch
    every = eval_every or per_epoch
    total = epochs * per_epoch
    with within_limits():
        check("steps", total, f"--epochs {epochs:,} x {per_epoch:,} steps per epoch")
        check_memory(run_bytes(lanes=seeds * (n_grid + 1 if tune else 1),
                               layer_sizes=(data.n_features, *_BASE["widths"], data.n_classes),
                               batch_size=batch_size, steps=total, n_evals=total // every),
                     f"{epochs:,} epochs of {seeds} seeds" + (f" x {n_grid} lrs" if tune else ""))
    if every > total:
        usage_error(f"--eval-every ({eval_every}) exceeds the {total} training steps of "
                    f"{plural(epochs, 'epoch')}")
    if eval_every is not None and total // every * every != total:
        warn(f"--eval-every {eval_every} does not divide the {total} steps of "
             f"{plural(epochs, 'epoch')}; training stops at the last evaluation, step "
             f"{total // every * every}")
    try:
        experiment = exp.experiment(
            names, learning_rate=plain_lr, lr_overrides=dict(overrides), epochs=epochs,
            batch_size=batch_size, eval_every=eval_every, seeds=seeds, target=target,
            target_fraction=target_fraction, tune=tune, tune_grid=grid)
    except ExperimentError as e:
        usage_error(str(e))
    from dnnbench.cli.run import execute

    execute(experiment, data, seeds, out, fresh=fresh, force=force, plot=plot,
            meta={"experiment_file": exp.FILE, "preset": "optimizers", "quick": quick},
            worker_data=executors.worker_data(data, data_dir, quick)
            if executor != "local" else None, executor=executor, scheduler=scheduler,
            workers=workers, slurm_param=slurm_param)


def register(app: typer.Typer) -> None:
    app.command("optimizers")(optimizers)
