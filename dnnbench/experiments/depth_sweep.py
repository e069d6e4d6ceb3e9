"""Batch normalization vs none across network depth (the original blog experiment).

Fully connected nets on MNIST, hidden widths tapered 500, 400, 300, 200, 100, 50, 25 (depth d
uses the first d), He-normal init, Adam at 0.01, batch 500, BN after each dense layer and
before its activation (momentum 0.9), and the count of training steps needed to reach 90%
*test* accuracy, with and without BN. Each (activation, depth, bn) arm is one unit.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import pandas as pd

from dnnbench.experiments import files, generic
from dnnbench.experiments.common import Arm
from dnnbench.experiments.units import Unit
from dnnbench.registry import DEFAULT_INIT
from dnnbench.spec import TAPERED_WIDTHS, RunSpec
from dnnbench.stats import km_median, paired_censored_comparison

EXPERIMENT = "depth-sweep"
DEFAULT_DATASET = "mnist"

RUN_COLUMNS = [
    "experiment", "dataset", "arm", "depth", "widths", "activation", "init", "bn",
    "bn_position", "bn_momentum", "optimizer", "learning_rate", "batch_size", "seed", "target",
    "reached", "steps_to_target", "max_steps", "diverged", "final_test_accuracy",
    "best_test_accuracy", "compile_s", "step_ms", "eval_ms", "time_to_target_s", "spec_hash",
]
CURVE_COLUMNS = ["arm", "seed", "step", "train_loss", "test_accuracy"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DepthSweepConfig:
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    widths: tuple[int, ...] = TAPERED_WIDTHS  # depth d uses widths[:d]
    width: int | None = None  # all hidden layers this wide (overrides widths)
    activations: tuple[str, ...] = ("relu",)
    init: str | None = None  # None: the activation's default (DEFAULT_INIT)
    bn_arms: tuple[bool, ...] = (False, True)
    bn_momentum: float = 0.9
    bn_position: str = "before"
    bn_logits: bool = True  # the original normalized the logits too (BN arm only)
    optimizer: str = "adam"
    learning_rate: float = 0.01
    batch_size: int = 500
    target: float = 0.90
    eval_every: int = 10
    max_steps: int = 3000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)

    def layer_widths(self, depth: int) -> tuple[int, ...]:
        if self.width is not None:
            return (self.width,) * depth
        if depth > len(self.widths):
            raise ValueError(f"depth {depth} exceeds the {len(self.widths)} widths given; "
                             "use --width N for deeper nets")
        return tuple(self.widths[:depth])


def arm_name(activation: str, depth: int, bn: bool) -> str:
    return f"act={activation},depth={depth},bn={'on' if bn else 'off'}"


def build_arms(cfg: DepthSweepConfig) -> list[Arm]:
    arms = []
    for act in cfg.activations:
        for depth in cfg.depths:
            for bn in cfg.bn_arms:
                spec = RunSpec(
                    widths=cfg.layer_widths(depth), activation=act,
                    init=cfg.init or DEFAULT_INIT[act], norm="batch" if bn else "none",
                    norm_position=cfg.bn_position, bn_momentum=cfg.bn_momentum,
                    bn_logits=bn and cfg.bn_logits, optimizer=cfg.optimizer,
                    learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                    max_steps=cfg.max_steps, eval_every=cfg.eval_every, eval_split="test",
                    target=cfg.target, stop_at_target=True)
                arms.append(Arm(arm_name(act, depth, bn), spec))
    return arms


def experiment(cfg: DepthSweepConfig) -> files.Experiment:
    """The configuration as an experiment file: the packaged ``bn-depth`` protocol with the
    command's options (factors activation x depth x bn, in the legacy arms' order)."""
    base = {"activation": cfg.activations[0], "init": cfg.init or "default",
            "norm_position": cfg.bn_position, "bn_momentum": cfg.bn_momentum,
            "optimizer": cfg.optimizer, "learning_rate": cfg.learning_rate,
            "batch_size": cfg.batch_size, "max_steps": cfg.max_steps,
            "eval_every": cfg.eval_every, "eval_split": "test", "target": cfg.target,
            "stop_at_target": True}
    if cfg.width is not None:
        base["width"] = cfg.width
    else:
        base["widths"] = list(cfg.widths)
    levels = {False: ("off", {"norm": "none"}),
              True: ("on", {"norm": "batch", "bn_logits": cfg.bn_logits})}
    return files.parse({
        "name": EXPERIMENT, "dataset": DEFAULT_DATASET, "seeds": len(cfg.seeds),
        "base": base, "reference": {"bn": "off"} if False in cfg.bn_arms else {},
        "factors": {"activation": list(cfg.activations), "depth": list(cfg.depths),
                    "bn": dict(levels[b] for b in cfg.bn_arms)}}, f"{EXPERIMENT} command")


def legacy_frames(runs: pd.DataFrame, curves: pd.DataFrame):
    """The generic tables in this experiment's documented schema (RUN_COLUMNS)."""
    names = {a: arm_name(act, d, bn == "on") for a, act, d, bn in
             runs[["arm", "activation", "depth", "bn"]].drop_duplicates().itertuples(index=False)}
    runs = runs.assign(bn=runs["bn"] == "on", bn_position=runs["norm_position"],
                       best_test_accuracy=runs["best_eval_accuracy"], arm=runs["arm"].map(names))
    curves = curves.assign(arm=curves["arm"].map(names)).rename(
        columns={"eval_accuracy": "test_accuracy"})
    return runs, curves[CURVE_COLUMNS]


