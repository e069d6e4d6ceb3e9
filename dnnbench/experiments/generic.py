"""The generic experiment layer: an experiment file -> arms -> one program per structure ->
one tidy table -> one summary -> claims.

Arms whose specs differ only in lane values (``spec.group_spec``: learning rate, optimizer
coefficients, penalties, dropout rate, clipping threshold, BN momentum) are trained by ONE
compiled program whose lanes are arms x seeds (arm-major: lane ``a * n_seeds + i`` is seed
``i`` of arm ``a``); such a group is one resumable unit. ``one_program_per_arm`` makes every
arm its own program (to measure what lanes save, and to test that they change nothing).

``<name>-<dataset>-runs.csv``: one row per (arm, seed): experiment, dataset, arm, the
factors' levels (a factor with named levels, e.g. ``bn``, is a column of level names), every
run setting of the arm (the columns of :data:`files.COLUMN_ORDER`, the optimizer's
coefficients and the schedule's parameters with their defaults resolved), seed, and the
metrics: reached, steps_to_target (first evaluated step whose eval-split accuracy >= target;
empty = censored), steps_done, diverged, final_eval_accuracy, best_eval_accuracy,
final_eval_loss, final_train_loss (mean training loss of the last evaluation period,
penalties included), final_test_accuracy, final_test_loss, compile_s (the program's),
step_ms (the arm's share of one step of its program: program step time x arm lanes /
program lanes), eval_ms (likewise), time_to_target_s, program (index of the compiled
program), program_lanes, spec_hash.
A file with ``[tune]`` (:mod:`files`) also has tuned arms (factor ``lr_source``): each is
trained as its sweep, one planned arm per grid point in the lanes of its structure's program,
and :func:`choose_tuned` keeps the point with the best median (its rows renamed to the tuned
arm) and drops the others before the target is found.
``<name>-<dataset>-curves.csv``: arm, seed, step, train_loss, eval_loss, eval_accuracy,
learning_rate (the schedule's, at the last step before the evaluation).
``<name>-<dataset>-layers.csv`` (experiments with ``diagnostics = true``): arm, seed, step
(0, then each evaluation), layer (0 = the first hidden layer) and the columns of
:data:`dnnbench.train.engine.DIAG_COLUMNS`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.experiments.files import (
    BOUND_EXPECTATIONS,
    EXPECTATIONS,
    MARGIN_EXPECTATIONS,
    POINT,
    RANKING,
    ArmSettings,
    Experiment,
    expand,
    format_level,
    lower_is_better,
    make_spec,
    settings_table,
    tune_sweep,
)
from dnnbench.experiments.units import Once, Unit
from dnnbench.spec import (
    OPTIMIZER_PREFIX,
    SCHEDULE_PREFIX,
    RunSpec,
    group_spec,
    lane_values,
    structure_key,
)
from dnnbench.stats import (
    MIN_SEEDS_FOR_VERDICT,
    calibration,
    km_median,
    mean_ci,
    paired_censored_comparison,
    paired_difference,
    steps_of_runs,
    verdict_from_interval,
)
from dnnbench.stats.censored import STEP_LABELS
from dnnbench.train.engine import first_reach

CURVE_COLUMNS = ["arm", "seed", "step", "train_loss", "eval_loss", "eval_accuracy",
                 "learning_rate"]
METRIC_COLUMNS = ["seed", "reached", "steps_to_target", "steps_done", "diverged",
                  "final_eval_accuracy", "best_eval_accuracy", "final_eval_loss",
                  "final_train_loss", "final_test_accuracy", "final_test_loss", "compile_s",
                  "step_ms", "eval_ms", "time_to_target_s", "program", "program_lanes",
                  "spec_hash"]


@dataclasses.dataclass(frozen=True)
class PlannedArm:
    settings: ArmSettings
    spec: RunSpec
    train_size: int  # 0 = the whole training split

    @property
    def name(self) -> str:
        return self.settings.name


@dataclasses.dataclass(frozen=True)
class Program:
    """Arms of one structure, trained as the lanes of one compiled program."""

    index: int
    arms: tuple[PlannedArm, ...]
    spec: RunSpec  # the group's spec (spec.group_spec)
    lanes: tuple[str, ...]  # names of the lane values of the program
    part: tuple[int, int] = (0, 1)  # (i, n): the i-th of n parts of the structure's arms

    @property
    def label(self) -> str:
        if len(self.arms) == 1:
            return self.arms[0].name
        of = f", part {self.part[0] + 1}/{self.part[1]}" if self.part[1] > 1 else ""
        return (f"program {self.index + 1}{of}: {len(self.arms)} arms "
                f"({self.arms[0].name}, ...)")

    def lane_values(self, n_seeds: int) -> dict[str, list[float]]:
        values = [lane_values(a.spec) for a in self.arms]
        return {k: [v[k] for v in values for _ in range(n_seeds)] for k in self.lanes}


def plan(exp: Experiment, n_train: int, *, one_program_per_arm: bool = False) -> list[Program]:
    """The arms of ``exp`` grouped into programs (by structure and training-split size)."""
    arms = []
    for arm in expand(exp):
        # a tuned arm is trained as its sweep (the grid's points: lanes of its structure)
        for a in [s for s, _ in tune_sweep(exp, arm)] or [arm]:
            size = int(a.settings.get("train_size", 0) or 0)
            n = min(n_train, size) if size else n_train
            arms.append(PlannedArm(a, make_spec(a.settings, n, f"{exp.source} arm {a.name}"),
                                   size if size and size < n_train else 0))
    groups: dict[Any, list[PlannedArm]] = {}
    stages = ({p.name: p.stage for p in exp.search.points} if exp.search is not None else {})
    for a in arms:
        # a search's stages are separate programs: a later stage leaves earlier units as
        # they were (their results are reused)
        stage = stages.get(dict(a.settings.levels).get(POINT), 0)
        key = a.name if one_program_per_arm else (structure_key(a.spec), a.train_size, stage)
        groups.setdefault(key, []).append(a)
    programs = []
    for i, members in enumerate(groups.values()):
        spec, lanes = group_spec([a.spec for a in members])
        programs.append(Program(i, tuple(members), spec, lanes))
    return programs


def split_lanes(programs: list[Program], n_seeds: int, lanes_per_unit: int | None
                ) -> list[Program]:
    """Each program cut into parts of at most ``lanes_per_unit`` lanes (whole arms: an arm's
    seeds stay together; at least one arm per part), so that the arms of one structure (a
    search over numbers) can be computed by several workers. Every part keeps its structure's
    spec and lane names, so equal parts run one compiled program (compiled once where the
    workers share a compile cache); ``None``: one part per program."""
    if not lanes_per_unit:
        return programs
    per_part = max(1, lanes_per_unit // max(n_seeds, 1))
    out = []
    for prog in programs:
        chunks = [prog.arms[i:i + per_part] for i in range(0, len(prog.arms), per_part)]
        out += [dataclasses.replace(prog, arms=arms, part=(i, len(chunks)))
                for i, arms in enumerate(chunks)]
    return out


def compiled_programs(units: list[Unit]) -> int:
    """The distinct programs that ``units`` compile (parts of one structure with equal lane
    counts share one)."""
    return len({u.program if u.program is not None else id(u) for u in units})


def subset(data, train_size: int):
    """The first ``train_size`` training examples of ``data`` (0: all of it)."""
    if not train_size:
        return data
    return dataclasses.replace(data, x_train=data.x_train[:train_size],
                               y_train=data.y_train[:train_size],
                               source=f"{data.source} (first {train_size} training examples)")


def build_units(exp: Experiment, data, seeds: Sequence[int], *, timing: bool = True,
                one_program_per_arm: bool = False,
                worker_data: Callable[[], Any] | None = None,
                lanes_per_unit: int | None = None) -> list[Unit]:
    """One resumable unit per program (or per part of at most ``lanes_per_unit`` lanes, see
    :func:`split_lanes`), each giving the common tables (:func:`program_frames`).
    ``worker_data``, a picklable callable that loads ``data`` in another process, makes the
    units runnable on an executor's workers (each unit's ``remote``: :func:`rebuild_unit`)."""
    from dnnbench.train.arm import compile_arm
    from dnnbench.train.devices import compile_ahead

    seeds = tuple(int(s) for s in seeds)
    units = []
    programs = plan(exp, len(data.y_train), one_program_per_arm=one_program_per_arm)
    for index, prog in enumerate(split_lanes(programs, len(seeds), lanes_per_unit)):
        task = subset(data, prog.arms[0].train_size)
        flat_seeds = seeds * len(prog.arms)
        hps = prog.lane_values(len(seeds))
        prepare = Once(lambda prog=prog, task=task, flat_seeds=flat_seeds, hps=hps: compile_arm(
            prog.spec, task, flat_seeds, hps=hps))

        def compute(prog=prog, prepare=prepare):
            result = prepare.take().train(timing=timing)
            return program_frames(exp, data, prog, result, seeds)

        key = ("generic", prog.spec.hash, prog.lanes, seeds,
               tuple((a.name, a.spec.hash, a.settings.levels) for a in prog.arms),
               prog.arms[0].train_size, timing)
        remote = None if worker_data is None else functools.partial(
            rebuild_unit, exp, worker_data, seeds, index, timing, one_program_per_arm,
            lanes_per_unit)
        units.append(Unit(prog.label, key, compute, prepare if compile_ahead() else None,
                          remote, (prog.index, len(prog.arms))))
    return units


def rebuild_unit(exp: Experiment, worker_data: Callable[[], Any], seeds: Sequence[int],
                 index: int, timing: bool, one_program_per_arm: bool,
                 lanes_per_unit: int | None = None) -> Unit:
    """Unit ``index`` of ``build_units`` made anew in a worker's process (its data loaded
    there): what an executor ships instead of the unit's closures."""
    data = worker_data()
    return build_units(exp, data, seeds, timing=timing, one_program_per_arm=one_program_per_arm,
                       lanes_per_unit=lanes_per_unit)[index]


