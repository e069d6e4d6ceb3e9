"""`dnnbench depth-sweep`: batch normalization vs none across network depth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.choices import ACTIVATIONS, BN_POSITIONS, INITIALIZERS, OPTIMIZERS, listed
from dnnbench.cli import executor as executors
from dnnbench.cli import options
from dnnbench.cli.common import (
    check_choice,
    check_positive,
    check_target,
    check_unique,
    load_data,
    parse_int_list,
    quick_subset,
    usage_error,
    within_limits,
)
from dnnbench.cli.options import MODEL, TRAINING, pick
from dnnbench.limits import LIMITS, check_memory, run_bytes

BN_MODES = {"both": (False, True), "off": (False,), "on": (True,)}
Seeds = options.seeds(5, 2, "vmapped, paired across arms")
Quick = options.quick("data subset, 2 seeds, depths 1-2, 100 steps")
Dataset = options.dataset("mnist")


def depth_sweep(
    bn: Annotated[bool, typer.Option(
        "--bn", rich_help_panel=MODEL, help="Run both arms, with and without BN, paired by seed "
        "(the default).")] = False,
    no_bn: Annotated[bool, typer.Option("--no-bn", rich_help_panel=MODEL,
                                        help="Run only the arm without BN.")] = False,
    only_bn: Annotated[bool, typer.Option("--only-bn", rich_help_panel=MODEL,
                                          help="Run only the arm with BN.")] = False,
    depths: Annotated[str | None, typer.Option(
        metavar="LIST", rich_help_panel=MODEL, show_default=False,
        help=f"Hidden-layer counts: a list (1,3,5,7) or a range (1-7), each at most "
             f"{LIMITS['depth'][0]:,} (default: 1-7; 1-2 with --quick).")] = None,
    widths: Annotated[str, typer.Option(
        metavar="LIST", rich_help_panel=MODEL,
        help="Comma-separated hidden widths; depth d uses the first d.")]
    = "500,400,300,200,100,50,25",
    width: Annotated[int | None, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help="All hidden layers this wide (allows depths beyond the widths list).")] = None,
    activation: Annotated[list[str] | None, typer.Option(
        metavar="NAME", rich_help_panel=MODEL, show_default=False,
        help=f"Activation, repeatable: {listed(ACTIVATIONS)} (default: relu).")] = None,
    init: Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=MODEL, show_default=False,
        help=f"Initializer: {listed(INITIALIZERS)} (default: he-normal for the ReLU family, "
             "lecun-normal for selu, glorot-uniform for sigmoid and tanh).")] = None,
    bn_momentum: Annotated[float, typer.Option(
        rich_help_panel=MODEL, help="BN running-average momentum, in [0, 1).")] = 0.9,
    bn_position: Annotated[str, typer.Option(
        metavar="NAME", rich_help_panel=MODEL,
        help=f"BN {listed(BN_POSITIONS)} the activation.")] = "before",
    bn_logits: Annotated[bool, typer.Option(
        rich_help_panel=MODEL, help="Also normalize the logits in the BN arm (as the original "
        "did).")] = True,
    optimizer: Annotated[str, typer.Option(
        metavar="NAME", rich_help_panel=TRAINING,
        help=f"Optimizer: {listed(OPTIMIZERS)}.")] = "adam",
    lr: Annotated[float, typer.Option("--lr", rich_help_panel=TRAINING,
                                      help="Learning rate.")] = 0.01,
    batch_size: Annotated[int, typer.Option(rich_help_panel=TRAINING,
                                            help="Mini-batch size.")] = 500,
    target: Annotated[float, typer.Option(rich_help_panel=TRAINING,
                                          help="Test accuracy to reach, in (0, 1].")] = 0.90,
    eval_every: Annotated[int, typer.Option(
        rich_help_panel=TRAINING, help="Evaluate on the test split every N steps.")] = 10,
    max_steps: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Step budget per run (default: 3000; 100 with --quick).")] = None,
    seeds: Seeds = None,
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
    """Steps (and seconds) to a test-accuracy target vs depth, with and without batch norm.

    Reproduces the classic blog experiment: tapered ReLU MLPs on MNIST, Adam 0.01, batch 500,
    BN before the activation, steps needed to reach 90% test accuracy, several paired seeds.
    """
    from dnnbench.definition import depth_sweep as exp

    if sum([bn, no_bn, only_bn]) > 1:
        usage_error("choose at most one of --bn, --no-bn, --only-bn")
    bn_arms = BN_MODES["off" if no_bn else "on" if only_bn else "both"]
    depth_list = parse_int_list(pick(depths, "1-7", "1-2", quick), "--depths", limit="depth")
    width_list = parse_int_list(widths, "--widths", limit="width", unique=False)
    max_steps = pick(max_steps, 3000, 100, quick)
    seeds = pick(seeds, 5, 2, quick)
    activations = tuple(activation or ["relu"])
    check_unique(activations, "--activation")
    for a in activations:
        check_choice(a, ACTIVATIONS, "--activation")
    if init is not None:
        check_choice(init, INITIALIZERS, "--init")
    check_choice(optimizer, OPTIMIZERS, "--optimizer")
    check_choice(bn_position, BN_POSITIONS, "--bn-position")
    if width is not None:
        check_positive(width, "--width", integer=True, limit="width")
    elif max(depth_list) > len(width_list):
        usage_error(f"--depths: depth {max(depth_list)} exceeds the {len(width_list)} widths "
                    "given; use --width N for deeper nets")
    check_positive(lr, "--lr")
    check_positive(batch_size, "--batch-size", integer=True)
    check_positive(eval_every, "--eval-every", integer=True)
    check_positive(max_steps, "--max-steps", integer=True, limit="steps")
    check_positive(seeds, "--seeds", integer=True, limit="seeds")
    check_target(target)
    if not 0 <= bn_momentum < 1:
        usage_error(f"--bn-momentum must be in [0, 1), got {bn_momentum}")
    if eval_every > max_steps:
        usage_error(f"--eval-every ({eval_every}) must not exceed --max-steps ({max_steps})")

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)
    if batch_size > len(data.y_train):
        usage_error(f"--batch-size {batch_size} is larger than the training split "
                    f"({len(data.y_train)} examples of {data.name})")
    deepest = max(depth_list)
    hidden = (width,) * deepest if width is not None else width_list[:deepest]
    with within_limits():
        check_memory(run_bytes(lanes=seeds, layer_sizes=(data.n_features, *hidden, data.n_classes),
                               batch_size=batch_size, steps=max_steps,
                               n_evals=max_steps // eval_every),
                     f"depth {deepest} with {seeds} seeds")

    cfg = exp.DepthSweepConfig(
        depths=depth_list, widths=width_list, width=width, activations=activations, init=init,
        bn_arms=bn_arms, bn_momentum=bn_momentum, bn_position=bn_position, bn_logits=bn_logits,
        optimizer=optimizer, learning_rate=lr, batch_size=batch_size, target=target,
        eval_every=eval_every, max_steps=max_steps, seeds=tuple(range(seeds)))
    from dnnbench.cli.run import execute

    execute(exp.experiment(cfg), data, seeds, out, fresh=fresh, force=force, plot=plot,
            meta={"experiment_file": exp.PACKAGED, "preset": "depth-sweep", "quick": quick},
            worker_data=executors.worker_data(data, data_dir, quick)
            if executor != "local" else None, executor=executor, scheduler=scheduler,
            workers=workers, slurm_param=slurm_param)


def register(app: typer.Typer) -> None:
    app.command("depth-sweep")(depth_sweep)
