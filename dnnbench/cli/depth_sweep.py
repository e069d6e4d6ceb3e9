"""`dnnbench depth-sweep`: batch normalization vs none across network depth (a preset over the
packaged bn-depth file: its options are overrides, the defaults are the file's)."""

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
    renamed,
    usage_error,
    within_limits,
)
from dnnbench.cli.options import MODEL, TRAINING
from dnnbench.definition.experiment import packaged_doc
from dnnbench.limits import LIMITS, check_memory, run_bytes

BN_MODES = {"both": (False, True), "off": (False,), "on": (True,)}
# the defaults named in the help: the packaged file's (read as written: no JAX at help time)
_FILE = packaged_doc("bn-depth")
_BASE, _QUICK = _FILE["base"], _FILE["quick"]
_DEPTHS = _FILE["factors"]["depth"]


def _default(key: str) -> str:
    return options.file_default(_FILE, key)


Seeds = options.seeds(_FILE["seeds"], _QUICK["seeds"], "vmapped, paired across arms")
Quick = options.quick("the bn-depth file's [quick]: data subset, 2 seeds, depths 1-2, 100 "
                      "steps")
Dataset = options.dataset(_FILE["dataset"])


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
             f"{LIMITS['depth'][0]:,} (default: {min(_DEPTHS)}-{max(_DEPTHS)}; 1-2 with "
             "--quick, the bn-depth file's).")] = None,
    widths: Annotated[str | None, typer.Option(
        metavar="LIST", rich_help_panel=MODEL, show_default=False,
        help="Comma-separated hidden widths; depth d uses the first d (default: "
             f"{','.join(map(str, _BASE['widths']))}, the bn-depth file's).")] = None,
    width: Annotated[int | None, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help="All hidden layers this wide (allows depths beyond the widths list).")] = None,
    activation: Annotated[list[str] | None, typer.Option(
        metavar="NAME", rich_help_panel=MODEL, show_default=False,
        help=f"Activation, repeatable: {listed(ACTIVATIONS)} (default: "
             f"{_BASE['activation']}, the bn-depth file's).")] = None,
    init: Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=MODEL, show_default=False,
        help=f"Initializer: {listed(INITIALIZERS)} (default: he-normal for the ReLU family, "
             "lecun-normal for selu, glorot-uniform for sigmoid and tanh).")] = None,
    bn_momentum: Annotated[float | None, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help=f"BN running-average momentum, in [0, 1) ({_default('bn_momentum')}).")] = None,
    norm_position: Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=MODEL, show_default=False,
        help=f"BN {listed(BN_POSITIONS)} the activation (default: {_BASE['norm_position']}, "
             "the bn-depth file's).")] = None,
    bn_position: Annotated[str | None, typer.Option(
        "--bn-position", hidden=True, help="Old spelling of --norm-position.")] = None,
    bn_logits: Annotated[bool | None, typer.Option(
        "--bn-logits/--no-bn-logits", rich_help_panel=MODEL, show_default=False,
        help="Also normalize the logits in the BN arm (as the original did; default: the "
             "bn-depth file's, on).")] = None,
    optimizer: Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=TRAINING, show_default=False,
        help=f"Optimizer: {listed(OPTIMIZERS)} (default: {_BASE['optimizer']}, the bn-depth "
             "file's).")] = None,
    learning_rate: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Learning rate ({_default('learning_rate')}).")] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", hidden=True, help="Old spelling of --learning-rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Mini-batch size ({_default('batch_size')}).")] = None,
    target: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Validation accuracy to reach, in (0, 1] ({_default('target')}).")] = None,
    eval_every: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Evaluate on the validation split every N steps ({_default('eval_every')}).")] = None,
    max_steps: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Step budget per run ({_default('max_steps')}).")] = None,
    timing_rounds: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False, min=0, max=50,
        help="Rounds of interleaved step timings after training, for the step-time claims "
             f"(default: {_FILE.get('timing_rounds', 0)}, the bn-depth file's; 0: none, "
             "each arm's step time then comes from one timing).")] = None,
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
    BN before the activation, steps needed to reach 90% validation accuracy, several paired
    seeds (the test split evaluated once at the end).
    """
    from dnnbench.definition import depth_sweep as exp

    norm_position = renamed(norm_position, bn_position, "--norm-position", "--bn-position")
    learning_rate = renamed(learning_rate, lr, "--learning-rate", "--lr")
    if sum([bn, no_bn, only_bn]) > 1:
        usage_error("choose at most one of --bn, --no-bn, --only-bn")
    bn_arms = BN_MODES["off" if no_bn else "on" if only_bn else "both"]
    depth_list = (parse_int_list(depths, "--depths", limit="depth") if depths is not None
                  else None)
    width_list = (parse_int_list(widths, "--widths", limit="width", unique=False)
                  if widths is not None else None)
    if activation:
        check_unique(activation, "--activation")
        for a in activation:
            check_choice(a, ACTIVATIONS, "--activation")
    for value, table, option in ((init, INITIALIZERS, "--init"),
                                 (optimizer, OPTIMIZERS, "--optimizer"),
                                 (norm_position, BN_POSITIONS, "--norm-position")):
        if value is not None:
            check_choice(value, table, option)
    for value, option, integer, limit in ((width, "--width", True, "width"),
                                          (learning_rate, "--learning-rate", False, "int32"),
                                          (batch_size, "--batch-size", True, "int32"),
                                          (eval_every, "--eval-every", True, "int32"),
                                          (max_steps, "--max-steps", True, "steps"),
                                          (seeds, "--seeds", True, "seeds")):
        if value is not None:
            check_positive(value, option, integer=integer, limit=limit)
    if target is not None:
        check_target(target)
    if bn_momentum is not None and not 0 <= bn_momentum < 1:
        usage_error(f"--bn-momentum must be in [0, 1), got {bn_momentum}")
    # the file's values (its [quick] ones with --quick) where an option is not given
    defaults = {**_BASE, "depth": _DEPTHS} | (_QUICK["set"] if quick else {})
    deepest = max(depth_list or defaults["depth"])
    widths_used = width_list or tuple(defaults["widths"])
    if width is None and deepest > len(widths_used):
        usage_error(f"--depths: depth {deepest} exceeds the {len(widths_used)} widths "
                    "given; use --width N for deeper nets")
    steps = max_steps or defaults["max_steps"]
    every = eval_every or defaults["eval_every"]
    if every > steps:
        usage_error(f"--eval-every ({every}) must not exceed --max-steps ({steps})")

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)
    batch = batch_size or defaults["batch_size"]
    if batch > len(data.y_train):
        usage_error(f"--batch-size {batch} is larger than the training split "
                    f"({len(data.y_train)} examples of {data.name})")
    experiment = exp.experiment(
        quick=quick, seeds=seeds, depths=depth_list, widths=width_list, width=width,
        activations=tuple(activation) if activation else None, init=init, bn_arms=bn_arms,
        bn_momentum=bn_momentum, bn_position=norm_position, bn_logits=bn_logits,
        optimizer=optimizer, learning_rate=learning_rate, batch_size=batch_size, target=target,
        eval_every=eval_every, max_steps=max_steps)
    if timing_rounds is not None:
        import dataclasses

        experiment = dataclasses.replace(experiment, timing_rounds=timing_rounds)
    n_seeds = experiment.seeds
    hidden = (width,) * deepest if width is not None else widths_used[:deepest]
    with within_limits():
        check_memory(run_bytes(lanes=n_seeds,
                               layer_sizes=(data.n_features, *hidden, data.n_classes),
                               batch_size=batch, steps=steps, n_evals=steps // every),
                     f"depth {deepest} with {n_seeds} seeds")
    from dnnbench.cli.run import execute

    execute(experiment, data, n_seeds, out, fresh=fresh, force=force, plot=plot,
            meta={"experiment_file": exp.PACKAGED, "preset": "depth-sweep", "quick": quick},
            worker_data=executors.worker_data(data, data_dir, quick)
            if executor != "local" else None, executor=executor, scheduler=scheduler,
            workers=workers, slurm_param=slurm_param)


def register(app: typer.Typer) -> None:
    app.command("depth-sweep")(depth_sweep)
