"""Planning and building a run: an experiment file -> arms -> one program per structure ->
resumable units -> one tidy table (the claims and the summary: :mod:`dnnbench.analysis`).

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
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.definition.experiment import (
    POINT,
    ArmSettings,
    Experiment,
    expand,
    format_level,
    settings_table,
    to_doc,
    tune_sweep,
)
from dnnbench.definition.settings import MLP_SETTINGS, lower_is_better
from dnnbench.definition.specs import make_spec
from dnnbench.models.mlp import check_model
from dnnbench.registry import spec_plugins
from dnnbench.run.units import Once, Unit
from dnnbench.spec import (
    OPTIMIZER_PREFIX,
    SCHEDULE_PREFIX,
    RunSpec,
    group_spec,
    lane_values,
    structure_key,
)
from dnnbench.stats import (
    calibration,
)
from dnnbench.train.arm import compile_arm
from dnnbench.train.devices import compile_ahead
from dnnbench.train.engine import DIAG_COLUMNS, first_reach

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

    seeds = tuple(int(s) for s in seeds)
    units = []
    programs = plan(exp, len(data.y_train), one_program_per_arm=one_program_per_arm)
    for index, prog in enumerate(split_lanes(programs, len(seeds), lanes_per_unit)):
        task = subset(data, prog.arms[0].train_size)
        check_model(prog.spec, task.n_features, task.n_classes)  # a plug-in's: before training
        flat_seeds = seeds * len(prog.arms)
        hps = prog.lane_values(len(seeds))
        prepare = Once(lambda prog=prog, task=task, flat_seeds=flat_seeds, hps=hps: compile_arm(
            prog.spec, task, flat_seeds, hps=hps))

        def compute(prog=prog, prepare=prepare):
            result = prepare.take().train(timing=timing)
            return program_frames(exp, data, prog, result, seeds)

        key = ("generic", prog.spec.hash, prog.lanes, seeds,
               tuple((a.name, a.spec.hash, a.settings.levels) for a in prog.arms),
               prog.arms[0].train_size, timing, *plugin_key(prog.spec))
        remote = None if worker_data is None else functools.partial(
            rebuild_unit, exp, worker_data, seeds, index, timing, one_program_per_arm,
            lanes_per_unit)
        units.append(Unit(prog.label, key, compute, prepare if compile_ahead() else None,
                          remote, (prog.index, len(prog.arms))))
    return units


def plugin_key(spec) -> tuple:
    """The plug-ins of a unit's spec as part of its key (their source and version: an edited
    plug-in never reuses the results of its old code); () without plug-ins, so that the keys
    of runs without plug-ins stay as they were."""
    plugins = spec_plugins(spec)
    return (("plugins", json.dumps(plugins, sort_keys=True)),) if plugins else ()


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
    if "kernel_sparsity" in extra:
        out["kernel_sparsity"] = float(extra["kernel_sparsity"][j])
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
              *CLIP_INPUT_COLUMNS, *MODEL_COLUMNS):  # columns of the experiments that set
        # them (earlier CSVs unchanged)
        if k not in named:
            del settings[k]
    settings |= {"depth": spec.depth, "train_size": arm.train_size,
                 "widths": "-".join(str(w) for w in spec.widths)}
    if spec.model != "mlp":  # the MLP's settings describe no layer of a plug-in's model
        for k in MLP_SETTINGS:
            settings.pop(k, None)
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


REGULARIZATION_COLUMNS = ("dropout_placement", "max_norm", "max_norm_params", "decay_params",
                          "early_stopping",
                          "eval_train", "mc_samples", "sparsity_threshold")


DIAGNOSTICS_COLUMNS = ("leaky_slope", "dropout_kind", "standardize", "diagnostics",
                       "init_scale")


CLIP_INPUT_COLUMNS = ("clip", "inputs")  # the clipping kind, the input scaling


MODEL_COLUMNS = ("model",)  # "mlp" or a model plug-in (a column where a file sets it)


def _named_settings(exp: Experiment) -> set[str]:
    """The settings that the experiment sets: in [base], as factors or in named levels."""
    return {*exp.base, *exp.factors, *(k for levels in exp.named_levels.values()
                                       for settings in levels.values() for k in settings)}


def finalize(exp: Experiment, data, runs: pd.DataFrame, curves: pd.DataFrame):
    """The written tables (the data set's name in every row) and the experiment's definition
    for the metadata (a report rebuilds the experiment from it)."""

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
