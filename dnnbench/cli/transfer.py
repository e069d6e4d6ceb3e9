"""`dnnbench transfer`: does reusing the layers of a network trained on task A help task B?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli import executor as executors
from dnnbench.cli import options
from dnnbench.cli.common import (
    check_positive,
    err_console,
    load_data,
    quick_subset,
    renamed,
    usage_error,
    warn,
    within_limits,
)
from dnnbench.cli.options import MODEL, TRAINING, pick
from dnnbench.definition.experiment import packaged_doc
from dnnbench.limits import check, check_memory, run_bytes

QUICK_PAIRS = 3  # --quick --pairs all runs only the first pairs
TASK = "Task"
# the defaults: the packaged file's (read as written: no JAX at help time)
_FILE = packaged_doc("transfer-learning")
_BASE, _QUICK = _FILE["base"], _FILE["quick"]
DEPTH = len(_BASE["widths"])  # hidden layers of the protocol's networks
Seeds = options.seeds(_FILE["seeds"], _QUICK["seeds"],
                      "vmapped; B and B-on-A paired by seed; A retrained for every seed")
Quick = options.quick(f"data subset, {_QUICK['seeds']} seeds, {_QUICK['set']['epochs_a']} "
                      f"epochs for A, {_QUICK['set']['freeze_epochs']} frozen + "
                      f"{_QUICK['set']['unfreeze_epochs']} unfrozen for B; --pairs all runs the "
                      f"first {QUICK_PAIRS} pairs")


def _default(key: str) -> str:
    return options.file_default(_FILE, key)


Dataset = options.dataset("fashion-mnist")


def parse_pair(text: str) -> tuple[int, int]:
    """'3,5' -> (3, 5); anything else is a usage error."""
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        pos, neg = int(parts[0]), int(parts[1])
    except ValueError:
        usage_error(f"--pair: {text!r} is not two class labels POS,NEG like 3,5")
    if pos == neg:
        usage_error(f"--pair: the two classes must differ, got {pos} twice")
    return pos, neg


def transfer(
    pair: Annotated[str | None, typer.Option(
        metavar="POS,NEG", rich_help_panel=TASK, show_default=False,
        help="Task B as POS,NEG class labels (default: fashion-mnist 2,0, Pullover vs "
             "T-shirt/top; mnist, digits and synthetic 3,5).")] = None,
    pairs: Annotated[str | None, typer.Option(
        metavar="all", rich_help_panel=TASK, show_default=False,
        help="'all': repeat over every unordered class pair (45 for 10 classes; the smaller "
             "label is the positive class).")] = None,
    train_size: Annotated[int | None, typer.Option(
        rich_help_panel=TASK, show_default=False,
        help=f"Task-B training images (the first N of the two classes; "
             f"{_default('train_size')}).")] = None,
    reuse_layers: Annotated[int | None, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help=f"Hidden layers of A reused by B-on-A, 0..{DEPTH} (default: all {DEPTH}); the "
             "others start fresh.")] = None,
    epochs_a: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Training epochs of model A ({_default('epochs_a')}).")] = None,
    freeze_epochs: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Epochs with the reused layers frozen ({_default('freeze_epochs')}).")] = None,
    unfreeze_epochs: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Epochs with all layers trainable after that; B from scratch trains freeze + "
             f"unfreeze epochs ({_default('unfreeze_epochs')}).")] = None,
    learning_rate: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"SGD learning rate of every arm ({_default('learning_rate')}).")] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", hidden=True, help="Old spelling of --learning-rate.")] = None,
    unfreeze_lr: Annotated[float | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help="Learning rate of the reused layers after unfreezing (default: "
             "--learning-rate).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Mini-batch size ({_default('batch_size')}).")] = None,
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
    """Transfer learning A -> B on many seeds: B from scratch vs B on A's layers, paired.

    The textbook protocol: A = 3x100 ReLU net on 8 classes (SGD 0.001, 20 epochs, batch 32);
    B = the same net with one sigmoid unit on 200 images of the two held-out classes; B-on-A
    reuses A's hidden layers, frozen for 4 epochs, then trains them for 16 more. A preset of
    the packaged experiment file transfer-learning (dnnbench run transfer-learning), named
    "transfer": the same summary (each arm's mean test accuracy with its 95% interval, B-on-A
    against B paired by seed, with its interval and verdict), claims and figures.
    """
    from dnnbench.cli.run import execute
    from dnnbench.data import tasks
    from dnnbench.report.console import plural
    from dnnbench.run import transfer as exp

    if pair is not None and pairs is not None:
        usage_error("choose one of --pair POS,NEG and --pairs all")
    if pairs is not None and pairs.strip().lower() != "all":
        usage_error(f"--pairs: only 'all' is supported, got {pairs!r} (use --pair POS,NEG "
                    "for one pair)")
    chosen = parse_pair(pair) if pair is not None else None
    quick_set = _QUICK["set"]
    seeds = pick(seeds, _FILE["seeds"], _QUICK["seeds"], quick)
    epochs_a = pick(epochs_a, _BASE["epochs_a"], quick_set["epochs_a"], quick)
    freeze_epochs = pick(freeze_epochs, _BASE["freeze_epochs"], quick_set["freeze_epochs"], quick)
    unfreeze_epochs = pick(unfreeze_epochs, _BASE["unfreeze_epochs"],
                           quick_set["unfreeze_epochs"], quick)
    lr = renamed(learning_rate, lr, "--learning-rate", "--lr")
    lr = _BASE["learning_rate"] if lr is None else lr
    batch_size = _BASE["batch_size"] if batch_size is None else batch_size
    train_size = _BASE["train_size"] if train_size is None else train_size
    check_positive(seeds, "--seeds", integer=True, limit="seeds")
    check_positive(lr, "--learning-rate")
    if unfreeze_lr is not None:
        check_positive(unfreeze_lr, "--unfreeze-lr")
    check_positive(epochs_a, "--epochs-a", integer=True, limit="steps")
    check_positive(batch_size, "--batch-size", integer=True)
    check_positive(train_size, "--train-size", integer=True)
    if reuse_layers is not None and not 0 <= reuse_layers <= DEPTH:
        usage_error(f"--reuse-layers must be in 0..{DEPTH} (the network has {DEPTH} hidden "
                    f"layers), got {reuse_layers}")
    for value, option in ((freeze_epochs, "--freeze-epochs"),
                          (unfreeze_epochs, "--unfreeze-epochs")):
        if value < 0:
            usage_error(f"{option} must be >= 0, got {value}")
        with within_limits():
            check("steps", value, option)
    if freeze_epochs + unfreeze_epochs < 1:
        usage_error("--freeze-epochs + --unfreeze-epochs must be at least 1")

    data = load_data(dataset, exp.DEFAULT_DATASET, data_dir)
    if quick:
        data = quick_subset(data)

    if pairs is not None:
        if data.n_classes < 4:
            usage_error(f"--pairs all needs at least 4 classes; {data.name} has {data.n_classes}")
        pair_list = tasks.all_pairs(data.n_classes)
        if quick:
            pair_list = pair_list[:QUICK_PAIRS]
    else:
        pair_list = [chosen or tasks.default_pair(data)]
    for p in pair_list:
        try:
            tasks.check_pair(p, data.n_classes)
        except ValueError as e:
            usage_error(f"--pair: {e} in {data.name}")
    available = min(tasks.task_b_train_count(data, *p) for p in pair_list)
    if train_size > available:
        which = "the smallest pair has" if len(pair_list) > 1 else "the pair has"
        usage_error(f"--train-size {train_size} is larger than the task-B training images "
                    f"available ({which} {available} in {data.name}"
                    f"{', --quick subset' if quick else ''})")
    if train_size < batch_size:
        warn(f"--train-size {train_size} is smaller than --batch-size {batch_size}; the B arms "
             f"use batches of {train_size}.")
    too_small = [p for p in pair_list if _a_train_count(exp, data, p) < batch_size]
    if too_small:
        usage_error(f"--batch-size {batch_size} is larger than task A's training split for "
                    f"pair {exp.pair_label(*too_small[0])}")
    steps_a = epochs_a * (max(_a_train_count(exp, data, p) for p in pair_list) // batch_size)
    with within_limits():
        check("steps", steps_a, f"--epochs-a {epochs_a:,} (model A's steps)")
        check_memory(run_bytes(lanes=seeds, layer_sizes=(data.n_features, *_BASE["widths"],
                                                         data.n_classes),
                               batch_size=batch_size, steps=steps_a, n_evals=epochs_a),
                     f"model A with {seeds} seeds and {epochs_a:,} epochs")
    preset = exp.preset(data.name, pair_list, seeds, {
        "learning_rate": lr, "unfreeze_lr": unfreeze_lr, "batch_size": batch_size,
        "epochs_a": epochs_a, "freeze_epochs": freeze_epochs,
        "unfreeze_epochs": unfreeze_epochs, "train_size": train_size,
        "reuse_layers": reuse_layers})
    err_console().print(
        f"transfer on {data.name}: {plural(len(pair_list), 'class pair')}, "
        f"{plural(seeds, 'seed')}, {len(pair_list) * 3} vmapped programs", highlight=False)
    execute(preset, data, seeds, out, fresh=fresh, force=force, plot=plot,
            meta={"experiment_file": exp.PRESET_FILE, "preset": "transfer", "quick": quick,
                  "a_seed_offset": exp.A_SEED_OFFSET,
                  "pairs_mode": "all" if pairs is not None else "one"},
            timing="first" if len(pair_list) > 1 else True,
            worker_data=executors.worker_data(data, data_dir, quick)
            if executor != "local" else None, executor=executor, scheduler=scheduler,
            workers=workers, slurm_param=slurm_param)


def _a_train_count(exp, data, pair) -> int:
    from dnnbench.data import tasks

    return len(data.y_train) - tasks.task_b_train_count(data, *pair)


def register(app: typer.Typer) -> None:
    app.command("transfer")(transfer)

