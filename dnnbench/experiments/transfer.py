"""Transfer learning A -> B, run on many seeds with a paired, honest verdict.

Protocol (the reference textbook's, as the default)
---------------------------------------------------
Two classes of the data set form task B (``pos`` labelled 1, ``neg`` labelled 0); the other
classes form task A, relabelled ``0..n-3`` in increasing order of their original label (every
split is filtered the same way, so no task-B image is ever in task A).

- **A**: 3 hidden Dense layers of 100 ReLU units, He-normal (head Glorot-uniform), softmax over
  the task-A classes, SGD at 0.001, batch 32, 20 epochs, on all task-A training images.
- **B** (scratch): the same hidden layers, one sigmoid output unit (binary cross-entropy),
  SGD at 0.001 for ``freeze_epochs + unfreeze_epochs`` (default 20) epochs on the *first*
  ``train_size`` (200) task-B training images.
- **B-on-A**: the same network as B, whose first ``reuse_layers`` hidden layers (default all 3)
  start from seed i's trained A (layers beyond K and the head are freshly initialized);
  the reused layers are frozen for ``freeze_epochs`` (4) epochs, then trained for
  ``unfreeze_epochs`` (16) more at ``unfreeze_lr`` (default: the learning rate). The head and
  any fresh hidden layers train at the learning rate throughout.
- Both B arms are evaluated on all task-B test images (curves: on the task-B validation
  images, once per epoch).

An *epoch* is ``n_train // batch_size`` steps over a fresh on-device permutation (the engine
drops the last partial batch; with 200 images and batch 32 an epoch is 6 steps of 32). When
``train_size < batch_size`` the B arms use ``batch_size = train_size``.

Pairing and seeds
-----------------
Seed i of B and of B-on-A use the same PRNG key, so they see the same data order and get the
*same* fresh head (and fresh layers beyond K): Flax derives each parameter's initial value from
the init key and the layer name, and both arms build the same model from the same spec. A is
trained with PRNG seed ``A_SEED_OFFSET + i`` (pairing seed i), so that A's initial weights are
independent of B's; seed i's trained A feeds seed i's B-on-A (A is retrained for every seed
and every class pair). All seeds of an arm train in one ``jit(vmap)`` program (see
:func:`dnnbench.train.arm.train_arm`), three programs per class pair; with several pairs,
every split is padded to the largest pair's row count (padding is never drawn for training
and has weight 0 in evaluations), so that all pairs with the same steps per epoch share the
three programs instead of compiling their own.

Freezing (``make_tx`` hook of the engine, no second training loop)
------------------------------------------------------------------
:func:`transfer_tx` returns ``optax.multi_transform({"trainable": opt(lr), "reused":
frozen_until(opt(unfreeze_lr), freeze_steps)}, labels)`` where ``labels`` marks
``hidden_0..hidden_{K-1}`` as "reused". :func:`frozen_until` counts steps in its own state; while
``count < freeze_steps`` it returns updates of exactly ``-0.0`` (``jnp.where``, so a NaN or inf
gradient cannot leak through as ``0 * nan``) and keeps the inner optimizer's state unchanged;
afterwards it returns the inner optimizer's updates. ``-0.0`` rather than ``optax.set_to_zero``'s
``+0.0`` because ``p + (-0.0) == p`` bit for bit for every float ``p``, while ``-0.0 + 0.0`` is
``+0.0``: frozen layers stay *bitwise* unchanged (tested).

Output columns
--------------
``transfer-<dataset>-runs.csv``, one row per (pair, arm, seed), in :data:`RUN_COLUMNS` order:

- experiment: "transfer"; dataset: the data set name (e.g. "mnist");
- pair: ``"<pos>v<neg>"`` (e.g. "3v5"); pos_class, neg_class: original labels of task B's
  positive and negative class;
- arm: "A" | "B" | "B-on-A"; seed: the pairing seed i (A's PRNG seed is A_SEED_OFFSET + i);
- train_size: training images the arm was trained on (A: all task-A training images);
- reuse_layers: hidden layers taken from A (0 for A and B);
- freeze_epochs: epochs with the reused layers frozen (0 for A and B);
- unfreeze_epochs: epochs with every layer trainable (A: its epochs; B: its epochs);
- learning_rate: the arm's learning rate (B-on-A: of its head and fresh layers);
- unfreeze_lr: B-on-A: learning rate of the reused layers after unfreezing; empty for A and B;
- epochs: total epochs of the arm;
- test_accuracy, test_loss: on the arm's task test images (A: the task-A test images, 8-way for
  10 classes; B arms: the task-B test images, binary); NaN if diverged;
- diverged: the loss became NaN/inf;
- compile_s: compiling the arm's program (all seeds); with several pairs the pairs share the
  programs (see :class:`SharedPrograms`), so it is 0 for a pair that reused one; step_ms: one
  training step of all the
  arm's seeds vmapped together, after warm-up, evaluation excluded; measuring it re-runs a few
  evaluation chunks of the arm (for A: a few epochs), so ``--pairs all`` measures it for the
  first pair only and leaves it empty (NaN) for the others (``TransferConfig.timing``);
- spec_hash: ``RunSpec.hash`` for A and B; for B-on-A a hash of B's and A's spec hashes and the
  transfer settings (reuse_layers, freeze steps, unfreeze_lr).

``transfer-<dataset>-curves.csv`` (:data:`CURVE_COLUMNS`): pair, arm, seed, step, epoch (steps
divided by the arm's steps per epoch; one evaluation per epoch), train_loss (mean over the
epoch's steps), eval_loss, eval_accuracy (on the task's *validation* images).

Statistics (:func:`summarize`, all from :mod:`dnnbench.stats`)
--------------------------------------------------------------
Per pair and arm, mean test accuracy with a 95% bootstrap interval (``mean_ci``); the paired
difference B-on-A minus B in accuracy points with its interval and a Wilcoxon signed-rank
p-value (``paired_difference``); the seeds in which B-on-A is strictly better; the error-rate
reduction ``1 - err(B-on-A) / err(B)`` as one minus the geometric mean of the per-seed error
ratios with its interval (``paired_log_ratio``; seeds where either arm makes no test error are
left out, ``err_reduction_n`` counts the seeds used). The verdict comes from the difference's
interval (``verdict_from_interval``): "helps" / "hurts" only when it excludes zero, otherwise
"no clear effect"; with fewer than :data:`MIN_SEEDS_FOR_VERDICT` paired seeds it is always
"too few seeds for a verdict" (a bootstrap over 1-4 values cannot support a claim).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from dnnbench.data.base import Dataset
from dnnbench.experiments import files
from dnnbench.experiments.units import Unit
from dnnbench.spec import RunSpec
from dnnbench.stats import (
    MIN_SEEDS_FOR_VERDICT,
    TOO_FEW_SEEDS,
    mean_ci,
    paired_difference,
    paired_log_ratio,
    verdict_from_interval,
)
from dnnbench.train.engine import make_optimizer_of

EXPERIMENT = "transfer"
DEFAULT_DATASET = "fashion-mnist"
# Documented default class pairs (positive, negative). Fashion-MNIST: the textbook's
# Pullover (2) vs T-shirt/top (0). MNIST and digits: 3 vs 5, a classic pair of look-alikes.
DEFAULT_PAIRS: dict[str, tuple[int, int]] = {
    "fashion-mnist": (2, 0), "mnist": (3, 5), "digits": (3, 5), "synthetic": (3, 5)}
FALLBACK_PAIR = (1, 0)  # any other data set
A_SEED_OFFSET = 10_000
ARMS = ("A", "B", "B-on-A")
VERDICT_LABELS = ("helps", "hurts", "no clear effect")
TIMING_MODES = ("all", "first", "none")

RUN_COLUMNS = [
    "experiment", "dataset", "pair", "pos_class", "neg_class", "arm", "seed", "train_size",
    "reuse_layers", "freeze_epochs", "unfreeze_epochs", "learning_rate", "unfreeze_lr", "epochs",
    "test_accuracy", "test_loss", "diverged", "compile_s", "step_ms", "spec_hash",
]
CURVE_COLUMNS = ["pair", "arm", "seed", "step", "epoch", "train_loss", "eval_loss",
                 "eval_accuracy"]


# ----------------------------------------------------------------------------- class pairs

def default_pair(data: Dataset) -> tuple[int, int]:
    pair = DEFAULT_PAIRS.get(data.name, FALLBACK_PAIR)
    return pair if max(pair) < data.n_classes else FALLBACK_PAIR


def all_pairs(n_classes: int) -> list[tuple[int, int]]:
    """Every unordered pair of classes, the smaller label first (= positive): 45 for 10."""
    return list(itertools.combinations(range(n_classes), 2))


def pair_label(pos: int, neg: int) -> str:
    return f"{pos}v{neg}"


def check_pair(pair: tuple[int, int], n_classes: int) -> None:
    """ValueError (user-facing message) for a pair that names no class or one class twice."""
    pos, neg = pair
    for c in pair:
        if not 0 <= c < n_classes:
            raise ValueError(f"class {c} does not exist (classes are 0..{n_classes - 1})")
    if pos == neg:
        raise ValueError(f"the two classes of a pair must differ, got {pos} twice")
    if n_classes < 3:
        raise ValueError(f"task A needs at least one class besides the pair; the data set has "
                         f"only {n_classes} classes")


# ----------------------------------------------------------------------------- task split

def task_b_train_count(data: Dataset, pos: int, neg: int) -> int:
    """Training images available to task B (both classes together)."""
    return int(np.isin(data.y_train, (pos, neg)).sum())


def split_tasks(data: Dataset, pos: int, neg: int, train_size: int | None = None
                ) -> tuple[Dataset, Dataset]:
    """(task A, task B) as Datasets named like ``data``.

    Task A: every split without the classes ``pos`` and ``neg``, labels relabelled 0..n-3 in
    increasing order of the original label. Task B: only ``pos`` (label 1) and ``neg`` (label 0);
    its training split is the first ``train_size`` task-B training images (all if None).
    """
    check_pair((pos, neg), data.n_classes)
    a_classes = [c for c in range(data.n_classes) if c not in (pos, neg)]
    relabel = np.full(data.n_classes, -1, np.int32)
    relabel[a_classes] = np.arange(len(a_classes), dtype=np.int32)

    def part(x, y, keep, labels, limit=None):
        idx = np.flatnonzero(keep)[:limit]
        return x[idx], labels[idx].astype(np.int32)

    splits_a, splits_b = {}, {}
    for split in ("train", "val", "test"):
        x, y = data.split(split)
        in_b = np.isin(y, (pos, neg))
        splits_a[split] = part(x, y, ~in_b, relabel[y])
        limit = train_size if split == "train" else None
        splits_b[split] = part(x, y, in_b, (y == pos).astype(np.int32), limit)

    names = data.class_names or tuple(str(c) for c in range(data.n_classes))

    def dataset(splits, n_classes, class_names, what):
        return Dataset(name=data.name, x_train=splits["train"][0], y_train=splits["train"][1],
                       x_val=splits["val"][0], y_val=splits["val"][1], x_test=splits["test"][0],
                       y_test=splits["test"][1], n_classes=n_classes, hashes=data.hashes,
                       source=f"{data.source}; {what}", class_names=class_names)

    task_a = dataset(splits_a, len(a_classes), tuple(names[c] for c in a_classes),
                     f"task A: classes {a_classes} relabelled 0..{len(a_classes) - 1}")
    task_b = dataset(splits_b, 2, (names[neg], names[pos]),
                     f"task B: class {pos} (label 1) vs class {neg} (label 0), first "
                     f"{len(splits_b['train'][1])} training images")
    return task_a, task_b


# ----------------------------------------------------------------------------- configuration

# run settings of the three stages' specs besides those of TransferConfig (an experiment
# file's dropout, l2, optimizer coefficients, ...), as sorted (RunSpec field, value) pairs
Extra = tuple[tuple[str, Any], ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransferConfig:
    pairs: tuple[tuple[int, int], ...]  # (positive, negative) class pairs, one unit each
    widths: tuple[int, ...] = (100, 100, 100)
    activation: str = "relu"
    init: str = "he-normal"
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    unfreeze_lr: float | None = None  # None: learning_rate
    batch_size: int = 32
    epochs_a: int = 20
    freeze_epochs: int = 4
    unfreeze_epochs: int = 16
    train_size: int = 200
    reuse_layers: int | None = None  # None: all hidden layers
    seeds: tuple[int, ...] = tuple(range(20))
    # step_ms: measured for "all" pairs, the "first" pair only (the step of every pair has
    # the same shapes but for the number of task-A images), or "none"; each measurement
    # compiles three more small programs per arm.
    timing: str = "all"

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def reused(self) -> int:
        return self.depth if self.reuse_layers is None else self.reuse_layers

    @property
    def lr_after(self) -> float:
        return self.learning_rate if self.unfreeze_lr is None else self.unfreeze_lr

    @property
    def epochs_b(self) -> int:
        return self.freeze_epochs + self.unfreeze_epochs

    def batch_size_b(self, n_train_b: int) -> int:
        return min(self.batch_size, n_train_b)


def _spec(cfg: TransferConfig, n_train: int, batch_size: int, epochs: int, loss: str,
          extra: Extra = ()) -> RunSpec:
    steps_per_epoch = n_train // batch_size
    return RunSpec(widths=cfg.widths, activation=cfg.activation, init=cfg.init, loss=loss,
                   optimizer=cfg.optimizer, learning_rate=cfg.learning_rate,
                   batch_size=batch_size, max_steps=epochs * steps_per_epoch,
                   eval_every=steps_per_epoch, eval_split="val", target=0.0,
                   stop_at_target=False, **dict(extra))


def spec_a(cfg: TransferConfig, task_a: Dataset, extra: Extra = ()) -> RunSpec:
    return _spec(cfg, len(task_a.y_train), cfg.batch_size, cfg.epochs_a, "softmax", extra)


def spec_b(cfg: TransferConfig, task_b: Dataset, extra: Extra = ()) -> RunSpec:
    n = len(task_b.y_train)
    return _spec(cfg, n, cfg.batch_size_b(n), cfg.epochs_b, "sigmoid", extra)


def steps_per_epoch(spec: RunSpec) -> int:
    return spec.eval_every


# ----------------------------------------------------------------------------- freezing

class FrozenUntilState(NamedTuple):
    count: jax.Array  # int32 steps seen
    inner: Any


def frozen_until(inner: optax.GradientTransformation, freeze_steps: int
                 ) -> optax.GradientTransformation:
    """``inner``, except that its first ``freeze_steps`` updates are exactly ``-0.0``.

    While frozen the inner state does not advance (momentum etc. start at unfreezing), and
    the update is selected with ``jnp.where``, so NaN/inf gradients cannot leak into it.
    ``p + (-0.0)`` is ``p`` bit for bit for every float ``p`` (including ``-0.0`` and NaN).
    """

    def init(params):
        return FrozenUntilState(jnp.zeros((), jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        new_updates, new_inner = inner.update(updates, state.inner, params)
        frozen = state.count < freeze_steps
        new_updates = jax.tree_util.tree_map(
            lambda u: jnp.where(frozen, jnp.array(-0.0, u.dtype), u), new_updates)
        new_inner = jax.tree_util.tree_map(lambda old, new: jnp.where(frozen, old, new),
                                           state.inner, new_inner)
        return new_updates, FrozenUntilState(optax.safe_int32_increment(state.count), new_inner)

    return optax.GradientTransformation(init, update)


def layer_labels(reuse_layers: int) -> Callable[[Any], Any]:
    """params -> the same tree of "reused" (hidden_0..hidden_{K-1}) / "trainable" labels."""
    reused = {f"hidden_{i}" for i in range(reuse_layers)}

    def labels(params):
        return {name: jax.tree_util.tree_map(
            lambda _, n=name: "reused" if n in reused else "trainable", sub)
            for name, sub in params.items()}

    return labels


def transfer_tx(reuse_layers: int, freeze_steps: int, unfreeze_lr: float) -> Callable:
    """The engine's ``make_tx(spec, hp)`` for B-on-A: reused layers frozen, then ``unfreeze_lr``."""

    def make_tx(spec: RunSpec, hp) -> optax.GradientTransformation:
        def opt(rate=None):
            return make_optimizer_of(spec, hp, rate)

        return optax.multi_transform(
            {"trainable": opt(), "reused": frozen_until(opt(unfreeze_lr), freeze_steps)},
            layer_labels(reuse_layers))

    return make_tx


