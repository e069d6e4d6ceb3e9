"""Convergence speed and quality of the nine optimizers, measured (issue 4).

Reference protocol (the defaults of :class:`OptimizersConfig`): Fashion-MNIST (offline
fallback: digits), 3 hidden layers of 100 ReLU units, He-normal init, softmax over the classes,
batch 32, 10 epochs over the training split (``steps_per_epoch = n_train // batch``), the
validation split evaluated once per epoch (or every ``eval_every`` steps), the full budget
always trained (``stop_at_target=False``). Every optimizer of the registry runs at learning rate
0.001; all seeds of an optimizer are one vmapped program, and seed *i* of every arm uses the
same key (init and data order), so arms are paired.

Steps-to-target is computed *after* training, from the validation curves (``first_reach``). The
default target is relative: ``target_fraction`` (0.98) x the best median final validation
accuracy among the reported arms (default and, with tuning, tuned); an absolute target can be
given instead. Runs that never reach it are censored (Kaplan-Meier), not dropped.

Tuning (``tune=True``): per optimizer one program trains seeds x learning rates (the grid,
default 5 log-spaced values in [1e-4, 1e-1]) flattened on the vmapped axis; the learning rate
with the best median final validation accuracy is chosen, and the sweep's runs at that learning
rate are reported as the optimizer's "tuned" arm. The choice is made on the validation split, so
the tuned arm's validation numbers are optimistically biased; ``final_test_accuracy`` is not.

Units (resumable) store *raw* per-seed results that do not depend on the target; the
target-dependent columns and the tuned arms are derived by :func:`finalize` once all units are
done.

``optimizers-<dataset>-runs.csv``: one row per (arm, seed):

================== ==========================================================================
experiment         "optimizers"
dataset            data set actually used (e.g. "digits" after the offline fallback)
arm                "<optimizer>/default" or "<optimizer>/tuned"
optimizer          registry name (sgd, momentum, nesterov, adagrad, rmsprop, adam, adamax,
                   nadam, adamw)
learning_rate      learning rate of the run
lr_source          "default" (the configured lr) or "tuned" (chosen by the lr sweep)
depth, widths      hidden layers and their widths ("100-100-100")
activation, init   hidden activation and kernel initializer
batch_size         mini-batch size
epochs             epochs of the budget
seed               seed number (same number = same init key and data order in every arm)
target             validation accuracy counted as "reached" (NaN if undefined)
target_kind        "relative" (fraction x best median final val accuracy) or "absolute"
reached            bool: the validation accuracy reached ``target`` at some evaluation
steps_to_target    first evaluated step with val accuracy >= target (Int64, empty = censored)
max_steps          training steps of the budget (= censoring step of an unreached run)
diverged           bool: the training loss became NaN/inf (the run stopped there)
final_val_accuracy validation accuracy at the last evaluation (NaN if diverged)
best_val_accuracy  best validation accuracy over the evaluations performed
final_val_loss     validation loss at the last evaluation (NaN if diverged)
final_test_accuracy test accuracy after training (NaN if diverged)
compile_s          compile time of the arm's program (all seeds)
step_ms            steady-state ms per training step of all seeds vmapped together (compile
                   and evaluation excluded). Tuned rows carry their optimizer's default-arm
                   timing: the same compiled program (the lr is a traced input), so the same cost
eval_ms            ms per evaluation of all seeds on the validation split
time_to_target_s   steps_to_target x step_ms / 1000 (NaN when censored)
spec_hash          RunSpec.hash of the run's spec (learning rate included)
================== ==========================================================================

``optimizers-<dataset>-curves.csv``: one row per (arm, seed, evaluation): arm, optimizer,
learning_rate, seed, step, epoch (= step / steps_per_epoch), train_loss (mean over the steps
since the previous evaluation), val_loss, val_accuracy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dnnbench.experiments import files, generic
from dnnbench.experiments.common import Arm
from dnnbench.experiments.units import Unit
from dnnbench.registry import OPTIMIZERS
from dnnbench.spec import RunSpec
from dnnbench.stats import (
    km_median,
    mean_ci,
    paired_censored_comparison,
    paired_difference,
    star_ratings,
    verdict_from_interval,
)
from dnnbench.train.arm import ArmResult, train_arm
from dnnbench.train.engine import first_reach

EXPERIMENT = "optimizers"
DEFAULT_DATASET = "fashion-mnist"
DEFAULT_TUNE_GRID = tuple(float(v) for v in np.logspace(-4, -1, 5))
BASELINE = "sgd"  # the "vs SGD (paired)" column compares every arm with this optimizer

# The reference textbook's ratings, (convergence speed, convergence quality), 1-3 stars, "from
# experience" (its table of optimizer comparisons). AdaGrad: fast but "stops too early";
# RMSProp is given 2 or 3 stars for quality there: we keep 2.
TEXTBOOK_STARS: dict[str, tuple[int, int]] = {
    "sgd": (1, 3),
    "momentum": (2, 3),
    "nesterov": (2, 3),
    "adagrad": (3, 1),
    "rmsprop": (3, 2),
    "adam": (3, 2),
    "adamax": (3, 2),
    "nadam": (3, 2),
    "adamw": (3, 2),
}

RUN_COLUMNS = [
    "experiment", "dataset", "arm", "optimizer", "learning_rate", "lr_source", "depth", "widths",
    "activation", "init", "batch_size", "epochs", "seed", "target", "target_kind", "reached",
    "steps_to_target", "max_steps", "diverged", "final_val_accuracy", "best_val_accuracy",
    "final_val_loss", "final_test_accuracy", "compile_s", "step_ms", "eval_ms",
    "time_to_target_s", "spec_hash",
]
CURVE_COLUMNS = ["arm", "optimizer", "learning_rate", "seed", "step", "epoch", "train_loss",
                 "val_loss", "val_accuracy"]
TARGET_COLUMNS = ["target", "target_kind", "reached", "steps_to_target", "time_to_target_s"]
RAW_COLUMNS = [c for c in RUN_COLUMNS if c not in TARGET_COLUMNS]


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizersConfig:
    optimizers: tuple[str, ...] = tuple(OPTIMIZERS)
    learning_rate: float = 0.001  # for every optimizer without an override
    lr_overrides: tuple[tuple[str, float], ...] = ()  # (name, lr) pairs
    widths: tuple[int, ...] = (100, 100, 100)
    activation: str = "relu"
    init: str = "he-normal"
    batch_size: int = 32
    epochs: int = 10
    eval_every: int | None = None  # steps between evaluations; None = once per epoch
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    target: float | None = None  # absolute val-accuracy target; None = relative
    target_fraction: float = 0.98  # relative target = fraction x best median final val acc
    tune: bool = False
    tune_grid: tuple[float, ...] = DEFAULT_TUNE_GRID

    def lr_for(self, optimizer: str) -> float:
        return float(dict(self.lr_overrides).get(optimizer, self.learning_rate))

    def steps_per_epoch(self, n_train: int) -> int:
        return n_train // self.batch_size

    def eval_every_steps(self, n_train: int) -> int:
        return self.eval_every or self.steps_per_epoch(n_train)

    def max_steps(self, n_train: int) -> int:
        """The step budget: ``epochs`` epochs, cut to a whole number of evaluation intervals."""
        every = self.eval_every_steps(n_train)
        return (self.epochs * self.steps_per_epoch(n_train)) // every * every


def make_spec(cfg: OptimizersConfig, optimizer: str, learning_rate: float,
              n_train: int) -> RunSpec:
    """The RunSpec of one arm. It holds no target (steps-to-target is computed afterwards)."""
    return RunSpec(
        widths=cfg.widths, activation=cfg.activation, init=cfg.init, loss="softmax",
        optimizer=optimizer, learning_rate=float(learning_rate), batch_size=cfg.batch_size,
        max_steps=cfg.max_steps(n_train), eval_every=cfg.eval_every_steps(n_train),
        eval_split="val", target=0.0, stop_at_target=False)


def arm_name(optimizer: str, lr_source: str) -> str:
    return f"{optimizer}/{lr_source}"


def build_arms(cfg: OptimizersConfig, n_train: int) -> list[Arm]:
    """One arm per optimizer at its default (configured) learning rate."""
    return [Arm(arm_name(o, "default"), make_spec(cfg, o, cfg.lr_for(o), n_train),
                (("optimizer", o), ("lr_source", "default")))
            for o in cfg.optimizers]


# ------------------------------------------------------------------ raw (target-free) frames

def experiment(cfg: OptimizersConfig, *, sweep: bool = False) -> files.Experiment:
    """The configuration as an experiment: one arm per optimizer at its learning rate (named
    levels of the factor ``optimizer``), or, for the tuning sweep, optimizer x learning rate
    (the learning rates are lanes: one program per optimizer)."""
    base = {"widths": list(cfg.widths), "activation": cfg.activation, "init": cfg.init,
            "batch_size": cfg.batch_size, "epochs": cfg.epochs,
            "eval_every": cfg.eval_every or "epoch", "eval_split": "val", "target": 0.0,
            "stop_at_target": False}
    if sweep:
        factors = {"optimizer": list(cfg.optimizers),
                   "learning_rate": [float(v) for v in cfg.tune_grid]}
    else:
        factors = {"optimizer": {o: {"optimizer": o, "learning_rate": cfg.lr_for(o)}
                                 for o in cfg.optimizers}}
    return files.parse({"name": EXPERIMENT, "dataset": DEFAULT_DATASET, "base": base,
                        "factors": factors}, f"{EXPERIMENT} command")


def raw_frames(cfg: OptimizersConfig, data, lr_source: str, runs: pd.DataFrame,
               curves: pd.DataFrame):
    """The generic tables of a unit as this experiment's raw (target-free) frames."""
    spe = cfg.steps_per_epoch(len(data.y_train))
    names = {a: arm_name(o, lr_source) for a, o in
             runs[["arm", "optimizer"]].drop_duplicates().itertuples(index=False)}
    lrs = runs.drop_duplicates("arm").set_index("arm")["learning_rate"]
    runs = runs.assign(arm=runs["arm"].map(names), lr_source=lr_source, epochs=cfg.epochs,
                       dataset=data.name).rename(columns={
        "final_eval_accuracy": "final_val_accuracy", "best_eval_accuracy": "best_val_accuracy",
        "final_eval_loss": "final_val_loss"})
    if lr_source == "sweep":
        runs = runs.assign(step_ms=math.nan, eval_ms=math.nan)
    curves = curves.assign(
        learning_rate=curves["arm"].map(lrs), optimizer=curves["arm"].map(names).str.split(
            "/").str[0], arm=curves["arm"].map(names), epoch=curves["step"] / spe).rename(
        columns={"eval_loss": "val_loss", "eval_accuracy": "val_accuracy"})
    return runs[RAW_COLUMNS], curves[CURVE_COLUMNS]


