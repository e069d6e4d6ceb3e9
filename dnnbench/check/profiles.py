"""Regression profiles (``benchmarks/regression.toml``) and running them.

A profile names a data set, seed counts, gate thresholds and a few arms: depth-sweep arms
built by :func:`dnnbench.experiments.depth_sweep.build_arms` and optimizer arms at the
optimizer comparison's architecture.  Every arm trains to the end of its budget
(``stop_at_target = False``) so that its final accuracy is a quality measure, and its
steps-to-target come from the evaluated curve (:func:`dnnbench.experiments.common.seed_rows`).
All seeds of an arm (for ``benchmarks/gate.py``: of many seed blocks) run as one
``jit(vmap)`` program via :func:`dnnbench.train.arm.train_arm`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dnnbench.files import read_toml
from dnnbench.spec import RunSpec

if TYPE_CHECKING:  # the training stack (JAX) is imported only when arms are built or run
    from dnnbench.experiments.common import Arm

PROFILES_FILE = Path("benchmarks") / "regression.toml"
RUN_COLUMNS = [
    "profile", "dataset", "group", "arm", "depth", "widths", "activation", "bn", "bn_momentum",
    "optimizer", "learning_rate", "batch_size", "seed", "target", "reached", "steps_to_target",
    "max_steps", "diverged", "final_test_accuracy", "compile_s", "step_ms", "eval_ms",
    "spec_hash",
]
TOP_KEYS = {"description", "dataset", "seeds", "baseline_seeds", "baseline_seed_offset",
            "seed_offset", "max_steps_ratio", "max_accuracy_drop", "alpha", "train",
            "depth_sweep", "optimizers", "experiment", "set"}
TRAIN_KEYS = {"batch_size", "max_steps", "eval_every", "target", "eval_split"}
DEPTH_KEYS = {"depths", "width", "widths", "activations", "bn", "bn_momentum", "optimizer",
              "learning_rate", "bn_position", "bn_logits"}
OPT_KEYS = {"depth", "width", "activation", "learning_rates"}


class ProfileError(ValueError):
    """A profiles file or profile is unusable (message is user-facing, one line)."""


@dataclasses.dataclass(frozen=True)
class ProfileArm:
    group: str  # "depth-sweep" | "optimizers"
    arm: Arm


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dataset: str
    seeds: int  # fresh seeds per arm in a check run
    baseline_seeds: int
    baseline_seed_offset: int
    seed_offset: int  # default first seed of a check run's block
    max_steps_ratio: float
    max_accuracy_drop: float
    alpha: float
    arms: tuple[ProfileArm, ...]
    config: dict  # the profile's TOML table, verbatim: what a baseline must match
    experiment: Any = None  # a dnnbench.definition.Experiment: its arms are the profile's

    @property
    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)

    def baseline_seed_list(self, offset: int | None = None) -> list[int]:
        start = self.baseline_seed_offset if offset is None else offset
        return list(range(start, start + self.baseline_seeds))

    def current_seed_list(self, offset: int | None = None) -> list[int]:
        start = self.seed_offset if offset is None else offset
        return list(range(start, start + self.seeds))


def default_profiles_path() -> Path:
    """``benchmarks/regression.toml`` of the working directory, else of this source tree."""
    here = Path.cwd() / PROFILES_FILE
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / PROFILES_FILE


def _need(table: dict, key: str, kind, where: str):
    if key not in table:
        raise ProfileError(f"{where}: missing key '{key}'")
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProfileError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, "
                           f"got {value!r}")
    return value


def _unknown(table: dict, allowed: set, where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: "
                           f"{', '.join(sorted(allowed))}")


def _depth_arms(table: dict, train: dict, where: str) -> list[ProfileArm]:
    from dnnbench.experiments import depth_sweep as ds
    from dnnbench.registry import ACTIVATIONS, OPTIMIZERS

    _unknown(table, DEPTH_KEYS, where)
    activations = tuple(table.get("activations", ["relu"]))
    for a in activations:
        if a not in ACTIVATIONS:
            raise ProfileError(f"{where}.activations: unknown activation {a!r}")
    optimizer = table.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        raise ProfileError(f"{where}.optimizer: unknown optimizer {optimizer!r}")
    depths = tuple(int(d) for d in _need(table, "depths", list, where))
    if not depths or min(depths) < 1:
        raise ProfileError(f"{where}.depths: give depths >= 1")
    kw: dict[str, Any] = {}
    if "width" in table:
        kw["width"] = int(table["width"])
    if "widths" in table:
        kw["widths"] = tuple(int(w) for w in table["widths"])
    cfg = ds.DepthSweepConfig(
        depths=depths, activations=activations,
        bn_arms=tuple(bool(b) for b in table.get("bn", [False, True])),
        bn_momentum=float(table.get("bn_momentum", 0.9)),
        bn_position=table.get("bn_position", "before"), bn_logits=table.get("bn_logits", True),
        optimizer=optimizer, learning_rate=float(table.get("learning_rate", 0.01)),
        batch_size=train["batch_size"], target=train["target"],
        eval_every=train["eval_every"], max_steps=train["max_steps"], **kw)
    try:
        arms = ds.build_arms(cfg)
    except ValueError as e:
        raise ProfileError(f"{where}: {e}") from None
    return [ProfileArm("depth-sweep", dataclasses.replace(
        a, spec=a.spec.replace(stop_at_target=False, eval_split=train["eval_split"])))
        for a in arms]


def _optimizer_arms(table: dict, train: dict, where: str) -> list[ProfileArm]:
    from dnnbench.experiments.common import Arm
    from dnnbench.registry import ACTIVATIONS, DEFAULT_INIT, OPTIMIZERS

    _unknown(table, OPT_KEYS, where)
    depth = int(table.get("depth", 3))
    width = int(table.get("width", 100))
    act = table.get("activation", "relu")
    if act not in ACTIVATIONS:
        raise ProfileError(f"{where}.activation: unknown activation {act!r}")
    lrs = _need(table, "learning_rates", dict, where)
    arms = []
    for name, lr in lrs.items():
        if name not in OPTIMIZERS:
            raise ProfileError(f"{where}.learning_rates: unknown optimizer {name!r}; choose "
                               f"from {', '.join(OPTIMIZERS)}")
        if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
            raise ProfileError(f"{where}.learning_rates.{name}: expected a positive number")
        spec = RunSpec(widths=(width,) * depth, activation=act, init=DEFAULT_INIT[act],
                       optimizer=name, learning_rate=float(lr), batch_size=train["batch_size"],
                       max_steps=train["max_steps"], eval_every=train["eval_every"],
                       eval_split=train["eval_split"], target=train["target"],
                       stop_at_target=False)
        arms.append(ProfileArm("optimizers", Arm(f"opt={name},lr={lr:g},depth={depth}", spec)))
    return arms


def _experiment_profile(table: dict, where: str):
    """(experiment, arms, config) of a profile that names an experiment file: its arms with
    the profile's ``set`` overrides and ``train`` settings, trained to the end of the budget
    (``stop_at_target = false``); the config carries a digest of every arm's spec, so a
    changed experiment file makes a stored baseline incompatible."""
    import hashlib

    from dnnbench import definition
    from dnnbench.experiments.common import Arm

    source = _need(table, "experiment", str, where)
    overrides = {}
    for key in ("set", "train"):
        if key in table:
            overrides.update(_need(table, key, dict, where))
    overrides["stop_at_target"] = False
    try:
        exp = definition.load(source)
        if exp.tune is not None:  # the default arms: a tuned arm is chosen, not trained as one
            overrides.setdefault(definition.TUNE_FACTOR, "default")
        exp = definition.override(exp, overrides, f"{where}.set")
        arms = [Arm(a.name, definition.make_spec(a.settings, None, where))
                for a in definition.expand(exp)]
    except definition.ExperimentError as e:
        raise ProfileError(f"{where}: {e}") from None
    digest = hashlib.sha256(" ".join(a.spec.hash for a in arms).encode()).hexdigest()[:16]
    config = {**table, "experiment_arms_digest": digest}
    return exp, [ProfileArm(exp.name, a) for a in arms], config


def parse_profile(name: str, table: dict) -> Profile:
    where = f"profiles.{name}"
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: expected a table")
    _unknown(table, TOP_KEYS, where)
    if "experiment" in table:
        exp, arms, config = _experiment_profile(table, where)
        return _profile(name, table, where, arms, config, exp)
    if "set" in table:
        raise ProfileError(f"{where}: 'set' goes with 'experiment'")
    train = dict(_need(table, "train", dict, where))
    _unknown(train, TRAIN_KEYS, f"{where}.train")
    train.setdefault("eval_split", "test")
    for key, kind in (("batch_size", int), ("max_steps", int), ("eval_every", int),
                      ("target", float)):
        train[key] = _need(train, key, kind, f"{where}.train")
        if train[key] <= 0:
            raise ProfileError(f"{where}.train.{key}: must be positive")
    if train["eval_split"] not in ("train", "val", "test"):
        raise ProfileError(f"{where}.train.eval_split: train, val or test")
    if train["eval_every"] > train["max_steps"]:
        raise ProfileError(f"{where}.train: eval_every exceeds max_steps")
    arms: list[ProfileArm] = []
    if "depth_sweep" in table:
        arms += _depth_arms(_need(table, "depth_sweep", dict, where), train,
                            f"{where}.depth_sweep")
    if "optimizers" in table:
        arms += _optimizer_arms(_need(table, "optimizers", dict, where), train,
                                f"{where}.optimizers")
    if not arms:
        raise ProfileError(f"{where}: no arms (add a depth_sweep or optimizers table)")
    names = [a.arm.name for a in arms]
    if len(set(names)) != len(names):
        raise ProfileError(f"{where}: duplicate arm names")
    return _profile(name, table, where, arms, table)


def _profile(name: str, table: dict, where: str, arms, config: dict,
             experiment=None) -> Profile:
    prof = Profile(
        name=name, description=str(table.get("description", "")),
        dataset=_need(table, "dataset", str, where),
        seeds=_need(table, "seeds", int, where),
        baseline_seeds=_need(table, "baseline_seeds", int, where),
        baseline_seed_offset=int(table.get("baseline_seed_offset", 0)),
        seed_offset=_need(table, "seed_offset", int, where),
        max_steps_ratio=float(table.get("max_steps_ratio", 1.15)),
        max_accuracy_drop=float(table.get("max_accuracy_drop", 0.01)),
        alpha=float(table.get("alpha", 0.01)), arms=tuple(arms), config=config,
        experiment=experiment)
    if prof.seeds < 2 or prof.baseline_seeds < 2:
        raise ProfileError(f"{where}: seeds and baseline_seeds must be >= 2")
    if set(prof.baseline_seed_list()) & set(prof.current_seed_list()):
        raise ProfileError(f"{where}: seed_offset block overlaps the baseline's seeds")
    if prof.max_steps_ratio < 1 or prof.max_accuracy_drop < 0 or not 0 < prof.alpha < 1:
        raise ProfileError(f"{where}: need max_steps_ratio >= 1, max_accuracy_drop >= 0, "
                           "0 < alpha < 1")
    return prof


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """All profiles of a TOML file; ProfileError (one line) for any problem."""
    path = Path(path)
    doc = read_toml(path, ProfileError, "profiles file")
    tables = doc.get("profiles")
    if not isinstance(tables, dict) or not tables:
        raise ProfileError(f"{path}: no [profiles.<name>] tables")
    return {name: parse_profile(name, t) for name, t in tables.items()}


def load_profile_data(profile: Profile, data_dir=None):
    """The profile's data set (no fallback: a profile is pinned to its data set)."""
    from dnnbench.data import load_dataset

    return load_dataset(profile.dataset, data_dir=data_dir, download=False)


