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
- **B-tuned** (a stage a file may add): B from scratch at the learning rate of
  :data:`B_TUNED_GRID` (or of :data:`B_RATES` from ``b_rate_min`` to ``b_rate_max``) whose
  seeds end with the best median final *validation* accuracy (the grid's rates are lanes of one
  program; a diverged lane counts as accuracy 0; ties: the
  smaller rate). The textbook's B stops near a training loss of ln 2 with 200 images at
  0.001: B-tuned is the baseline trained as well as its own validation data allow, so that a
  gain of B-on-A over it is not the under-training of B. Its rows carry the chosen rate.
- ``b_rate = "tuned"`` (a setting, default ``"learning_rate"``: the file's rate): B and
  B-on-A both train at B-tuned's choice for their class pair and train size (B's rows are
  then B-tuned's lanes at that rate, not a separate program), and ``unfreeze_lr`` defaults to
  it; A keeps the file's rate. A comparison of B-on-A variants with B (or with each other)
  then runs at a rate at which B from scratch is trained as well as its validation data
  allow, chosen on validation, never on test.
- ``b_rate = "tuned-per-arm"``: B is B-tuned's choice as above, and each B-on-A variant tunes
  its own rate the same way (the grid's rates as lanes of its program, the reused layers
  after unfreezing at the lane's rate unless ``unfreeze_lr`` is set; the best median final
  validation accuracy wins, a diverged lane counting as 0). A comparison of two variants, or
  of a variant with B, then compares each side trained as well as its own validation data
  allow: a variant that diverges at B's rate is not judged at that rate.
- ``pretext`` (a setting, default ``"classes"``): what A learns, from :data:`PRETEXTS`:
  the classes outside the pair (the textbook's task A), ``"autoencoder"`` (every training
  image of every class reconstructed through a linear output per pixel, labels unused:
  pretraining on unlabeled data, task B's own training images among them, as unlabeled
  images) or ``"rotation"`` (every training image given k random quarter turns, labelled k:
  an auxiliary task whose labels cost nothing). B-on-A reuses A's first hidden layers
  whatever A learned (the autoencoder's encoder: its hidden layers below the output).
- The B arms are evaluated on all task-B test images (curves: on the task-B validation
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
independent of B's; seed i's trained A feeds seed i's B-on-A (an A per seed and class pair,
shared by the settings of the B arms, see below). All seeds of an arm train in one ``jit(vmap)`` program (see
:func:`dnnbench.train.arm.train_arm`), three programs per class pair; with several pairs,
every split is padded to the largest pair's row count (padding is never drawn for training
and has weight 0 in evaluations), so that all pairs with the same steps per epoch share the
three programs instead of compiling their own.

Freezing (``make_tx`` hook of the engine, no second training loop)
------------------------------------------------------------------
:func:`transfer_tx` returns ``optax.multi_transform({"trainable": make_tx(spec, hp), "reused":
reuse.frozen_until(make_tx(spec, hp, learning_rate=unfreeze_lr), freeze_steps)}, labels)`` (each
part :func:`dnnbench.train.optim.make_tx` on its own tree, clipping too) where ``labels`` marks
``hidden_0..hidden_{K-1}`` as "reused". :func:`frozen_until` counts steps in its own state; while
``count < freeze_steps`` it returns updates of exactly ``-0.0`` (``jnp.where``, so a NaN or inf
gradient cannot leak through as ``0 * nan``) and keeps the inner optimizer's state unchanged;
afterwards it returns the inner optimizer's updates. ``-0.0`` rather than ``optax.set_to_zero``'s
``+0.0`` because ``p + (-0.0) == p`` bit for bit for every float ``p``, while ``-0.0 + 0.0`` is
``+0.0``: frozen layers stay *bitwise* unchanged (tested).

Sharing A (and B)
-----------------
A *group* is a class pair with one setting of every factor but ``stage``. Groups that differ
only in settings of the B arms (:data:`B_SETTINGS`: train_size, freeze_epochs,
unfreeze_epochs, unfreeze_lr, reuse_layers, b_rate) need the same model A: it is trained once per
distinct A (pair, A's run settings, seeds), in one unit together with every group that reuses
it, and its rows are written once (a B setting that differs between those groups is empty in
A's rows, and its factor is left out of A's arm name). Within such a unit, B from scratch is
trained once per distinct B (train size and spec: B-on-A variants that differ only in
reuse_layers or unfreeze_lr share it); its rows are written for every group, as each group's
B is the reference of its B-on-A.

Output
------
The common tables of the file layer (:mod:`dnnbench.run.plan`: one row per arm and
seed, the same metric columns as every experiment: final_test_accuracy, final_eval_accuracy,
...), with the protocol's columns :data:`STAGE_COLUMNS` before ``seed``:

- pair: ``"<pos>v<neg>"`` (e.g. "3v5"); pos_class, neg_class: the original labels of task B's
  positive and negative class; stage: "A" | "B" | "B-on-A";
- train_size: the B arms' training images (the group's setting, also in A's rows);
  train_examples: the images the stage trained on (A: every task-A training image);
- reuse_layers, freeze_epochs, unfreeze_epochs, unfreeze_lr: the group's B-on-A settings
  (reuse_layers resolved: all hidden layers by default; unfreeze_lr: the B arms' learning
  rate by default), in every stage's rows, so that levels stay comparable across stages;
- epochs_a: A's epochs; epochs: the stage's own epochs (A: epochs_a; B and B-on-A:
  freeze + unfreeze epochs).

``seed`` is the pairing seed i (A's PRNG seed is A_SEED_OFFSET + i); ``spec_hash`` is
``RunSpec.hash`` for A and B, for B-on-A a hash of B's and A's spec hashes and the transfer
settings (reuse_layers, freeze steps, unfreeze_lr). Curves: one evaluation per epoch on the
task's *validation* images (``step / eval_every`` is the epoch). ``compile_s``: with several
units the programs are shared (:class:`SharedPrograms`), so it is 0 where a unit reused one;
``step_ms`` is measured in every unit, or (``timing="first"``, the command's ``--pairs all``)
in the first one only and empty elsewhere.

The paired comparison B-on-A against B is the file layer's (reference ``stage = B``; A learns
another task and is not compared); the transfer figures (:mod:`dnnbench.report.transfer`)
show it per seed, and across class pairs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dnnbench import definition
from dnnbench.data import tasks
from dnnbench.data.base import Dataset
from dnnbench.definition import protocols
from dnnbench.definition.protocols import pair_label
from dnnbench.registry import plugins_of
from dnnbench.run import plan as train_plan
from dnnbench.run.units import Unit
from dnnbench.spec import RunSpec
from dnnbench.train import arm as trainer
from dnnbench.train import reuse
from dnnbench.train.engine import Rows

EXPERIMENT = "transfer"
DEFAULT_DATASET = "fashion-mnist"
A_SEED_OFFSET = 10_000
PRESET_FILE = "transfer-learning"  # the packaged file that `dnnbench transfer` runs
ARMS = ("A", "B", "B-on-A")  # the stages
# the protocol's settings that shape the B arms only (groups differing only in them share A)
B_SETTINGS = ("train_size", "freeze_epochs", "unfreeze_epochs", "unfreeze_lr", "reuse_layers",
              "b_rate", "b_rate_min", "b_rate_max")
# the rates a B arm is tuned over: the points of B_RATES (log-spaced, a factor ~3 apart)
# from the setting b_rate_min to b_rate_max; B_TUNED_GRID: the default, the textbook's 0.001
# up to 0.3
B_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
B_RATE_MIN, B_RATE_MAX = 0.001, 0.3


def b_grid(low: float = B_RATE_MIN, high: float = B_RATE_MAX) -> tuple[float, ...]:
    """The tuning grid: the points of :data:`B_RATES` from ``low`` to ``high``."""
    return tuple(r for r in B_RATES if low * (1 - 1e-9) <= r <= high * (1 + 1e-9))


B_TUNED_GRID = b_grid()


@dataclasses.dataclass(frozen=True)
class Pretext:
    """What model A learns: ``task(data, pos, neg)`` is its Dataset (task B's pair given),
    ``loss`` its training loss (a name of registry.LOSSES)."""

    task: Callable[[Dataset, int, int], Dataset]
    loss: str
    about: str


PRETEXTS: dict[str, Pretext] = {
    "classes": Pretext(lambda data, pos, neg: tasks.split_tasks(data, pos, neg)[0], "softmax",
                       "the classes outside task B's pair, relabelled (supervised)"),
    "autoencoder": Pretext(lambda data, pos, neg: tasks.unlabeled_task(data), "reconstruction",
                           "every image reconstructed, labels unused (unsupervised)"),
    "rotation": Pretext(lambda data, pos, neg: tasks.rotation_task(data), "softmax",
                        "each image's random quarter turns predicted (labels from the images)"),
}


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
    # the B arms' learning rate: "learning_rate" (the file's) or "tuned" (B-tuned's choice)
    b_rate: str = "learning_rate"
    pretext: str = "classes"  # what A learns (PRETEXTS)
    # the range of the grid that a tuned B arm's rate is chosen from (b_grid)
    b_rate_min: float = B_RATE_MIN
    b_rate_max: float = B_RATE_MAX
    seeds: tuple[int, ...] = tuple(range(20))

    @property
    def b_grid(self) -> tuple[float, ...]:
        return b_grid(self.b_rate_min, self.b_rate_max)

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
    return _spec(cfg, len(task_a.y_train), cfg.batch_size, cfg.epochs_a,
                 PRETEXTS[cfg.pretext].loss, extra)


def spec_b(cfg: TransferConfig, task_b: Dataset, extra: Extra = ()) -> RunSpec:
    n = len(task_b.y_train)
    return _spec(cfg, n, cfg.batch_size_b(n), cfg.epochs_b, "sigmoid", extra)


def steps_per_epoch(spec: RunSpec) -> int:
    return spec.eval_every


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
        cfgs = [cfgs] if isinstance(cfgs, TransferConfig) else list(cfgs)
        pairs = [(pair, cfg.train_size) for cfg in cfgs for pair in cfg.pairs]
        whole = any(cfg.pretext != "classes" for cfg in cfgs)  # an A on every image

        def rows(task_b: bool) -> Rows:
            """The largest split sizes of task A (or B) over the pairs (counted on labels, as
            ``split_tasks`` splits them; every image for a pretext other than classes)."""
            sizes = []
            for split in ("train", "val", "test"):
                y = data.split(split)[1]
                counts = [int((np.isin(y, pair) == task_b).sum()) for pair, _ in pairs]
                if whole and not task_b:
                    counts.append(len(y))
                if task_b and split == "train":
                    counts = [min(n, size) for n, (_, size) in zip(counts, pairs, strict=True)]
                sizes.append(max(counts))
            return Rows(*sizes)

        self.rows = {"A": rows(False), "B": rows(True), "B-on-A": rows(True),
                     "B-tuned": rows(True)}
        self.programs: dict[tuple, Any] = {}

    def train(self, arm: str, spec: RunSpec, task: Dataset, seeds, *, timing: bool,
              init_params=None, variant: tuple = (), **program_kwargs):
        """Train ``arm`` on ``task``, compiling its program only for the first pair that
        needs it (``compile_s`` is 0 for the pairs that reuse it); ``variant``: what else
        shapes the program (B-on-A's reused layers, frozen steps, learning rate after)."""
        key = (arm, spec.hash, len(task.y_train) // spec.batch_size, tuple(seeds), variant)
        compiled = self.programs.get(key)
        fresh = compiled is None
        if fresh:
            compiled = self.programs[key] = trainer.compile_arm(
                spec, task, seeds, init_params=init_params, rows=self.rows[arm],
                **program_kwargs)
        result = compiled.train(data=task, init_params=init_params, timing=timing)
        if not fresh:
            result = result._replace(timing=result.timing._replace(compile_s=0.0))
        return result


def a_settings(cfg: TransferConfig) -> tuple:
    """What model A depends on besides the class pair and the other run settings: configs
    that agree on it (and differ in :data:`B_SETTINGS` only) share one A."""
    return (cfg.widths, cfg.activation, cfg.init, cfg.optimizer, cfg.learning_rate,
            cfg.batch_size, cfg.epochs_a, cfg.pretext, tuple(cfg.seeds))


def _final_eval_accuracy(trace) -> np.ndarray:
    """Each lane's last evaluated accuracy (a diverged lane: 0)."""
    acc = np.asarray(trace.eval_acc, float)
    n = np.asarray(trace.n_done, int)
    last = np.array([acc[j, n[j] - 1] if n[j] else math.nan for j in range(len(n))])
    return np.where(np.asarray(trace.diverged, bool) | ~np.isfinite(last), 0.0, last)


def tune_b(train, sb: RunSpec, task_b: Dataset, seeds: Sequence[int], arm: str = "B-tuned",
           init_params=None, grid: Sequence[float] = B_TUNED_GRID, **kwargs):
    """``arm`` (B from scratch, or a B-on-A variant: ``init_params`` per seed and the
    engine's ``kwargs``) over ``grid`` (grid point-major lanes of one program): the spec at
    the rate with the best median final validation accuracy and that rate's lanes as an
    ArmResult over ``seeds``."""
    import jax

    n = len(seeds)
    lanes = {"learning_rate": [lr for lr in grid for _ in seeds]}
    if init_params is not None:  # seed i's layers for lane (rate k, seed i)
        kwargs["init_params"] = jax.tree_util.tree_map(
            lambda a: np.concatenate([np.asarray(a)] * len(grid)), init_params)
    res = train(arm, sb, task_b, list(seeds) * len(grid), hps=lanes, **kwargs)
    medians = np.median(_final_eval_accuracy(res.trace).reshape(len(grid), n), axis=1)
    k = int(np.argmax(medians))  # the first (smallest rate) of equal medians
    trace = jax.tree_util.tree_map(lambda a: np.asarray(a)[k * n:(k + 1) * n], res.trace)
    return dataclasses.replace(sb, learning_rate=grid[k]), res._replace(trace=trace)


def train_groups(cfgs: Sequence[TransferConfig], data: Dataset, pos: int, neg: int, *,
                 timing: bool = True, shared: SharedPrograms | None = None,
                 extra: Extra = (), tuned: bool = False) -> list[PairResult]:
    """Train A once for ``cfgs`` (settings of one class pair that share A: they differ in
    :data:`B_SETTINGS` only), then for each config B (once per distinct B: train size and
    spec) and B-on-A, from seed i's A for seed i; three vmapped programs per config, or the
    ``shared`` ones of a sweep over pairs. ``timing``: measure the steady-state step time of
    each arm too; ``extra``: further run settings of the stages' specs; ``tuned``: B-tuned
    too (:func:`tune_b`). One PairResult per config (their A is the same object)."""
    if len({a_settings(cfg) for cfg in cfgs}) != 1:
        raise ValueError("train_groups: the configs do not share model A")

    def train(arm, spec, task, seeds, **kwargs):
        if shared is None:
            return trainer.train_arm(spec, task, seeds, timing=timing, **kwargs)
        return shared.train(arm, spec, task, seeds, timing=timing, **kwargs)

    task_a = PRETEXTS[cfgs[0].pretext].task(data, pos, neg)
    sa = spec_a(cfgs[0], task_a, extra)
    seeds = tuple(cfgs[0].seeds)
    res_a = train("A", sa, task_a, [A_SEED_OFFSET + s for s in seeds], return_params=True)
    params_a = res_a.trace.params
    res_a = res_a._replace(trace=res_a.trace._replace(params=None))
    trained_b: dict[tuple, Any] = {}
    out = []
    for cfg in cfgs:
        _, task_b = tasks.split_tasks(data, pos, neg, cfg.train_size)
        sb = spec_b(cfg, task_b, extra)
        key = (cfg.train_size, sb.hash, cfg.b_rate, cfg.b_grid)
        if key not in trained_b:
            if cfg.b_rate == "learning_rate":
                trained_b[key] = sb, train("B", sb, task_b, seeds)
            if tuned or cfg.b_rate != "learning_rate":
                trained_b[key, "tuned"] = tune_b(train, sb, task_b, seeds,
                                                 grid=cfg.b_grid)
            if cfg.b_rate != "learning_rate":  # B: B-tuned's choice (its lanes at that rate)
                trained_b[key] = trained_b[key, "tuned"]
        sb_run, res_b = trained_b[key]
        per_arm = cfg.b_rate == "tuned-per-arm"
        # tuned per arm: the reused layers after unfreezing at the lane's rate (None)
        lr_after = None if per_arm and cfg.unfreeze_lr is None else unfreeze_lr(cfg, sb_run)
        freeze_steps = cfg.freeze_epochs * steps_per_epoch(sb)
        kwargs = {"init_params": reuse.hidden_layers(params_a, cfg.reused),
                  "merge_params": reuse.reuse_params,
                  "make_tx": reuse.transfer_tx(cfg.reused, freeze_steps, lr_after)}
        if shared is not None:
            kwargs["variant"] = (cfg.reused, freeze_steps, lr_after)
        if per_arm:
            st, res_t = tune_b(train, sb, task_b, seeds, "B-on-A",
                               grid=cfg.b_grid, **kwargs)
        else:
            st, res_t = sb_run, train("B-on-A", sb_run, task_b, seeds, **kwargs)
        specs = {"A": sa, "B": sb_run, "B-on-A": st}
        results = {"A": res_a, "B": res_b, "B-on-A": res_t}
        if tuned:
            specs["B-tuned"], results["B-tuned"] = trained_b[key, "tuned"]
        out.append(PairResult(task_a, task_b, specs, results))
    return out


def unfreeze_lr(cfg: TransferConfig, spec_b_arms: RunSpec) -> float:
    """The learning rate of B-on-A's reused layers after unfreezing: the file's unfreeze_lr,
    else the B arms' rate (``spec_b_arms``: the file's, or B-tuned's choice with b_rate
    "tuned")."""
    return spec_b_arms.learning_rate if cfg.unfreeze_lr is None else cfg.unfreeze_lr


def train_pair(cfg: TransferConfig, data: Dataset, pos: int, neg: int, *,
               timing: bool = True, shared: SharedPrograms | None = None,
               extra: Extra = ()) -> PairResult:
    """Train A, B and B-on-A of one config (see :func:`train_groups`)."""
    return train_groups([cfg], data, pos, neg, timing=timing, shared=shared, extra=extra)[0]


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


def preset(dataset: str, pairs: Sequence[tuple[int, int]] | None, seeds: int,
           settings: dict[str, Any]) -> definition.Experiment:
    """`dnnbench transfer`'s experiment: the packaged ``transfer-learning`` file named
    "transfer", on ``dataset`` with ``seeds`` seeds and the command's ``settings`` in its
    base (None values left out); ``pairs``: the class pairs as a factor (one pair: a base
    setting), None: the data set's default pair."""
    doc = definition.to_doc(definition.load(PRESET_FILE))
    base = doc["base"] | {k: v for k, v in settings.items() if v is not None}
    factors = doc["factors"]
    if pairs is not None and len(pairs) > 1:
        base.pop("pair", None)
        factors = {"pair": [pair_label(*p) for p in pairs], **factors}
    elif pairs is not None:
        base["pair"] = pair_label(*pairs[0])
    # (no "cost": the packaged file's describes its own grid; the report counts the units)
    return definition.parse(doc | {"name": EXPERIMENT, "dataset": dataset, "seeds": seeds,
                              "base": base, "factors": factors, "cost": ""},
                       f"{definition.find(PRESET_FILE)} (dnnbench transfer)")


@dataclasses.dataclass(frozen=True)
class Group:
    """The arms (stages) of one class pair and setting (groups that share A: one unit)."""

    index: int
    cfg: TransferConfig  # of one pair
    extra: Extra
    arms: tuple[definition.ArmSettings, ...]


def _pair(value: str, data: Dataset, where: str) -> tuple[int, int]:
    pair = tasks.default_pair(data) if value == "default" else tuple(
        int(c) for c in value.split("v"))
    try:
        tasks.check_pair(pair, data.n_classes)
    except ValueError as e:
        raise definition.ExperimentError(f"{where}: pair {value}: {e} in {data.name}") from None
    return pair


def plan(exp: definition.Experiment, data: Dataset, seeds: Sequence[int]) -> list[Group]:
    """The arms of a transfer file grouped by everything but the stage: one group per class
    pair and setting; ExperimentError for settings the data set cannot serve."""
    groups: dict[tuple, list[definition.ArmSettings]] = {}
    for arm in definition.expand(exp):
        groups.setdefault(tuple(lv for lv in arm.levels if lv[0] != "stage"), []).append(arm)
    out = []
    for i, arms in enumerate(groups.values()):
        s = arms[0].settings
        where = f"{exp.source} arm {arms[0].name}"
        pos, neg = _pair(s.get("pair", "default"), data, where)
        run = {k: v for k, v in s.items()
               if k not in protocols.TRANSFER.settings and k != "train_size"}
        probe = definition.make_spec(run, None, where)
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
            reuse_layers=s.get("reuse_layers"), b_rate=s.get("b_rate", "learning_rate"),
            pretext=s.get("pretext", "classes"), b_rate_min=s.get("b_rate_min", B_RATE_MIN),
            b_rate_max=s.get("b_rate_max", B_RATE_MAX), seeds=tuple(int(x) for x in seeds))
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
    if not 0 < cfg.train_size <= tasks.task_b_train_count(data, pos, neg):
        problems.append(f"train_size {cfg.train_size} is not in 1..{tasks.task_b_train_count(data, pos, neg)}"
                        f" (the task-B training images of pair {pair_label(pos, neg)})")
    if len(data.y_train) - tasks.task_b_train_count(data, pos, neg) < cfg.batch_size:
        problems.append(f"batch_size {cfg.batch_size} exceeds task A's training split")
    if not cfg.b_grid:
        problems.append(f"no rate of the grid {list(B_RATES)} lies between b_rate_min "
                        f"{cfg.b_rate_min} and b_rate_max {cfg.b_rate_max}")
    if cfg.pretext == "rotation" and tasks.image_side(data.n_features) is None:
        problems.append(f"pretext rotation needs square images, not {data.n_features} "
                        "features per example")
    if problems:
        raise definition.ExperimentError(f"{where}: {problems[0]} in {data.name}")


@dataclasses.dataclass(frozen=True)
class Source:
    """The groups that share one model A (one class pair, the same A settings): one unit."""

    index: int
    groups: tuple[Group, ...]

    @property
    def label(self) -> str:
        g = self.groups[0]
        shared = [f"{f}={definition.format_level(v)}" for f, v in a_levels(self.groups)
                  if f not in ("pair", "stage")]
        more = f", {len(self.groups)} B settings" if len(self.groups) > 1 else ""
        return ", ".join([f"pair {pair_label(*g.cfg.pairs[0])}", *shared]) + more


def sources(groups: Sequence[Group]) -> list[Source]:
    """``groups`` gathered by the model A they need (file order)."""
    by_a: dict[tuple, list[Group]] = {}
    for g in groups:
        by_a.setdefault((g.cfg.pairs, a_settings(g.cfg), g.extra), []).append(g)
    return [Source(i, tuple(gs)) for i, gs in enumerate(by_a.values())]


def program_count(groups: Sequence[Group]) -> int:
    """The programs :func:`train_groups` compiles for ``groups``, counted per unit (model A):
    A; per distinct B (train size, B's epochs, b_rate) B, or B-tuned's program of the grid
    when its rate is tuned, and B-tuned too when the file has that stage; one B-on-A per
    group. Several units share their programs (:class:`SharedPrograms`, where their steps
    per epoch agree): the largest unit's count."""
    counts = []
    for src in sources(groups):
        tuned = any(dict(a.levels)["stage"] == "B-tuned" for g in src.groups for a in g.arms)
        bs = {(g.cfg.train_size, g.cfg.epochs_b, g.cfg.b_rate) for g in src.groups}
        counts.append(1 + sum(1 + (tuned and rate == "learning_rate") for *_, rate in bs)
                      + len(src.groups))
    return max(counts)


def a_levels(groups: Sequence[Group]) -> list[tuple[str, Any]]:
    """The factor levels of A's arm when ``groups`` share it: those all groups have (a factor
    of the B arms whose level differs between them is left out)."""
    first = groups[0].arms[0].levels
    return [(f, v) for f, v in first
            if all(dict(g.arms[0].levels).get(f) == v for g in groups[1:])]


def build_file_units(exp: definition.Experiment, data: Dataset, seeds: Sequence[int], *,
                     timing: bool | str = True, one_program_per_arm: bool = False,
                     worker_data=None, lanes_per_unit: int | None = None
                     ) -> list[Unit]:
    """The units of a transfer file: one per model A (a class pair and A's settings), training
    A once and B and B-on-A for every group that shares it (the protocol's plug-in for
    :mod:`dnnbench.definition.protocols`). With several units their programs are shared
    (:class:`SharedPrograms`). ``timing``: measure the step time in every unit, only in the
    "first", or not at all (False); ``worker_data`` as for
    :func:`dnnbench.run.train_plan.build_units` (the units then carry a picklable recipe
    and run on an executor's workers). Arms are never lanes of one program here
    (``one_program_per_arm`` and ``lanes_per_unit`` change nothing)."""
    del one_program_per_arm, lanes_per_unit
    if timing not in (True, False, "first"):
        raise ValueError(f"timing must be True, False or 'first', got {timing!r}")
    groups = plan(exp, data, seeds)
    units_of = sources(groups)
    shared = SharedPrograms([g.cfg for g in groups], data) if len(units_of) > 1 else None
    units = []
    for src in units_of:
        pos, neg = src.groups[0].cfg.pairs[0]
        measure = bool(timing) and (timing != "first" or src.index == 0)

        def compute(src=src, pos=pos, neg=neg, measure=measure):
            tuned = any(dict(a.levels)["stage"] == "B-tuned" for g in src.groups
                        for a in g.arms)
            results = train_groups([g.cfg for g in src.groups], data, pos, neg, timing=measure,
                                   shared=shared, extra=src.groups[0].extra, tuned=tuned)
            return source_frames(exp, src, data, results)

        key = {"pair": (pos, neg), "timing": measure, "a_seed_offset": A_SEED_OFFSET,
               "code": _CODE_DIGEST, "experiment": exp.name,
               "groups": [sorted((dataclasses.asdict(g.cfg) | {"pairs": None, "extra": g.extra,
                                  "arms": [(a.name, a.levels) for a in g.arms]}).items())
                          for g in src.groups]}
        plugins = plugins_of(v for g in src.groups for _, v in g.extra)
        if plugins:  # an edited plug-in never reuses the results of its old code
            key["plugins"] = json.dumps(plugins, sort_keys=True)
        remote = None if worker_data is None else functools.partial(
            rebuild_unit, exp, worker_data, tuple(seeds), src.index, timing)
        units.append(Unit(src.label, (EXPERIMENT, sorted(key.items())), compute,
                          remote=remote))
    return units


def rebuild_unit(exp: definition.Experiment, worker_data: Callable[[], Dataset],
                 seeds: Sequence[int], index: int, timing: bool | str) -> Unit:
    """Unit ``index`` of :func:`build_file_units`, made anew in a worker's process."""
    return build_file_units(exp, worker_data(), seeds, timing=timing)[index]


def source_frames(exp: definition.Experiment, src: Source, data: Dataset,
                  results: Sequence[PairResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The common tables of one trained unit: A's rows once, then B's and B-on-A's rows of
    every group (in the file's order of the stages)."""
    runs, curves = [], []
    for k, (g, result) in enumerate(zip(src.groups, results, strict=True)):
        for arm in g.arms:
            stage = dict(arm.levels)["stage"]
            if stage == "A" and k > 0:
                continue  # A is shared: its rows come with the first group
            r, c = stage_frames(exp, g, arm, data, result, src.groups if stage == "A" else ())
            runs.append(r)
            curves.append(c)
    columns = max((list(r.columns) for r in runs), key=len)
    runs = pd.concat(runs, ignore_index=True)
    for col in ("train_size", "freeze_epochs", "unfreeze_epochs", "reuse_layers"):
        if runs[col].isna().any():  # left empty in A's rows: the others stay whole numbers
            runs[col] = runs[col].astype("Int64")
    return runs[columns + [c for c in runs.columns if c not in columns]], \
        pd.concat(curves, ignore_index=True)


def stage_frames(exp: definition.Experiment, g: Group, arm: definition.ArmSettings, data: Dataset,
                 result: PairResult, sharing: Sequence[Group] = ()
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows (a stage, every seed) of one arm of a trained group, with the stage's values
    of :data:`STAGE_COLUMNS`; ``sharing``: for A, the groups that share it (a level or B
    setting on which they differ is left out of A's name, and empty in its rows)."""
    cfg = g.cfg
    pos, neg = cfg.pairs[0]
    stage = dict(arm.levels)["stage"]
    sa, sb = result.specs["A"], result.specs["B"]
    freeze_steps = cfg.freeze_epochs * steps_per_epoch(sb)
    lr_after = unfreeze_lr(cfg, result.specs["B-on-A"])
    examples = {"A": len(result.task_a.y_train), "B": len(result.task_b.y_train),
                "B-on-A": len(result.task_b.y_train), "B-tuned": len(result.task_b.y_train)}
    epochs = {"A": cfg.epochs_a, "B": cfg.epochs_b, "B-on-A": cfg.epochs_b,
              "B-tuned": cfg.epochs_b}
    levels = dict(arm.levels)
    if len(sharing) > 1:
        kept = a_levels(sharing)
        levels = dict(kept)
        arm = dataclasses.replace(arm, name=",".join(
            f"{f}={definition.format_level(v)}" for f, v in kept), levels=tuple(kept))
    spec = result.specs[stage]
    planned = train_plan.PlannedArm(arm, spec, 0)
    r, c = train_plan.program_frames(exp, data, train_plan.Program(g.index, (planned,), spec, ()),
                                  result.results[stage], cfg.seeds)
    values = dict(zip(STAGE_COLUMNS, (
        pair_label(pos, neg), pos, neg, stage, cfg.train_size, examples[stage],
        cfg.reused, cfg.freeze_epochs, cfg.unfreeze_epochs, lr_after, cfg.epochs_a,
        epochs[stage]), strict=True))
    values |= {k: v for k, v in levels.items() if k in values}  # levels as the file names them
    for col in B_SETTINGS:
        if len({b_value(other.cfg, col) for other in sharing}) > 1:  # empty in A's rows
            values[col] = math.nan
    r = r.drop(columns=[k for k in values if k in r.columns])
    at = r.columns.get_loc("seed")
    for k, v in reversed(values.items()):
        r.insert(at, k, v)
    if stage == "B-on-A":
        r["spec_hash"] = _hash(spec.hash, sa.hash, cfg.reused, freeze_steps, lr_after)
    return r, c


def b_value(cfg: TransferConfig, setting: str):
    """The value of a B setting in ``cfg`` as its column shows it; a tuned rate, not known
    before training, stands as what it is chosen by: the grid and the train size (b_rate
    "tuned"), and the variant too ("tuned-per-arm")."""
    if cfg.unfreeze_lr is not None or cfg.b_rate == "learning_rate":
        lr_after = cfg.lr_after
    elif cfg.b_rate == "tuned":
        lr_after = ("tuned", cfg.b_grid, cfg.train_size)
    else:
        lr_after = ("tuned-per-arm", cfg.b_grid, cfg.train_size, cfg.reused,
                    cfg.freeze_epochs, cfg.unfreeze_epochs)
    return {"reuse_layers": cfg.reused, "unfreeze_lr": lr_after}.get(
        setting, getattr(cfg, setting, None))