def hidden_layers(params: dict, reuse_layers: int) -> dict:
    """The first ``reuse_layers`` hidden layers of a parameter tree (A's head is never reused)."""
    return {f"hidden_{i}": params[f"hidden_{i}"] for i in range(reuse_layers)}


def reuse_params(fresh: dict, init_params: dict) -> dict:
    """The engine's ``merge_params``: A's layers where given, fresh layers and head elsewhere."""
    return {name: init_params.get(name, sub) for name, sub in fresh.items()}


# ----------------------------------------------------------------------------- one class pair

# Cached units are keyed by this module's source too: an edit here recomputes them.
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


class PairResult(NamedTuple):
    """The three trained arms of one class pair (ArmResults with a leading seed axis)."""

    task_a: Dataset
    task_b: Dataset
    specs: dict[str, RunSpec]
    results: dict[str, Any]  # arm -> ArmResult


class SharedPrograms:
    """The compiled programs of a sweep over class pairs, shared by every pair whose tasks
    fit the padded row counts and give the same steps per epoch (all pairs of digits, for
    one): the pairs then cost training time only, not one compile of three programs each."""

    def __init__(self, cfgs: TransferConfig | Sequence[TransferConfig], data: Dataset):
        from dnnbench.train.engine import Rows

        cfgs = [cfgs] if isinstance(cfgs, TransferConfig) else list(cfgs)
        pairs = [(pair, cfg.train_size) for cfg in cfgs for pair in cfg.pairs]

        def rows(task_b: bool) -> Rows:
            """The largest split sizes of task A (or B) over the pairs (counted on labels, as
            ``split_tasks`` splits them)."""
            sizes = []
            for split in ("train", "val", "test"):
                y = data.split(split)[1]
                counts = [int((np.isin(y, pair) == task_b).sum()) for pair, _ in pairs]
                if task_b and split == "train":
                    counts = [min(n, size) for n, (_, size) in zip(counts, pairs, strict=True)]
                sizes.append(max(counts))
            return Rows(*sizes)

        self.rows = {"A": rows(False), "B": rows(True), "B-on-A": rows(True)}
        self.programs: dict[tuple, Any] = {}

    def train(self, arm: str, spec: RunSpec, task: Dataset, seeds, *, timing: bool,
              init_params=None, variant: tuple = (), **program_kwargs):
        """Train ``arm`` on ``task``, compiling its program only for the first pair that
        needs it (``compile_s`` is 0 for the pairs that reuse it); ``variant``: what else
        shapes the program (B-on-A's reused layers, frozen steps, learning rate after)."""
        from dnnbench.train.arm import compile_arm

        key = (arm, spec.hash, len(task.y_train) // spec.batch_size, tuple(seeds), variant)
        compiled = self.programs.get(key)
        fresh = compiled is None
        if fresh:
            compiled = self.programs[key] = compile_arm(
                spec, task, seeds, init_params=init_params, rows=self.rows[arm],
                **program_kwargs)
        result = compiled.train(data=task, init_params=init_params, timing=timing)
        if not fresh:
            result = result._replace(timing=result.timing._replace(compile_s=0.0))
        return result


def train_pair(cfg: TransferConfig, data: Dataset, pos: int, neg: int, *,
               timing: bool = True, shared: SharedPrograms | None = None,
               extra: Extra = ()) -> PairResult:
    """Train A, B and B-on-A on every seed (three vmapped programs, or the ``shared`` ones of
    a sweep over pairs); ``timing``: measure the steady-state step time of each arm too;
    ``extra``: further run settings of the stages' specs."""
    from dnnbench.train.arm import train_arm

    def train(arm, spec, task, seeds, **kwargs):
        if shared is None:
            return train_arm(spec, task, seeds, timing=timing, **kwargs)
        return shared.train(arm, spec, task, seeds, timing=timing, **kwargs)

    task_a, task_b = split_tasks(data, pos, neg, cfg.train_size)
    sa, sb = spec_a(cfg, task_a, extra), spec_b(cfg, task_b, extra)
    seeds = tuple(cfg.seeds)
    res_a = train("A", sa, task_a, [A_SEED_OFFSET + s for s in seeds], return_params=True)
    reused = hidden_layers(res_a.trace.params, cfg.reused)
    res_a = res_a._replace(trace=res_a.trace._replace(params=None))
    res_b = train("B", sb, task_b, seeds)
    freeze_steps = cfg.freeze_epochs * steps_per_epoch(sb)
    tx = transfer_tx(cfg.reused, freeze_steps, cfg.lr_after)
    if shared is None:
        res_t = train("B-on-A", sb, task_b, seeds, init_params=reused,
                      merge_params=reuse_params, make_tx=tx)
    else:
        res_t = train("B-on-A", sb, task_b, seeds, init_params=reused,
                      merge_params=reuse_params, make_tx=tx,
                      variant=(cfg.reused, freeze_steps, cfg.lr_after))
    return PairResult(task_a, task_b, {"A": sa, "B": sb, "B-on-A": sb},
                      {"A": res_a, "B": res_b, "B-on-A": res_t})


# ----------------------------------------------------------------------------- as data

# the columns the protocol adds to the common table: the group's settings (as the file set
# them, the same in every stage's rows: factor levels stay comparable across stages), and
# per stage its training examples (A: every task-A image) and epochs
STAGE_COLUMNS = ["pair", "pos_class", "neg_class", "stage", "train_size", "train_examples",
                 "reuse_layers", "freeze_epochs", "unfreeze_epochs", "unfreeze_lr",
                 "epochs_a", "epochs"]
# RunSpec fields that the protocol sets for each stage (the others may come from the file)
_STAGE_FIELDS = ("widths", "activation", "init", "optimizer", "learning_rate", "batch_size",
                 "loss", "max_steps", "eval_every", "eval_split", "target", "stop_at_target",
                 "bn_eval", "bn_eval_batch")


def experiment(cfg: TransferConfig, dataset: str = DEFAULT_DATASET) -> files.Experiment:
    """The command's configuration as an experiment file of the transfer protocol: the
    factors pair (``cfg.pairs``) x stage, B the reference."""
    base = {"widths": list(cfg.widths), "activation": cfg.activation, "init": cfg.init,
            "optimizer": cfg.optimizer, "learning_rate": cfg.learning_rate,
            "batch_size": cfg.batch_size, "train_size": cfg.train_size,
            "epochs_a": cfg.epochs_a, "freeze_epochs": cfg.freeze_epochs,
            "unfreeze_epochs": cfg.unfreeze_epochs}
    if cfg.unfreeze_lr is not None:
        base["unfreeze_lr"] = cfg.unfreeze_lr
    if cfg.reuse_layers is not None:
        base["reuse_layers"] = cfg.reuse_layers
    return files.parse({
        "name": EXPERIMENT, "protocol": "transfer", "dataset": dataset,
        "seeds": len(cfg.seeds), "base": base, "reference": {"stage": "B"},
        "factors": {"pair": [pair_label(*p) for p in cfg.pairs], "stage": list(ARMS)}},
        f"{EXPERIMENT} command")


@dataclasses.dataclass(frozen=True)
class Group:
    """The arms (stages) of one class pair and setting: one unit, three programs."""

    index: int
    cfg: TransferConfig  # of one pair
    extra: Extra
    arms: tuple[files.ArmSettings, ...]

    @property
    def label(self) -> str:
        others = [f"{f}={files.format_level(v)}" for f, v in self.arms[0].levels
                  if f not in ("pair", "stage")]
        return ", ".join([f"pair {pair_label(*self.cfg.pairs[0])}", *others])


def _pair(value: str, data: Dataset, where: str) -> tuple[int, int]:
    pair = default_pair(data) if value == "default" else tuple(
        int(c) for c in value.split("v"))
    try:
        check_pair(pair, data.n_classes)
    except ValueError as e:
        raise files.ExperimentError(f"{where}: pair {value}: {e} in {data.name}") from None
    return pair


def plan(exp: files.Experiment, data: Dataset, seeds: Sequence[int]) -> list[Group]:
    """The arms of a transfer file grouped by everything but the stage: one group per class
    pair and setting; ExperimentError for settings the data set cannot serve."""
    from dnnbench.experiments.protocols import TRANSFER

    groups: dict[tuple, list[files.ArmSettings]] = {}
    for arm in files.expand(exp):
        groups.setdefault(tuple(lv for lv in arm.levels if lv[0] != "stage"), []).append(arm)
    out = []
    for i, arms in enumerate(groups.values()):
        s = arms[0].settings
        where = f"{exp.source} arm {arms[0].name}"
        pos, neg = _pair(s.get("pair", "default"), data, where)
        run = {k: v for k, v in s.items() if k not in TRANSFER.settings and k != "train_size"}
        probe = files.make_spec(run, None, where)
        default = RunSpec(widths=probe.widths)
        extra = tuple(sorted((f.name, getattr(probe, f.name)) for f in dataclasses.fields(probe)
                             if f.name not in _STAGE_FIELDS
                             and getattr(probe, f.name) != getattr(default, f.name)))
        cfg = TransferConfig(
            pairs=((pos, neg),), widths=probe.widths, activation=probe.activation,
            init=probe.init, optimizer=probe.optimizer, learning_rate=probe.learning_rate,
            unfreeze_lr=s.get("unfreeze_lr"), batch_size=probe.batch_size,
            epochs_a=s.get("epochs_a", 20), freeze_epochs=s.get("freeze_epochs", 4),
            unfreeze_epochs=s.get("unfreeze_epochs", 16), train_size=s.get("train_size", 200),
            reuse_layers=s.get("reuse_layers"), seeds=tuple(int(x) for x in seeds))
        _check(cfg, data, where)
        out.append(Group(i, cfg, extra, tuple(arms)))
    return out


def _check(cfg: TransferConfig, data: Dataset, where: str) -> None:
    pos, neg = cfg.pairs[0]
    problems = []
    if cfg.reused > cfg.depth:
        problems.append(f"reuse_layers {cfg.reused} exceeds the {cfg.depth} hidden layers")
    if cfg.epochs_b < 1:
        problems.append("freeze_epochs + unfreeze_epochs must be at least 1")
    if not 0 < cfg.train_size <= task_b_train_count(data, pos, neg):
        problems.append(f"train_size {cfg.train_size} is not in 1..{task_b_train_count(data, pos, neg)}"
                        f" (the task-B training images of pair {pair_label(pos, neg)})")
    if len(data.y_train) - task_b_train_count(data, pos, neg) < cfg.batch_size:
        problems.append(f"batch_size {cfg.batch_size} exceeds task A's training split")
    if problems:
        raise files.ExperimentError(f"{where}: {problems[0]} in {data.name}")


def build_file_units(exp: files.Experiment, data: Dataset, seeds: Sequence[int], *,
                     timing: bool | str = True, one_program_per_arm: bool = False,
                     frames=None, worker_data=None, lanes_per_unit: int | None = None
                     ) -> list[Unit]:
    """The units of a transfer file: one per class pair and setting, training A, B and
    B-on-A (the protocol's plug-in for :mod:`dnnbench.experiments.protocols`). With several
    units their programs are shared (:class:`SharedPrograms`). ``timing``: measure the step
    time in every unit, only in the "first", or not at all (False); ``frames`` and
    ``worker_data`` as for :func:`dnnbench.experiments.generic.build_units` (the units then
    carry a picklable recipe and run on an executor's workers). Arms are never lanes of one
    program here (``one_program_per_arm`` and ``lanes_per_unit`` change nothing)."""
    del one_program_per_arm, lanes_per_unit
    groups = plan(exp, data, seeds)
    shared = SharedPrograms([g.cfg for g in groups], data) if len(groups) > 1 else None
    units = []
    for g in groups:
        pos, neg = g.cfg.pairs[0]
        measure = bool(timing) and (timing != "first" or g.index == 0)

        def compute(g=g, pos=pos, neg=neg, measure=measure):
            result = train_pair(g.cfg, data, pos, neg, timing=measure, shared=shared,
                                extra=g.extra)
            out = group_frames(exp, g, data, result)
            return out if frames is None else frames(*out)

        key = dataclasses.asdict(g.cfg) | {
            "pairs": None, "pair": (pos, neg), "timing": measure, "extra": g.extra,
            "a_seed_offset": A_SEED_OFFSET, "code": _CODE_DIGEST,
            "arms": [(a.name, a.levels) for a in g.arms], "experiment": exp.name}
        remote = None if worker_data is None else functools.partial(
            rebuild_unit, exp, worker_data, tuple(seeds), g.index, timing, frames)
        units.append(Unit(g.label, (EXPERIMENT, sorted(key.items())), compute,
                          remote=remote))
    return units


def rebuild_unit(exp: files.Experiment, worker_data: Callable[[], Dataset],
                 seeds: Sequence[int], index: int, timing: bool | str, frames=None) -> Unit:
    """Unit ``index`` of :func:`build_file_units`, made anew in a worker's process."""
    return build_file_units(exp, worker_data(), seeds, timing=timing, frames=frames)[index]


def group_frames(exp: files.Experiment, g: Group, data: Dataset, result: PairResult
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The common tables (:mod:`dnnbench.experiments.generic`) of one trained group: a row per
    stage and seed, with the stage's values of :data:`STAGE_COLUMNS`."""
    from dnnbench.experiments import generic

    cfg = g.cfg
    pos, neg = cfg.pairs[0]
    sa, sb = result.specs["A"], result.specs["B"]
    freeze_steps = cfg.freeze_epochs * steps_per_epoch(sb)
    examples = {"A": len(result.task_a.y_train), "B": len(result.task_b.y_train),
                "B-on-A": len(result.task_b.y_train)}
    epochs = {"A": cfg.epochs_a, "B": cfg.epochs_b, "B-on-A": cfg.epochs_b}
    runs, curves = [], []
    for arm in g.arms:
        levels = dict(arm.levels)
        stage = levels["stage"]
        spec = result.specs[stage]
        planned = generic.PlannedArm(arm, spec, 0)
        r, c = generic.program_frames(exp, data, generic.Program(g.index, (planned,), spec, ()),
                                      result.results[stage], cfg.seeds)
        values = dict(zip(STAGE_COLUMNS, (
            pair_label(pos, neg), pos, neg, stage, cfg.train_size, examples[stage],
            cfg.reused, cfg.freeze_epochs, cfg.unfreeze_epochs, cfg.lr_after, cfg.epochs_a,
            epochs[stage]), strict=True))
        values |= {k: v for k, v in levels.items() if k in values}  # levels as the file names them
        r = r.drop(columns=[k for k in values if k in r.columns])
        at = r.columns.get_loc("seed")
        for k, v in reversed(values.items()):
            r.insert(at, k, v)
        if stage == "B-on-A":
            r["spec_hash"] = _hash(sb.hash, sa.hash, cfg.reused, freeze_steps, cfg.lr_after)
        runs.append(r)
        curves.append(c)
    return pd.concat(runs, ignore_index=True), pd.concat(curves, ignore_index=True)


def legacy_frames(dataset: str, runs: pd.DataFrame, curves: pd.DataFrame):
    """The common tables in the documented schema of `dnnbench transfer` (:data:`RUN_COLUMNS`,
    :data:`CURVE_COLUMNS`)."""
    arms = runs.drop_duplicates("arm").set_index("arm")
    on_a = runs["stage"] == "B-on-A"  # the transfer settings apply to B-on-A only
    legacy = runs.assign(
        experiment=EXPERIMENT, dataset=dataset, arm=runs["stage"],
        train_size=runs["train_examples"], reuse_layers=runs["reuse_layers"].where(on_a, 0),
        freeze_epochs=runs["freeze_epochs"].where(on_a, 0),
        unfreeze_epochs=runs["unfreeze_epochs"].where(on_a, runs["epochs"]),
        unfreeze_lr=runs["unfreeze_lr"].where(on_a, math.nan),
        test_accuracy=runs["final_test_accuracy"], test_loss=runs["final_test_loss"],
    )[RUN_COLUMNS]
    stage = curves["arm"]
    curves = curves.assign(pair=stage.map(arms["pair"]), arm=stage.map(arms["stage"]),
                           epoch=(curves["step"] // stage.map(arms["eval_every"])).astype(int))
    return legacy, curves[CURVE_COLUMNS]


def build_units(cfg: TransferConfig, data: Dataset, worker_data=None) -> list[Unit]:
    """The command's units: one per class pair (A, B and B-on-A), through the transfer
    protocol, written in the command's documented schema."""
    if cfg.timing not in TIMING_MODES:
        raise ValueError(f"timing must be one of {', '.join(TIMING_MODES)}, got {cfg.timing!r}")
    timing = {"all": True, "first": "first", "none": False}[cfg.timing]
    return build_file_units(experiment(cfg, data.name), data, cfg.seeds, timing=timing,
                            frames=functools.partial(legacy_frames, data.name),
                            worker_data=worker_data)


# ----------------------------------------------------------------------------- statistics

def _arm(g: pd.DataFrame, arm: str) -> pd.DataFrame:
    return g[g["arm"] == arm].sort_values("seed")


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per class pair (in order of appearance): per-arm mean accuracy [95% CI], the
    paired B-on-A minus B difference in points [95% CI] with its Wilcoxon p-value, seeds
    better / worse, the error-rate reduction [95% CI] and the verdict."""
    rows = []
    for label in pd.unique(runs["pair"]):
        g = runs[runs["pair"] == label]
        t_rows = _arm(g, "B-on-A")
        row: dict[str, Any] = {"pair": label, "pos_class": int(g["pos_class"].iloc[0]),
                               "neg_class": int(g["neg_class"].iloc[0]),
                               "epochs_a": int(_arm(g, "A")["epochs"].iloc[0]),
                               "epochs_b": int(t_rows["epochs"].iloc[0]),
                               "reuse_layers": int(t_rows["reuse_layers"].iloc[0]),
                               "freeze_epochs": int(t_rows["freeze_epochs"].iloc[0]),
                               "unfreeze_epochs": int(t_rows["unfreeze_epochs"].iloc[0]),
                               "learning_rate": float(t_rows["learning_rate"].iloc[0]),
                               "unfreeze_lr": float(t_rows["unfreeze_lr"].iloc[0])}
        for arm, key in (("A", "a"), ("B", "b"), ("B-on-A", "t")):
            a = _arm(g, arm)
            ci = mean_ci(a["test_accuracy"])
            row.update({f"acc_{key}": ci.estimate, f"acc_{key}_low": ci.low,
                        f"acc_{key}_high": ci.high, f"n_{key}": len(a),
                        f"diverged_{key}": int(a["diverged"].sum()),
                        f"train_size_{key}": int(a["train_size"].iloc[0]),
                        f"compile_s_{key}": float(a["compile_s"].iloc[0]),
                        f"step_ms_{key}": float(a["step_ms"].iloc[0])})
        b = _arm(g, "B").set_index("seed")["test_accuracy"]
        t = _arm(g, "B-on-A").set_index("seed")["test_accuracy"]
        both = pd.concat({"b": b, "t": t}, axis=1, join="inner").dropna()
        cmp = paired_difference(both["t"] * 100, both["b"] * 100)
        red = paired_log_ratio(1 - both["t"], 1 - both["b"])
        d = (both["t"] - both["b"]).to_numpy()
        row.update({"n_paired": cmp.n, "diff": cmp.mean_diff, "diff_low": cmp.low,
                    "diff_high": cmp.high, "p_value": cmp.p_value,
                    "n_better": int((d > 0).sum()), "n_worse": int((d < 0).sum()),
                    "err_reduction": 1 - red.estimate, "err_reduction_low": 1 - red.high,
                    "err_reduction_high": 1 - red.low, "err_reduction_n": red.n})
        row["verdict"] = verdict(cmp.low, cmp.high, cmp.n)
        row["verdict_line"] = verdict_text(row)
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(low: float, high: float, n: int) -> str:
    """"helps" / "hurts" only when the interval of the difference excludes zero (and at least
    MIN_SEEDS_FOR_VERDICT seeds back it)."""
    return verdict_from_interval(low, high, labels=VERDICT_LABELS, n=n)


def verdict_text(row: dict) -> str:
    """The plain-words line: "transfer helps by +1.2 points [0.4, 2.0], better in 16/20 seeds"."""
    n = int(row["n_paired"])
    if n == 0:
        return "no verdict: no seed gave a test accuracy in both B arms (all diverged)"
    effect = (f"{row['diff']:+.1f} points [{row['diff_low']:.1f}, {row['diff_high']:.1f}], "
              f"better in {row['n_better']}/{n} seeds")
    if row["verdict"] == "helps":
        return f"transfer helps by {effect}"
    if row["verdict"] == "hurts":
        return f"transfer hurts by {effect}"
    if row["verdict"] == TOO_FEW_SEEDS:
        return f"{TOO_FEW_SEEDS} ({effect}; a verdict needs {MIN_SEEDS_FOR_VERDICT})"
    return f"no clear effect ({effect})"


def across_pairs(summary: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """The distribution of effects over class pairs: how many help / hurt / are unclear, the
    median and quartiles of the mean differences, and how many "effects" chance alone gives."""
    diffs = summary["diff"].dropna().to_numpy(float)
    counts = summary["verdict"].value_counts()
    q = np.percentile(diffs, [0, 25, 50, 75, 100]) if diffs.size else [math.nan] * 5
    return {"n_pairs": len(summary), "helps": int(counts.get("helps", 0)),
            "hurts": int(counts.get("hurts", 0)),
            "unclear": int(counts.get("no clear effect", 0)),
            "too_few": int(counts.get(TOO_FEW_SEEDS, 0)),
            "min": float(q[0]), "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]),
            "max": float(q[4]), "expected_by_chance": (1 - confidence) * len(summary)}


def across_pairs_text(dist: dict[str, Any], n_seeds: int) -> str:
    n = dist["n_pairs"]
    few = dist.get("too_few", 0)
    return (f"Across {n} class pairs ({n_seeds} seeds each): transfer helps in {dist['helps']}, "
            f"hurts in {dist['hurts']}, no clear effect in {dist['unclear']}"
            f"{f', {TOO_FEW_SEEDS} in {few}' if few else ''}; median effect "
            f"{dist['median']:+.1f} points (quartiles {dist['q1']:+.1f}, {dist['q3']:+.1f}; "
            f"range {dist['min']:+.1f} to {dist['max']:+.1f}). With 95% intervals, about "
            f"{dist['expected_by_chance']:.1f} of {n} pairs would show an effect by chance alone.")