def _frames(dataset: str, runs: pd.DataFrame, curves: pd.DataFrame):
    runs, curves = legacy_frames(runs, curves)
    runs = runs.assign(dataset=dataset)[RUN_COLUMNS]
    runs["steps_to_target"] = runs["steps_to_target"].astype("Int64")
    return runs, curves


def build_units(cfg: DepthSweepConfig, data, worker_data=None) -> list[Unit]:
    """One unit per arm (every arm is its own structure), trained by the generic layer;
    ``worker_data`` (see :func:`generic.build_units`): the units can run on an executor."""
    return generic.build_units(experiment(cfg), data, cfg.seeds,
                               frames=functools.partial(_frames, data.name),
                               worker_data=worker_data)


def _censored(df: pd.DataFrame):
    """(times, reached, censor_at) of a block of runs; a diverged run is censored where it stopped."""
    return (df["steps_to_target"].astype(float).to_numpy(), df["reached"].to_numpy(bool),
            df["max_steps"].astype(float).to_numpy())


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (activation, depth, bn): reached n/N, KM median steps with its 95% interval,
    step and time-to-target, and for BN arms the paired BN/no-BN ratio of steps and a verdict."""
    rows = []
    for (act, depth, bn), g in runs.groupby(["activation", "depth", "bn"], sort=True):
        g = g.sort_values("seed")
        km = km_median(*_censored(g))
        step_ms = float(g["step_ms"].iloc[0])
        row = {"activation": act, "depth": int(depth), "bn": bool(bn), "n": km.n,
               "reached": km.n_reached, "diverged": int(g["diverged"].sum()),
               "median_steps": km.median, "steps_low": km.low, "steps_high": km.high,
               "step_ms": step_ms, "compile_s": float(g["compile_s"].iloc[0]),
               "time_to_target_s": km.median * step_ms / 1e3 if not math.isnan(km.median)
               else math.nan,
               "bn_ratio": math.nan, "bn_ratio_low": math.nan, "bn_ratio_high": math.nan,
               "bn_p": math.nan, "bn_verdict": ""}
        if bn:
            other = runs[(runs["activation"] == act) & (runs["depth"] == depth) & ~runs["bn"]]
            other = other.sort_values("seed")
            if len(other) and list(other["seed"]) == list(g["seed"]):
                cmp = paired_censored_comparison(*_censored(g), *_censored(other))
                row.update(bn_ratio=cmp.ratio, bn_ratio_low=cmp.low, bn_ratio_high=cmp.high,
                           bn_p=cmp.p_value, bn_verdict=cmp.verdict)
        rows.append(row)
    return pd.DataFrame(rows)
