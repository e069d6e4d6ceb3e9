"""`dnnbench depth-sweep`: batch normalization vs none across network depth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import (
    check_choice,
    check_positive,
    check_target,
    load_data,
    out_console,
    parse_int_list,
    quick_subset,
    run_experiment,
    usage_error,
)

BN_MODES = {"both": (False, True), "off": (False,), "on": (True,)}


def depth_sweep(
    bn: Annotated[bool, typer.Option("--bn", help="Run both arms, with and without BN, paired "
                                     "by seed (the default).")] = False,
    no_bn: Annotated[bool, typer.Option("--no-bn", help="Run only the arm without BN.")] = False,
    only_bn: Annotated[bool, typer.Option("--only-bn", help="Run only the arm with BN.")] = False,
    depths: Annotated[str, typer.Option(help="Hidden-layer counts: a list (1,3,5,7) or a range "
                                        "(1-7).")] = "1-7",
    widths: Annotated[str, typer.Option(help="Comma-separated hidden widths; depth d uses the "
                                        "first d.")] = "500,400,300,200,100,50,25",
    width: Annotated[int | None, typer.Option(help="All hidden layers this wide (allows depths "
                                              "beyond the widths list).")] = None,
    activation: Annotated[list[str] | None, typer.Option(
        help="Activation (repeatable, e.g. --activation relu --activation sigmoid).")] = None,
    init: Annotated[str | None, typer.Option(help="Initializer; default he-normal for the ReLU "
                                             "family, glorot-uniform for sigmoid/tanh.")] = None,
    optimizer: Annotated[str, typer.Option(help="Optimizer name.")] = "adam",
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 0.01,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 500,
    bn_momentum: Annotated[float, typer.Option(help="BN running-average momentum.")] = 0.9,
    bn_position: Annotated[str, typer.Option(help="BN before or after the activation.")] = "before",
    bn_logits: Annotated[bool, typer.Option(help="Also normalize the logits in the BN arm (as "
                                            "the original did).")] = True,
    target: Annotated[float, typer.Option(help="Test accuracy to reach, in (0, 1].")] = 0.90,
    eval_every: Annotated[int, typer.Option(help="Evaluate on the test split every N steps.")] = 10,
    max_steps: Annotated[int, typer.Option(help="Step budget per run.")] = 3000,
    seeds: Annotated[int, typer.Option(help="Seeds per arm (vmapped, paired across arms).")] = 5,
    dataset: Annotated[str | None, typer.Option(help="Data set (default: mnist, falling back "
                                                "to digits offline).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder holding mnist/ and "
                                                  "fashion-mnist/.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the result files.")] = Path("out"),
    quick: Annotated[bool, typer.Option(help="Smoke run of seconds: data subset, 2 seeds, "
                                        "depths 1-2, 100 steps.")] = False,
    fresh: Annotated[bool, typer.Option(help="Recompute everything instead of resuming.")] = False,
    force: Annotated[bool, typer.Option(help="Replace results in --out made with other "
                                        "settings.")] = False,
    plot: Annotated[bool, typer.Option(help="Also write figures next to the CSVs.")] = False,
) -> None:
    """Steps (and seconds) to a test-accuracy target vs depth, with and without batch norm.

    Reproduces the classic blog experiment: tapered ReLU MLPs on MNIST, Adam 0.01, batch 500,
    BN before the activation, steps needed to reach 90% test accuracy, several paired seeds.
    """
    from dnnbench.experiments import depth_sweep as exp
    from dnnbench.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS

    if sum([bn, no_bn, only_bn]) > 1:
        usage_error("choose at most one of --bn, --no-bn, --only-bn")
    bn_arms = BN_MODES["off" if no_bn else "on" if only_bn else "both"]
    depth_list = parse_int_list(depths, "--depths")
    width_list = parse_int_list(widths, "--widths")
    activations = tuple(activation or ["relu"])
    for a in activations:
        check_choice(a, ACTIVATIONS, "--activation")
    if init is not None:
        check_choice(init, INITIALIZERS, "--init")
    check_choice(optimizer, OPTIMIZERS, "--optimizer")
    check_choice(bn_position, {"before": 0, "after": 1}, "--bn-position")
    if width is not None:
        check_positive(width, "--width", integer=True)
    elif max(depth_list) > len(width_list):
        usage_error(f"--depths: depth {max(depth_list)} exceeds the {len(width_list)} widths "
                    "given; use --width N for deeper nets")
    check_positive(lr, "--lr")
    check_positive(batch_size, "--batch-size", integer=True)
    check_positive(eval_every, "--eval-every", integer=True)
    check_positive(max_steps, "--max-steps", integer=True)
    check_positive(seeds, "--seeds", integer=True)
    check_target(target)
    if not 0 <= bn_momentum < 1:
        usage_error(f"--bn-momentum must be in [0, 1), got {bn_momentum}")
    if eval_every > max_steps:
        usage_error(f"--eval-every ({eval_every}) must not exceed --max-steps ({max_steps})")

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)
        depth_list, seeds, max_steps = depth_list[:2], min(seeds, 2), min(max_steps, 100)
    if batch_size > len(data.y_train):
        usage_error(f"--batch-size {batch_size} is larger than the training split "
                    f"({len(data.y_train)} examples of {data.name})")

    cfg = exp.DepthSweepConfig(
        depths=depth_list, widths=width_list, width=width, activations=activations, init=init,
        bn_arms=bn_arms, bn_momentum=bn_momentum, bn_position=bn_position, bn_logits=bn_logits,
        optimizer=optimizer, learning_rate=lr, batch_size=batch_size, target=target,
        eval_every=eval_every, max_steps=max_steps, seeds=tuple(range(seeds)))
    units = exp.build_units(cfg, data)
    runs, _curves, paths = run_experiment(exp.EXPERIMENT, units, data, out, fresh=fresh,
                                          force=force,
                                          meta={"config": cfg.__dict__, "quick": quick})
    from dnnbench.report.depth_sweep import depth_sweep_table

    out_console().print(depth_sweep_table(exp.summarize(runs), data.name, target))
    if plot:
        from dnnbench.report import figures

        figures.plot_results(paths["runs"])


def register(app: typer.Typer) -> None:
    app.command("depth-sweep")(depth_sweep)
