"""`dnnbench optimizers`: convergence speed and quality of the nine optimizers, measured."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import (
    check_choice,
    check_positive,
    check_target,
    load_data,
    out_console,
    quick_subset,
    run_experiment,
    usage_error,
    warn,
)


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
                usage_error(f"--lr: {v!r} is not NAME=VALUE (e.g. adam=0.003)")
            check_choice(name, table, "--lr")
            overrides[name] = _float(num.strip(), f"--lr {name}")
        else:
            plain.append(_float(v, "--lr"))
    if len(plain) > 1:
        usage_error("--lr: give one plain value for all optimizers, plus NAME=VALUE overrides")
    for name in overrides:
        if name not in optimizers:
            warn(f"--lr {name}=...: {name} is not among the selected optimizers; ignored")
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
        return tuple(float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n))
    if len(parts) != 1:
        usage_error(f"--tune-grid: {text!r} is neither LO:HI:N nor a list like 1e-4,1e-3")
    values = [_float(p, "--tune-grid") for p in parts[0].split(",") if p]
    if not values:
        usage_error("--tune-grid: give at least one learning rate")
    return tuple(sorted(set(values)))


def optimizers(
    optimizer: Annotated[list[str] | None, typer.Option(
        "--optimizer", help="Optimizer to compare (repeatable; default: all nine of the "
        "registry).")] = None,
    lr: Annotated[list[str] | None, typer.Option(
        "--lr", help="Learning rate: one value for all (0.001), and/or NAME=VALUE overrides "
        "(repeatable, e.g. --lr sgd=0.01).")] = None,
    epochs: Annotated[int, typer.Option(help="Epochs over the training split.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 32,
    seeds: Annotated[int, typer.Option(help="Seeds per arm (vmapped, paired across "
                                       "optimizers).")] = 5,
    eval_every: Annotated[int | None, typer.Option(
        help="Evaluate on the validation split every N steps (default: once per epoch).")] = None,
    target: Annotated[float | None, typer.Option(
        help="Absolute validation-accuracy target in (0, 1] (default: relative, see "
        "--target-fraction).")] = None,
    target_fraction: Annotated[float, typer.Option(
        help="Relative target: this fraction of the best median final validation accuracy "
        "among the arms (used when --target is not given).")] = 0.98,
    tune: Annotated[bool, typer.Option(
        help="Also sweep each optimizer's learning rate (one vectorized program per optimizer) "
        "and report it at its best lr too.")] = False,
    tune_grid: Annotated[str, typer.Option(
        help="Learning rates of --tune: LO:HI:N (N log-spaced) or a list 1e-4,1e-3.")]
    = "1e-4:1e-1:5",
    dataset: Annotated[str | None, typer.Option(
        help="Data set (default: fashion-mnist, falling back to digits offline).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding mnist/ and fashion-mnist/.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the result files.")] = Path("out"),
    quick: Annotated[bool, typer.Option(
        help="Smoke run of seconds: data subset, 2 seeds, 2 epochs, 2 evaluations per epoch.")]
    = False,
    fresh: Annotated[bool, typer.Option(help="Recompute everything instead of resuming.")] = False,
    force: Annotated[bool, typer.Option(help="Replace results in --out made with other "
                                        "settings.")] = False,
    plot: Annotated[bool, typer.Option(help="Also write figures next to the CSVs.")] = False,
) -> None:
    """Steps to a validation-accuracy target and final accuracy of each optimizer, with stars.

    The textbook's optimizer comparison, measured: 3x100 ReLU MLP, batch 32, 10 epochs, lr 0.001.

    Several paired seeds per optimizer; measured speed and quality stars beside the textbook's.
    """
    import importlib.util

    from dnnbench.experiments import optimizers as exp
    from dnnbench.registry import OPTIMIZERS

    names = tuple(dict.fromkeys(optimizer)) if optimizer else tuple(OPTIMIZERS)
    for name in names:
        check_choice(name, OPTIMIZERS, "--optimizer")
    plain_lr, overrides = parse_lrs(lr or [], names, OPTIMIZERS)
    check_positive(epochs, "--epochs", integer=True)
    check_positive(batch_size, "--batch-size", integer=True)
    check_positive(seeds, "--seeds", integer=True)
    if eval_every is not None:
        check_positive(eval_every, "--eval-every", integer=True)
    if target is not None:
        check_target(target)
    check_target(target_fraction, "--target-fraction")
    grid = parse_grid(tune_grid) if tune else exp.DEFAULT_TUNE_GRID
    if plot and importlib.util.find_spec("dnnbench.report.figures") is None:
        warn("--plot: figures are not available in this version (dnnbench.report.figures is "
             "missing); the run continues without figures")
        plot = False

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)
        seeds, epochs = min(seeds, 2), min(epochs, 2)
    n_train = len(data.y_train)
    if batch_size > n_train:
        usage_error(f"--batch-size {batch_size} is larger than the training split "
                    f"({n_train} examples of {data.name})")
    cfg = exp.OptimizersConfig(
        optimizers=names, learning_rate=plain_lr if plain_lr is not None else 0.001,
        lr_overrides=overrides, batch_size=batch_size, epochs=epochs, seeds=tuple(range(seeds)),
        target=target, target_fraction=target_fraction, tune=tune, tune_grid=grid)
    if quick and eval_every is None:  # two evaluations per epoch
        cfg = dataclasses.replace(cfg, eval_every=max(1, cfg.steps_per_epoch(n_train) // 2))
    elif eval_every is not None:
        cfg = dataclasses.replace(cfg, eval_every=eval_every)
    total = epochs * cfg.steps_per_epoch(n_train)
    if cfg.eval_every_steps(n_train) > total:
        usage_error(f"--eval-every ({eval_every}) exceeds the {total} training steps of "
                    f"{epochs} epoch(s)")
    if eval_every is not None and cfg.max_steps(n_train) != total:
        warn(f"--eval-every {cfg.eval_every} does not divide the {total} steps of {epochs} "
             f"epoch(s); training stops at the last evaluation, step {cfg.max_steps(n_train)}")

    units = exp.build_units(cfg, data)
    runs, _curves, paths = run_experiment(
        exp.EXPERIMENT, units, data, out, fresh=fresh, force=force,
        meta={"config": cfg.__dict__, "quick": quick},
        finalize=lambda r, c: exp.finalize(cfg, r, c))
    from dnnbench.report.optimizers import optimizers_table

    target_value = float(runs["target"].iloc[0])
    out_console().print(optimizers_table(
        exp.summarize(runs), data.name, target_value, str(runs["target_kind"].iloc[0]),
        epochs=epochs, batch_size=batch_size, target_fraction=target_fraction))
    if plot:
        from dnnbench.report import figures

        figures.plot_results(paths["runs"])


def register(app: typer.Typer) -> None:
    app.command("optimizers")(optimizers)