def sweep_lrs(seeds: Sequence[int],
              lrs: Sequence[float]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Seeds x lrs flattened for one vmapped program: lr-major, the seed list repeated."""
    flat_seeds = tuple(int(s) for _ in lrs for s in seeds)
    flat_lrs = tuple(float(lr) for lr in lrs for _ in seeds)
    return flat_seeds, flat_lrs


def train_lr_sweep(spec: RunSpec, data, seeds: Sequence[int], lrs: Sequence[float],
                   **train_kwargs) -> ArmResult:
    """Every (learning rate, seed) of ``spec`` in ONE compiled program (lr-major order)."""
    flat_seeds, flat_lrs = sweep_lrs(seeds, lrs)
    return train_arm(spec, data, flat_seeds, hps={"learning_rate": flat_lrs}, **train_kwargs)


def build_units(cfg: OptimizersConfig, data) -> list[Unit]:
    """Default arms (one unit each), then, with ``tune``, one lr-sweep unit per optimizer,
    trained by the generic layer."""
    seeds = tuple(int(s) for s in cfg.seeds)
    units = generic.build_units(experiment(cfg), data, seeds,
                                frames=lambda r, c: raw_frames(cfg, data, "default", r, c))
    if cfg.tune:
        units += generic.build_units(experiment(cfg, sweep=True), data, seeds, timing=False,
                                     frames=lambda r, c: raw_frames(cfg, data, "sweep", r, c))
    return units


# ------------------------------------------------------------------ after all units: finalize

def _median_final(g: pd.DataFrame) -> float:
    """Median final val accuracy of a block of runs; a diverged run counts as accuracy 0."""
    return float(np.median(g["final_val_accuracy"].fillna(0.0).to_numpy(float)))


def choose_lr(sweep: pd.DataFrame) -> tuple[float, dict[float, float]]:
    """The lr with the best median final val accuracy (ties: the smaller lr), and all medians."""
    medians = {float(lr): _median_final(g) for lr, g in sweep.groupby("learning_rate", sort=True)}
    best = max(medians, key=lambda lr: (medians[lr], -lr))
    return best, medians


def relative_target(runs: pd.DataFrame, fraction: float) -> float:
    """``fraction`` x the best (over arms) median final validation accuracy; NaN if none > 0."""
    best = max((_median_final(g) for _, g in runs.groupby("arm")), default=math.nan)
    return fraction * best if best > 0 else math.nan


def steps_to_target(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """(arm, seed, steps_to_target) from the validation curves; None = never reached."""
    out = []
    for (arm, seed), g in curves.groupby(["arm", "seed"], sort=False):
        g = g.sort_values("step")
        steps = None if math.isnan(target) else first_reach(
            g["step"].to_numpy(), g["val_accuracy"].to_numpy(float), len(g), target)
        out.append({"arm": arm, "seed": seed, "steps_to_target": steps})
    return pd.DataFrame(out, columns=["arm", "seed", "steps_to_target"])


def finalize(cfg: OptimizersConfig, runs: pd.DataFrame, curves: pd.DataFrame):
    """Raw unit frames -> the documented runs/curves frames, plus tuning information for meta.

    Picks each optimizer's tuned lr from its sweep, keeps only default and tuned arms, sets the
    target (relative or absolute) and derives reached / steps_to_target / time_to_target_s."""
    is_sweep = runs["lr_source"] == "sweep"
    default_runs, sweep_runs = runs[~is_sweep], runs[is_sweep]
    parts, curve_parts, tuning = [], [], {}
    for o in cfg.optimizers:
        d = default_runs[default_runs["optimizer"] == o]
        parts.append(d)
        curve_parts.append(curves[curves["arm"] == arm_name(o, "default")])
        s = sweep_runs[sweep_runs["optimizer"] == o]
        if s.empty:
            continue
        lr, medians = choose_lr(s)
        sweep_compile_s = float(s["compile_s"].iloc[0])
        t = s[s["learning_rate"] == lr].copy()
        t["arm"], t["lr_source"] = arm_name(o, "tuned"), "tuned"
        if not d.empty:  # same program as the default arm (lr is traced): same cost per step
            for c in ("compile_s", "step_ms", "eval_ms"):
                t[c] = float(d[c].iloc[0])
        parts.append(t)
        sc = curves[(curves["arm"] == arm_name(o, "sweep")) & (curves["learning_rate"] == lr)]
        curve_parts.append(sc.assign(arm=arm_name(o, "tuned")))
        tuning[o] = {"grid": sorted(medians), "median_final_val_accuracy":
                     [medians[k] for k in sorted(medians)], "chosen_lr": lr,
                     "sweep_compile_s": sweep_compile_s}
    out = pd.concat(parts, ignore_index=True)
    out_curves = pd.concat(curve_parts, ignore_index=True)[CURVE_COLUMNS]

    if cfg.target is None:
        target, kind = relative_target(out, cfg.target_fraction), "relative"
    else:
        target, kind = float(cfg.target), "absolute"
    reach = steps_to_target(out_curves, target)
    out = out.merge(reach, on=["arm", "seed"], how="left", validate="one_to_one")
    out["target"], out["target_kind"] = target, kind
    out["steps_to_target"] = out["steps_to_target"].astype("Int64")
    out["reached"] = out["steps_to_target"].notna()
    out["time_to_target_s"] = out["steps_to_target"].astype(float) * out["step_ms"] / 1e3
    info = {"target": target, "target_kind": kind, "target_fraction": cfg.target_fraction,
            "tuning": tuning}
    return out[RUN_COLUMNS], out_curves, info


# ------------------------------------------------------------------ summary (table rows)

def _censored(g: pd.DataFrame):
    """(times, reached, censor_at): an unreached run is censored at the end of its budget."""
    return (g["steps_to_target"].astype(float).to_numpy(), g["reached"].to_numpy(bool),
            g["max_steps"].astype(float).to_numpy())


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return len(a) > 0 and list(a["seed"]) == list(b["seed"])


def summarize(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per arm, sorted by convergence speed (KM median steps, unreached last).

    Columns: arm, optimizer, learning_rate, lr_source, n, reached, diverged, median_steps,
    steps_low, steps_high (KM median and 95% interval; NaN high = beyond the budget),
    acc, acc_low, acc_high (mean final val accuracy, 95% CI), test_acc(+_low/_high), step_ms,
    compile_s, time_to_target_s, speed_ratio(+_low/_high: paired KM-median ratio to the
    fastest arm), speed_stars, quality_stars, book_speed, book_quality, and vs the baseline
    optimizer with the same lr_source (paired by seed): sgd_ratio(+_low/_high/_verdict) of
    steps, sgd_pairs_faster/_slower (seeds where the arm reached first / later), and
    sgd_diff(+_low/_high/_verdict) of final val accuracy (empty for the baseline itself or
    when it was not run).

    Measured stars (``stats.star_ratings``): quality from the mean final val accuracy and its
    CI; speed from each arm's paired ratio of steps to the fastest arm (KM medians) and its
    paired bootstrap CI -- with a handful of seeds the KM interval of a median is mostly
    unbounded above, which would tie every arm, while the paired ratio uses the pairing.
    """
    rows = []
    arms = {a: g.sort_values("seed") for a, g in runs.groupby("arm", sort=False)}
    for arm, g in arms.items():
        km = km_median(*_censored(g))
        acc = mean_ci(g["final_val_accuracy"])
        test = mean_ci(g["final_test_accuracy"])
        step_ms = float(g["step_ms"].iloc[0])
        o, src = g["optimizer"].iloc[0], g["lr_source"].iloc[0]
        rows.append({
            "arm": arm, "optimizer": o, "learning_rate": float(g["learning_rate"].iloc[0]),
            "lr_source": src, "n": km.n, "reached": km.n_reached,
            "diverged": int(g["diverged"].sum()), "median_steps": km.median,
            "steps_low": km.low, "steps_high": km.high, "acc": acc.estimate, "acc_low": acc.low,
            "acc_high": acc.high, "test_acc": test.estimate, "test_acc_low": test.low,
            "test_acc_high": test.high, "step_ms": step_ms,
            "compile_s": float(g["compile_s"].iloc[0]),
            "time_to_target_s": km.median * step_ms / 1e3,
            "book_speed": TEXTBOOK_STARS.get(o, (math.nan, math.nan))[0],
            "book_quality": TEXTBOOK_STARS.get(o, (math.nan, math.nan))[1],
        })
    s = pd.DataFrame(rows)
    if s.empty:
        return s

    # speed: paired ratio of steps to the fastest arm
    fastest = s.loc[s["median_steps"].idxmin(), "arm"] if s["median_steps"].notna().any() else None
    ratio = []
    for arm in s["arm"]:
        if fastest is None:
            ratio.append((math.nan, math.nan, math.nan))
        elif arm == fastest:
            ratio.append((1.0, 1.0, 1.0))
        elif _paired(arms[arm], arms[fastest]):
            c = paired_censored_comparison(*_censored(arms[arm]), *_censored(arms[fastest]))
            ratio.append((c.ratio, c.low, c.high))
        else:  # not paired: no interval (never tied by overlap)
            km_a = s.loc[s["arm"] == arm, "median_steps"].iloc[0]
            km_f = s.loc[s["arm"] == fastest, "median_steps"].iloc[0]
            r = km_a / km_f
            ratio.append((r, r, r))
    s["speed_ratio"], s["speed_ratio_low"], s["speed_ratio_high"] = map(list, zip(*ratio))
    s["speed_stars"] = star_ratings(s["speed_ratio"], s["speed_ratio_low"],
                                    s["speed_ratio_high"], higher_is_better=False)
    s["quality_stars"] = star_ratings(s["acc"], s["acc_low"], s["acc_high"],
                                      higher_is_better=True)

    # vs the baseline optimizer, like for like (default vs default, tuned vs tuned)
    cmp_cols = {k: [] for k in ("sgd_ratio", "sgd_ratio_low", "sgd_ratio_high", "sgd_ratio_verdict",
                                "sgd_pairs_faster", "sgd_pairs_slower", "sgd_diff",
                                "sgd_diff_low", "sgd_diff_high", "sgd_diff_verdict")}
    for _, r in s.iterrows():
        base = arms.get(arm_name(baseline, r["lr_source"]))
        a = arms[r["arm"]]
        if r["optimizer"] == baseline or base is None or not _paired(a, base):
            vals = (math.nan, math.nan, math.nan, "", 0, 0, math.nan, math.nan, math.nan, "")
        else:
            c = paired_censored_comparison(*_censored(a), *_censored(base))
            d = paired_difference(a["final_val_accuracy"], base["final_val_accuracy"])
            if d.n == 0:  # e.g. every run of one arm diverged
                v = "no finite pairs"
            else:
                v = verdict_from_interval(d.low, d.high, better="higher",
                                          labels=("more accurate", "less accurate",
                                                  "no clear difference"), n=d.n)
            vals = (c.ratio, c.low, c.high, c.verdict, c.n_pairs_a_faster, c.n_pairs_b_faster,
                    d.mean_diff, d.low, d.high, v)
        for k, v in zip(cmp_cols, vals, strict=True):
            cmp_cols[k].append(v)
    for k, v in cmp_cols.items():
        s[k] = v

    s["_unreached"] = s["median_steps"].isna()
    s = s.sort_values(["_unreached", "median_steps", "acc"], ascending=[True, True, False],
                      kind="stable").drop(columns="_unreached")
    return s.reset_index(drop=True)