def run_profile(profile: Profile, data, seeds: Sequence[int], *, timing: bool = True,
                spec_transform: Callable[[RunSpec], RunSpec] | None = None,
                arms: Sequence[str] | None = None,
                on_arm: Callable[[str, float], None] | None = None) -> pd.DataFrame:
    """Train every arm of ``profile`` on ``seeds`` (one vmapped program per arm).

    ``spec_transform`` changes the specs (benchmarks/gate.py injects regressions with it; the
    arm names stay); ``arms`` restricts the run to those arm names; ``on_arm(name, seconds)``
    is called after each arm.  Returns one row per (arm, seed) with :data:`RUN_COLUMNS`.
    """
    import time

    from dnnbench.experiments.common import seed_rows, spec_columns
    from dnnbench.train.arm import train_arm

    seeds = [int(s) for s in seeds]
    if profile.experiment is not None:
        if spec_transform is not None or arms is not None:
            raise ProfileError(f"profile {profile.name}: an experiment profile runs whole")
        return _run_experiment_profile(profile, data, seeds, timing, on_arm)
    frames = []
    for pa in profile.arms:
        arm = pa.arm
        if arms is not None and arm.name not in arms:
            continue
        spec = spec_transform(arm.spec) if spec_transform else arm.spec
        t0 = time.perf_counter()
        result = train_arm(spec, data, seeds, timing=timing)
        rows = [{"profile": profile.name, "dataset": data.name, "group": pa.group,
                 "arm": arm.name, **spec_columns(spec), **r, "max_steps": spec.max_steps,
                 "spec_hash": spec.hash} for r in seed_rows(result, seeds, spec.target)]
        frames.append(pd.DataFrame(rows)[RUN_COLUMNS])
        if on_arm is not None:
            on_arm(arm.name, time.perf_counter() - t0)
    runs = pd.concat(frames, ignore_index=True)
    runs["steps_to_target"] = runs["steps_to_target"].astype("Int64")
    return runs


def _run_experiment_profile(profile: Profile, data, seeds: list[int], timing: bool,
                            on_arm) -> pd.DataFrame:
    """The experiment's programs (its arms as lanes), one row per (arm, seed) in the
    experiment's result schema, with the profile's columns first."""
    import time

    from dnnbench.run.protocols import build_units

    frames = []
    for unit in build_units(profile.experiment, data, seeds, timing=timing):
        t0 = time.perf_counter()
        frames.append(unit.compute()[0])
        if on_arm is not None:
            on_arm(unit.label, time.perf_counter() - t0)
    runs = pd.concat(frames, ignore_index=True)
    runs.insert(0, "group", profile.experiment.name)
    runs.insert(0, "dataset", data.name)
    runs.insert(0, "profile", profile.name)
    return runs