def _last(values: np.ndarray, n: int) -> float:
    finite = values[:n][np.isfinite(values[:n])]
    return float(finite[-1]) if finite.size else math.nan


def program_frames(exp: Experiment, data, prog: Program, result, seeds: Sequence[int]):
    """Runs and curves of every arm of a trained program."""
    tr, tm = result.trace, result.timing
    n_seeds, n_lanes = len(seeds), len(prog.arms) * len(seeds)
    rows, curves, layers = [], [], []
    share = n_seeds / n_lanes  # an arm's part of its program's step and evaluation
    step_ms = tm.step_ms * share
    for a_idx, arm in enumerate(prog.arms):
        spec = arm.spec
        columns = arm_columns(exp, arm)
        target = spec.target if spec.target > 0 else None
        for i, seed in enumerate(seeds):
            j = a_idx * n_seeds + i
            n = int(tr.n_done[j])
            diverged = bool(tr.diverged[j])
            acc = np.asarray(tr.eval_acc[j], float)
            steps = None if (diverged or target is None) else first_reach(tr.steps[j], acc, n,
                                                                          target)
            valid = acc[:n][np.isfinite(acc[:n])]
            rows.append({
                **columns, "seed": int(seed), "reached": steps is not None,
                "steps_to_target": steps,
                "steps_done": int(tr.steps[j][n - 1]) if n else 0, "diverged": diverged,
                "final_eval_accuracy": math.nan if diverged else _last(acc, n),
                "best_eval_accuracy": float(valid.max()) if valid.size and not diverged
                else math.nan,
                "final_eval_loss": math.nan if diverged else _last(
                    np.asarray(tr.eval_loss[j], float), n),
                "final_train_loss": _last(np.asarray(tr.train_loss[j], float), n),
                "final_test_accuracy": float(tr.test_acc[j]),
                "final_test_loss": float(tr.test_loss[j]),
                "compile_s": tm.compile_s, "step_ms": step_ms, "eval_ms": tm.eval_ms * share,
                "time_to_target_s": steps * step_ms / 1e3 if steps is not None else math.nan,
                "program": prog.index, "program_lanes": n_lanes, "spec_hash": spec.hash,
                **regularization_columns(exp, spec, tr, j)})
            extra = tr.extra or {}
            curves.append(pd.DataFrame({
                "arm": arm.name, "seed": int(seed), "step": np.asarray(tr.steps[j][:n]),
                "train_loss": np.asarray(tr.train_loss[j][:n], float),
                "eval_loss": np.asarray(tr.eval_loss[j][:n], float),
                "eval_accuracy": acc[:n],
                "learning_rate": np.asarray(tr.lr[j][:n], float),
                **{k: np.asarray(extra[k][j][:n], float) for k in EXTRA_CURVES if k in extra}}))
            if tr.layers is not None:
                layers.append(layer_rows(arm.name, int(seed),
                                         np.concatenate([[0], tr.steps[j][:n]]),
                                         np.asarray(tr.layers[j][:n + 1], float)))
    runs = pd.DataFrame(rows)
    runs["steps_to_target"] = runs["steps_to_target"].astype("Int64")
    curves = pd.concat(curves, ignore_index=True)
    out = runs, curves[CURVE_COLUMNS + [k for k in EXTRA_CURVES if k in curves]]
    return out + ((pd.concat(layers, ignore_index=True),) if layers else ())


def layer_rows(arm: str, seed: int, steps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The layers table of one run: ``values`` (diagnosed steps, depth, columns), rows of
    steps without diagnostics (all NaN: a timing call) left out."""
    from dnnbench.train.engine import DIAG_COLUMNS

    n_steps, depth, _ = values.shape
    keep = ~np.all(np.isnan(values), axis=(1, 2))
    df = pd.DataFrame(values.reshape(n_steps * depth, -1), columns=list(DIAG_COLUMNS))
    df.insert(0, "layer", np.tile(np.arange(depth), n_steps))
    df.insert(0, "step", np.repeat(np.asarray(steps, int), depth))
    df.insert(0, "seed", seed)
    df.insert(0, "arm", arm)
    return df[np.repeat(keep, depth)].reset_index(drop=True)




# curves of the training split evaluated without dropout or penalty (spec.eval_train)
EXTRA_CURVES = ("clean_train_loss", "train_accuracy")


def regularization_columns(exp: Experiment, spec: RunSpec, tr, j: int) -> dict[str, Any]:
    """The columns of lane ``j`` that the regularization settings add (none without them):
    whether final_train_loss includes a penalty (experiments that set l1 or l2);
    eval_train: the final parameters' training accuracy and loss without dropout or penalty,
    and the generalization gap (training minus test accuracy); early_stopping: the restored step;
    mc_samples: accuracy, NLL and ECE of the deterministic and the MC dropout predictions
    on the test split, the mean predictive standard deviation of correct and wrong MC
    predictions, and the reliability diagram's bins (JSON)."""
    extra, out = tr.extra or {}, {}
    if {"l1", "l2"} & _named_settings(exp):
        out["train_loss_penalized"] = bool(spec.l1 or spec.l2)
    if "final_train_accuracy" in extra:
        train_acc = float(extra["final_train_accuracy"][j])
        out |= {"final_train_accuracy": train_acc,
                "final_train_loss_clean": float(extra["final_train_loss_clean"][j]),
                "generalization_gap": train_acc - float(tr.test_acc[j])}
    if "restored_step" in extra:
        out["restored_step"] = int(extra["restored_step"][j])
    if "mc" in extra:
        out |= mc_columns({k: np.asarray(v[j]) for k, v in extra["mc"].items()})
    return out


def mc_columns(mc: dict[str, np.ndarray]) -> dict[str, Any]:
    """Calibration metrics of one run's MC dropout predictions (``engine.mc_predictions``)."""
    if not np.all(np.isfinite(mc["mc_conf"])):  # diverged
        return dict.fromkeys(MC_METRICS, math.nan) | {"calibration_bins": ""}
    out, bins = {}, {}
    for name in ("det", "mc"):
        cal = calibration(mc[f"{name}_conf"], mc[f"{name}_correct"])
        out |= {f"{name}_test_accuracy": float(np.mean(mc[f"{name}_correct"])),
                f"{name}_test_nll": float(np.mean(mc[f"{name}_nll"])),
                f"{name}_test_ece": cal.ece}
        bins[name] = {"count": cal.count.tolist(),
                      "confidence": [round(float(v), 6) for v in cal.confidence],
                      "accuracy": [round(float(v), 6) for v in cal.accuracy]}
    right = mc["mc_correct"] > 0
    std = mc["mc_std"]
    out |= {"mc_std_correct": float(np.mean(std[right])) if right.any() else math.nan,
            "mc_std_wrong": float(np.mean(std[~right])) if (~right).any() else math.nan}
    del out["det_test_accuracy"]  # final_test_accuracy
    return {k: out[k] for k in MC_METRICS} | {
        "calibration_bins": json.dumps(bins, separators=(",", ":")).replace("NaN", "null")}


MC_METRICS = ("det_test_nll", "det_test_ece", "mc_test_accuracy", "mc_test_nll", "mc_test_ece",
              "mc_std_correct", "mc_std_wrong")


def arm_columns(exp: Experiment, arm: PlannedArm) -> dict[str, Any]:
    """The identifying columns of an arm's rows: experiment, data set, arm, the factors'
    levels, and every run setting (the optimizer's coefficients resolved)."""
    spec = arm.spec
    settings = dataclasses.asdict(spec)
    for k in ("optimizer_params", "schedule_params"):  # resolved below, one column each
        del settings[k]
    named = _named_settings(exp)
    for k in (*NORM_COLUMNS, *REGULARIZATION_COLUMNS, *DIAGNOSTICS_COLUMNS,
              *CLIP_INPUT_COLUMNS):  # columns of the experiments that set
        # them (earlier CSVs unchanged)
        if k not in named:
            del settings[k]
    settings |= {"depth": spec.depth, "train_size": arm.train_size,
                 "widths": "-".join(str(w) for w in spec.widths)}
    if "epochs" in arm.settings.settings:
        settings["epochs"] = arm.settings.settings["epochs"]
    coefficients = {k.split(".", 1)[1]: v for k, v in lane_values(spec).items()
                    if k.startswith((OPTIMIZER_PREFIX, SCHEDULE_PREFIX))}
    levels = {f: format_level(v) if f in exp.named_levels or isinstance(v, tuple) else v
              for f, v in arm.settings.levels}
    return {"experiment": exp.name, "arm": arm.name, **levels,
            **settings_table({k: v for k, v in settings.items() if k not in levels}),
            **{k: v for k, v in coefficients.items() if k not in levels}}


NORM_COLUMNS = ("norm_groups", "input_norm", "bn_eval", "bn_eval_batch")
REGULARIZATION_COLUMNS = ("dropout_placement", "max_norm", "decay_params", "early_stopping",
                          "eval_train", "mc_samples")
DIAGNOSTICS_COLUMNS = ("leaky_slope", "dropout_kind", "standardize", "diagnostics")
CLIP_INPUT_COLUMNS = ("clip", "inputs")  # the clipping kind, the input scaling


def metric_values(df: pd.DataFrame, metric: str) -> np.ndarray:
    """The per-run values of ``metric`` (files.METRICS) as floats: a runs column, or
    ``divergence_rate``, each run's ``diverged`` as 0/1 (its mean over seeds is the rate)."""
    column = "diverged" if metric == "divergence_rate" else metric
    return df[column].astype(float).to_numpy()


def _named_settings(exp: Experiment) -> set[str]:
    """The settings that the experiment sets: in [base], as factors or in named levels."""
    return {*exp.base, *exp.factors, *(k for levels in exp.named_levels.values()
                                       for settings in levels.values() for k in settings)}


def finalize(exp: Experiment, data, runs: pd.DataFrame, curves: pd.DataFrame):
    """The written tables (the data set's name in every row) and the experiment's definition
    for the metadata (a report rebuilds the experiment from it)."""
    from dnnbench.experiments.files import to_doc

    runs.insert(1, "dataset", data.name)
    if exp.search is not None:  # the stage, design and repetition of each point
        points = {p.name: p for p in exp.search.points}
        at = runs.columns.get_loc(POINT) + 1
        for i, col in enumerate(("stage", "design", "repeat")):
            runs.insert(at + i, col, [getattr(points[n], col) for n in runs[POINT]])
    extra = {}
    if exp.tune is not None:
        runs, curves, extra["tuning"] = choose_tuned(exp, runs, curves)
    if exp.relative_target is not None:
        target = relative_target(runs, exp.relative_target, "final_eval_accuracy")
        runs = with_target(runs, curves, target, "eval_accuracy")
        extra |= {"target": target, "target_kind": "relative",
                  "target_fraction": exp.relative_target}
    # a JSON string: the metadata file sorts its keys, and the factors' order matters
    return runs, curves, {"experiment_definition": json.dumps(to_doc(exp)), **extra}


def choose_tuned(exp: Experiment, runs: pd.DataFrame, curves: pd.DataFrame):
    """The tuned arms from their sweeps (:func:`files.tune_sweep`): per tuned arm the grid
    point with the best median over seeds of ``exp.tune.by`` (a missing value, e.g. of a
    diverged run, counts as the worst: accuracy 0, loss infinite; ties: the first point, the
    smaller values), whose runs and curves become the tuned arm's, in place of the sweep.
    Returns (runs, curves, tuning: per tuned arm its points, medians and chosen point)."""
    by = exp.tune.by
    lower = lower_is_better(by)
    chosen, tuning = {}, {}  # sweep arm -> tuned arm
    for arm in expand(exp):
        sweep = tune_sweep(exp, arm)
        if not sweep:
            continue
        medians = []
        for s, _ in sweep:
            values = runs.loc[runs["arm"] == s.name, by].astype(float)
            medians.append(float(np.median(values.fillna(math.inf if lower else 0.0))))
        sign = -1.0 if lower else 1.0
        best = max(range(len(sweep)), key=lambda i: (sign * medians[i], -i))
        chosen[sweep[best][0].name] = arm.name
        tuning[arm.name] = {"by": by, "points": [p for _, p in sweep], "median": medians,
                            "chosen": sweep[best][1]}
    swept = {s.name: a.name for a in expand(exp) for s, _ in tune_sweep(exp, a)}
    return _in_place(runs, swept, chosen), _in_place(curves, swept, chosen), tuning


def _in_place(df: pd.DataFrame, swept: dict[str, str], chosen: dict[str, str]) -> pd.DataFrame:
    """``df`` without the sweeps' rows (``swept``: sweep arm -> tuned arm) but the chosen
    points' (``chosen``), renamed to their tuned arm and put where their sweep began."""
    df = df.reset_index(drop=True)
    tuned = df["arm"].map(swept)
    position = pd.Series(np.arange(len(df), dtype=float), index=df.index)
    start = position.groupby(tuned).transform("min")  # NaN outside the sweeps
    # within a sweep's place the chosen rows keep their own order
    position = position.where(tuned.isna(), start + position / (len(df) + 1))
    keep = tuned.isna() | df["arm"].isin(chosen)
    out = df[keep].assign(arm=df.loc[keep, "arm"].map(lambda a: chosen.get(a, a)))
    return out.loc[position[keep].sort_values(kind="stable").index].reset_index(drop=True)


def relative_target(runs: pd.DataFrame, fraction: float, column: str) -> float:
    """``fraction`` x the best (over arms) median final accuracy (``column``; a diverged run
    counts as 0); NaN if none is above 0."""
    best = max((float(np.median(g[column].fillna(0.0).to_numpy(float)))
                for _, g in runs.groupby("arm")), default=math.nan)
    return fraction * best if best > 0 else math.nan


def with_target(runs: pd.DataFrame, curves: pd.DataFrame, target: float, column: str
                ) -> pd.DataFrame:
    """``runs`` with target, reached, steps_to_target and time_to_target_s for ``target``,
    found on the curves' ``column`` (the first evaluated step at or above it; a diverged run
    never reaches it, as in :func:`program_frames`)."""
    reach = {}
    for (arm, seed), g in curves.groupby(["arm", "seed"], sort=False):
        g = g.sort_values("step")
        reach[(arm, seed)] = None if math.isnan(target) else first_reach(
            g["step"].to_numpy(), g[column].to_numpy(float), len(g), target)
    steps = pd.Series([reach.get((a, s)) for a, s in zip(runs["arm"], runs["seed"],
                                                         strict=True)],
                      index=runs.index, dtype="Int64").mask(runs["diverged"].astype(bool))
    out = runs.assign(target=target, steps_to_target=steps, reached=steps.notna())
    out["time_to_target_s"] = steps.astype(float) * out["step_ms"] / 1e3
    return out


# ------------------------------------------------------------------------------ the summary

def reference_arm(exp: Experiment, levels: dict[str, Any]) -> dict[str, Any] | None:
    """The levels of the arm that ``levels`` is compared with (None: it is a reference, or
    an arm its protocol does not compare)."""
    if not exp.reference or not compared(exp, levels):
        return None
    ref = {**levels, **exp.reference}
    return None if ref == levels else ref


NOT_COMPARED = "not compared"


def compared(exp: Experiment, levels: dict[str, Any]) -> bool:
    """Whether the arm of ``levels`` is compared with the reference at all (its protocol may
    say no: transfer's A learns another task)."""
    from dnnbench.experiments.protocols import get

    return not any(levels.get(f) in v for f, v in get(exp.protocol).uncompared.items())


def _level_key(df: pd.DataFrame, factors: Sequence[str]) -> pd.Series:
    return df[list(factors)].astype(str).agg("|".join, axis=1) if factors else \
        pd.Series("", index=df.index)


def summarize(exp: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (file order): seeds, reached n/N, KM median steps with its 95% CI,
    the mean of every shown metric with its 95% CI, and against the reference arm (paired by
    seed): the ratio of steps with its interval and verdict, and the difference of the first
    shown accuracy/loss metric with its interval and verdict."""
    factors = list(exp.factors)
    value_metric = next((m for m in exp.show if m not in ("steps_to_target",
                                                          "time_to_target_s")),
                        "final_eval_accuracy")
    keys = _level_key(runs, factors)
    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        g = g.sort_values("seed")
        km = km_median(*steps_of_runs(g))
        row = {"arm": arm, **{f: g[f].iloc[0] for f in factors}, "n": km.n,
               "reached": km.n_reached, "diverged": int(g["diverged"].sum()),
               "median_steps": km.median, "steps_low": km.low, "steps_high": km.high,
               "step_ms": float(g["step_ms"].iloc[0]), "compile_s": float(g["compile_s"].iloc[0])}
        for m in exp.show:
            if m == "steps_to_target":
                continue
            ci = mean_ci(metric_values(g, m))
            row |= {m: ci.estimate, f"{m}_low": ci.low, f"{m}_high": ci.high}
        levels = {f: g[f].iloc[0] for f in factors}
        ref = reference_arm(exp, levels)
        row |= {"reference": "", "steps_ratio": math.nan, "ratio_low": math.nan,
                "ratio_high": math.nan, "steps_verdict": "", "value_metric": value_metric,
                "diff": math.nan, "diff_low": math.nan, "diff_high": math.nan,
                "diff_verdict": ""}
        if ref is not None:
            other = runs[keys == "|".join(str(ref[f]) for f in factors)].sort_values("seed")
            row |= compare(g, other, value_metric)
        elif not compared(exp, levels):
            row["reference"] = NOT_COMPARED
        rows.append(row)
    return pd.DataFrame(rows)


def compare(a: pd.DataFrame, b: pd.DataFrame, value_metric: str) -> dict[str, Any]:
    """Arm ``a`` against arm ``b`` (their common seeds, paired)."""
    common = sorted(set(a["seed"]) & set(b["seed"]))
    if not common:
        return {}
    a = a.set_index("seed").loc[common].reset_index()
    b = b.set_index("seed").loc[common].reset_index()
    out = {"reference": b["arm"].iloc[0]}
    cmp = paired_censored_comparison(*steps_of_runs(a), *steps_of_runs(b))
    out |= {"steps_ratio": cmp.ratio, "ratio_low": cmp.low, "ratio_high": cmp.high,
            "steps_verdict": cmp.verdict}
    x, y = metric_values(a, value_metric), metric_values(b, value_metric)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2:
        d = paired_difference(x[ok], y[ok])
        better = "lower" if lower_is_better(value_metric) else "higher"
        out |= {"diff": d.mean_diff, "diff_low": d.low, "diff_high": d.high,
                "diff_verdict": verdict_from_interval(d.low, d.high, better=better,
                                                      n=int(ok.sum()))}
    return out


def check_claims(exp: Experiment, runs: pd.DataFrame,
                 layers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each claim of the file against the data: supported when every compared arm points the
    expected way with an interval that excludes no difference, contradicted when any points
    the other way, inconclusive otherwise; "not tested" when no arm of the run matches (a
    --quick run without the claim's levels). An arm is compared with the reference, with the
    claim's ``against`` arm (the best of its levels, by the mean of the metric), or, with
    ``versus``, its metric with its own other metric. Expect ``same``: as expected when the
    difference's interval lies within +-margin, opposite when it lies outside; ``not-lower``:
    as expected when its lower bound is above -margin, opposite when its upper bound is
    below. Claims with evaluator checks are left to `dnnbench claims`
    (:func:`dnnbench.claims.engine.packaged_claims`).

    Claims on the per-layer diagnostics (``layers``; metric ``layers.<column>``), with
    bounds (expect within/outside: each arm's mean over seeds with its 95% interval against
    [low, high]; statistic range: the smallest and the largest layer's intervals) and rankings
    (every pair of the ranked levels, same other levels, paired by seed; the effects list the
    pairs decided as expected and the other way): see :func:`_diagnostic_claim`."""
    runs = with_layer_metrics(exp, runs, layers)
    factors = list(exp.factors)
    keys = _level_key(runs, factors)
    rows = []
    for claim in exp.claims:
        if claim.checks:  # an evaluator claim: `dnnbench claims` checks it on its results
            continue
        if claim.test != "arms":  # a claim about a search
            from dnnbench.experiments import search

            rows.append({"id": claim.id, "claim": claim.text,
                         **search.check_claim(exp.search, claim, runs)})
            continue
        if claim.diagnostic:
            rows.append(_claim_row(claim, *_diagnostic_claim(exp, claim, runs)))
            continue
        kind, better = EXPECTATIONS[claim.expect]
        verdicts, effects = [], []
        for arm, g in _claim_arms(claim, runs, factors):
            levels = {f: g[f].iloc[0] for f in factors}
            if claim.versus:
                other = g.assign(**{claim.metric: g[claim.versus], "arm": claim.versus})
            else:
                ref = (_against(exp, claim, levels, runs, keys) if claim.against
                       else reference_arm(exp, levels))
                if ref is None:
                    continue
                other = runs[keys == "|".join(str(ref[f]) for f in factors)]
            c = compare(g.sort_values("seed"), other.sort_values("seed"), claim.metric)
            if not c or (kind != "steps" and "diff" not in c):
                continue
            name = arm if not claim.versus else f"{arm} ({claim.metric} - {claim.versus})"
            if kind == "steps":
                low, high, est, null = c["ratio_low"], c["ratio_high"], c["steps_ratio"], 1.0
                effects.append(f"{name}: x{est:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(est)
                               else f"{name}: a median not reached (reached "
                                    f"{int(g['reached'].sum())}/{len(g)} vs "
                                    f"{int(other['reached'].sum())}/{len(other)})")
            else:
                low, high, est, null = c["diff_low"], c["diff_high"], c["diff"], 0.0
                against = "" if claim.versus or not claim.against else f" vs {c['reference']}"
                effects.append(f"{name}{against}: {est:+.4f} [{low:+.4f}, {high:+.4f}]")
            if kind == "steps" and not math.isfinite(est):
                # a median not reached: the comparison's own verdict (its log-rank fallback)
                side = {STEP_LABELS[0]: "lower", STEP_LABELS[1]: "higher"}.get(
                    c["steps_verdict"])
                verdicts.append(CLAIM_LABELS[2] if side is None else
                                CLAIM_LABELS[0] if side == better else CLAIM_LABELS[1])
                continue
            n = len(set(g["seed"]) & set(other["seed"]))
            verdicts.append(margin_verdict(low, high, better, claim.margin, n)
                            if better in MARGIN_EXPECTATIONS else
                            verdict_from_interval(low, high, better=better, null=null, n=n,
                                                  labels=CLAIM_LABELS))
        rows.append(_claim_row(claim, verdicts, effects))
    return pd.DataFrame(rows, columns=["id", "claim", "verdict", "arms", "effects"])


def _claim_row(claim, verdicts: list[str], effects: list[str]) -> dict[str, Any]:
    if not verdicts:
        verdict = "not tested"
        effects = ["no arm of this run matches the claim"]
    elif "opposite" in verdicts:
        verdict = "contradicted"
    elif all(v == "as expected" for v in verdicts):
        verdict = "supported"
    else:
        verdict = "inconclusive"
    return {"id": claim.id, "claim": claim.text, "verdict": verdict, "arms": len(verdicts),
            "effects": "; ".join(effects)}


def _diagnostic_claim(exp: Experiment, claim, runs: pd.DataFrame):
    """(verdicts, effects) of a ranking, a bounds claim, or a layers.* claim against the
    reference (or its own ``against`` arm)."""
    if claim.expect == RANKING:
        return _ranking(exp, claim, runs)
    if claim.expect in BOUND_EXPECTATIONS:
        return _bounded(exp, claim, runs)
    return _against_reference(exp, claim, runs)


def _matching(exp: Experiment, claim, runs: pd.DataFrame, skip: Sequence[str] = ()):
    """(arm, its rows, its levels) of the arms that the claim's compare and where select
    (factors in ``skip`` not checked against compare)."""
    for arm, g in runs.groupby("arm", sort=False):
        levels = {f: g[f].iloc[0] for f in exp.factors}
        if any(str(levels[f]) != str(v) for f, v in claim.compare.items() if f not in skip):
            continue
        if any(str(levels[f]) not in {str(x) for x in vs} for f, vs in claim.where.items()):
            continue
        yield arm, g.sort_values("seed"), levels


def _rows_of(exp: Experiment, runs: pd.DataFrame, levels: dict) -> pd.DataFrame:
    keys = _level_key(runs, list(exp.factors))
    return runs[keys == "|".join(str(levels[f]) for f in exp.factors)].sort_values("seed")


def _pair(a: pd.DataFrame, b: pd.DataFrame, claim, better: str) -> tuple[str, str] | None:
    """(verdict, effect text) of arm ``a`` against arm ``b`` on the claim's metric, ``better``
    the direction that supports the claim."""
    steps = claim.metric == "steps_to_target"
    c = compare(a, b, claim.column)
    if not c or (not steps and "diff_low" not in c):
        return None
    if steps:  # the comparison's verdict: its log-rank fallback decides unreached medians
        low, high, est = c["ratio_low"], c["ratio_high"], c["steps_ratio"]
        effect = (f"x{est:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(est) else
                  f"a median not reached ({c['steps_verdict']})")
        way = {"fewer steps": "lower", "more steps": "higher"}.get(c["steps_verdict"])
        verdict = CLAIM_LABELS[2] if way is None else CLAIM_LABELS[0] if way == better \
            else CLAIM_LABELS[1]
        return verdict, effect
    low, high, est = c["diff_low"], c["diff_high"], c["diff"]
    n = len(set(a["seed"]) & set(b["seed"]))
    return (verdict_from_interval(low, high, better=better, null=0.0, n=n, labels=CLAIM_LABELS),
            f"{est:+.4g} [{low:+.4g}, {high:+.4g}]")


def _against_reference(exp: Experiment, claim, runs: pd.DataFrame):
    better = EXPECTATIONS[claim.expect][1]
    verdicts, effects = [], []
    for arm, g, levels in _matching(exp, claim, runs):
        ref = {**levels, **exp.reference, **claim.against}
        if ref == levels:
            continue
        pair = _pair(g, _rows_of(exp, runs, ref), claim, better)
        if pair is None:
            continue
        verdicts.append(pair[0])
        effects.append(f"{arm}: {pair[1]}")
    return verdicts, effects


def _ranking(exp: Experiment, claim, runs: pd.DataFrame):
    """Every ordered pair of the ranked levels within each combination of the other levels."""
    factor, order = claim.rank
    better = "lower" if claim.metric == "steps_to_target" else "higher"
    verdicts, decided, other_way = [], [], []
    groups: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
    for arm, g, levels in _matching(exp, claim, runs, skip=(factor,)):
        rest = "|".join(str(levels[f]) for f in exp.factors if f != factor)
        groups.setdefault(rest, {})[str(levels[factor])] = (arm, g)
    for members in groups.values():
        ranked = [str(x) for x in order if str(x) in members]
        for i, hi in enumerate(ranked):
            for lo in ranked[i + 1:]:
                pair = _pair(members[hi][1], members[lo][1], claim, better)
                if pair is None:
                    continue
                verdicts.append(pair[0])
                text = f"{hi} > {lo}: {pair[1]}"
                if pair[0] == "as expected":
                    decided.append(text)
                elif pair[0] == "opposite":
                    other_way.append(text)
    effects = [(f"{len(decided)} of {len(verdicts)} pairs decided as expected, "
                f"{len(other_way)} the other way")] if verdicts else []
    effects += [f"as expected: {t}" for t in decided] + [f"other way: {t}" for t in other_way]
    return verdicts, effects


def _bounded(exp: Experiment, claim, runs: pd.DataFrame):
    """Each selected arm's mean (95% interval over seeds) against the claim's bounds."""
    from dnnbench.stats import MIN_SEEDS_FOR_VERDICT

    low_b, high_b = claim.bounds
    verdicts, effects = [], []
    columns = ([f"{claim.column}.min", f"{claim.column}.max"] if claim.statistic == "range"
               and claim.layer_metric is not None else [claim.column])
    for arm, g, _ in _matching(exp, claim, runs):
        if any(c not in g for c in columns):
            continue
        cis = [mean_ci(g[c].astype(float).to_numpy()) for c in columns]
        if any(math.isnan(ci.estimate) for ci in cis):
            continue
        lo, hi = cis[0], cis[-1]  # the smallest and the largest layer (or the one value)
        inside = lo.low >= low_b and hi.high <= high_b
        outside = lo.high < low_b or hi.low > high_b
        n = int(g[columns[0]].notna().sum())
        if n < MIN_SEEDS_FOR_VERDICT:
            v = "unclear"
        elif claim.expect == "within":
            v = "as expected" if inside else "opposite" if outside else "unclear"
        else:
            v = "as expected" if outside else "opposite" if inside else "unclear"
        verdicts.append(v)
        shown = " to ".join(f"{ci.estimate:.4g} [{ci.low:.4g}, {ci.high:.4g}]" for ci in cis)
        effects.append(f"{arm}: {shown}")
    return verdicts, effects


def layer_statistic(values: np.ndarray, statistic: str):
    """A run's layers column (ordered by layer) reduced to one number (range: (min, max))."""
    if values.size == 0:
        return math.nan
    first, last = values[0], values[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"first": first, "last": last, "min": values.min(), "max": values.max(),
                "mean": values.mean(), "last/first": last / first, "first/last": first / last,
                "max/min": values.max() / values.min(),
                "range": (values.min(), values.max())}[statistic]


def with_layer_metrics(exp: Experiment, runs: pd.DataFrame,
                       layers: pd.DataFrame | None) -> pd.DataFrame:
    """``runs`` with a column per layers.* claim: its statistic of each run's diagnostics at
    step 0 ("start") or at the last diagnosed step ("end"; NaN for a run that diverged before
    its first evaluation); NaN without diagnostics."""
    wanted = {(c.layer_metric, c.statistic, c.at, c.column) for c in exp.claims
              if c.layer_metric is not None}
    if not wanted:
        return runs
    runs = runs.copy()
    by_run = {} if layers is None else dict(list(layers.groupby(["arm", "seed"], sort=False)))
    for column, statistic, at, name in wanted:
        values = []
        for arm, seed in zip(runs["arm"], runs["seed"], strict=True):
            g = by_run.get((arm, seed))
            if g is None:
                values.append(math.nan if statistic != "range" else (math.nan, math.nan))
                continue
            step = g["step"].min() if at == "start" else g["step"].max()
            if at == "end" and step == 0:  # diverged before its first evaluation: no end
                values.append(math.nan if statistic != "range" else (math.nan, math.nan))
                continue
            v = g[g["step"] == step].sort_values("layer")[column].to_numpy(float)
            values.append(layer_statistic(v, statistic))
        if statistic == "range":
            runs[f"{name}.min"] = [v[0] for v in values]
            runs[f"{name}.max"] = [v[1] for v in values]
        else:
            runs[name] = values
    return runs


CLAIM_LABELS = ("as expected", "opposite", "unclear")


def margin_verdict(low: float, high: float, expect: str, margin: float, n: int) -> str:
    """The verdict (CLAIM_LABELS) on a difference's interval for expect ``same`` (within
    +-margin: as expected; entirely outside: opposite) or ``not-lower`` (above -margin: as
    expected; entirely below it: opposite); unclear with too few seeds or NaN bounds."""
    if n < MIN_SEEDS_FOR_VERDICT or not (math.isfinite(low) and math.isfinite(high)):
        return CLAIM_LABELS[2]
    if expect == "same":
        inside, outside = -margin < low and high < margin, low > margin or high < -margin
    else:
        inside, outside = low > -margin, high < -margin
    return CLAIM_LABELS[0] if inside else CLAIM_LABELS[1] if outside else CLAIM_LABELS[2]


def _claim_arms(claim, runs: pd.DataFrame, factors) -> list[tuple[str, pd.DataFrame]]:
    """The arms a claim is about: their levels match its compare and where levels; where
    compare gives a factor several levels, only the best arm (mean of the metric)."""
    def matches(levels, given):
        return all(str(levels[f]) in {str(x) for x in (v if isinstance(v, tuple) else [v])}
                   for f, v in given.items())
    arms = [(arm, g) for arm, g in runs.groupby("arm", sort=False)
            if matches({f: g[f].iloc[0] for f in factors}, {**claim.compare, **claim.where})]
    if arms and any(isinstance(v, tuple) for v in claim.compare.values()):
        sign = -1.0 if lower_is_better(claim.metric) else 1.0
        arms = [max(arms, key=lambda a: np.nan_to_num(
            sign * metric_values(a[1], claim.metric).mean(), nan=-np.inf))]
    return arms


def _against(exp: Experiment, claim, levels: dict, runs: pd.DataFrame, keys: pd.Series):
    """The levels of the arm that a claim's ``against`` names for an arm of ``levels``; a
    factor given several levels takes the one whose arm has the best mean of the metric."""
    fixed = {k: v for k, v in claim.against.items() if not isinstance(v, tuple)}
    choices_ = [k for k, v in claim.against.items() if isinstance(v, tuple)]
    candidates = [{**levels, **fixed, **dict(zip(choices_, combo, strict=True))}
                  for combo in itertools.product(*(claim.against[k] for k in choices_))]
    sign = -1.0 if lower_is_better(claim.metric) else 1.0
    best, best_mean = None, -math.inf
    for cand in candidates:
        if cand == levels:
            continue
        rows = runs[keys == "|".join(str(cand[f]) for f in exp.factors)]
        mean = sign * metric_values(rows, claim.metric).mean() if len(rows) else math.nan
        if math.isfinite(mean) and mean > best_mean:
            best, best_mean = cand, mean
    return best
