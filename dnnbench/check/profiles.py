"""Regression profiles (``benchmarks/regression.toml``) and running them.

A profile names a data set, seed counts, gate thresholds and the experiment files whose arms
it gates: ``experiment = "NAME_OR_FILE"`` (one file), or ``[[profiles.X.experiments]]``
entries (several), each with ``set`` overrides (as ``dnnbench run --set``; a table gives a
factor named levels).  Every arm trains to the end of its budget (``stop_at_target =
False``) so that its final accuracy is a quality measure; its steps to target come from the
evaluated curve.  The arms run as their experiment's programs (the arms of one structure
are lanes of one ``jit(vmap)`` program, with all seeds; for ``benchmarks/gate.py``: of many
seed blocks), with the experiment's result schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dnnbench import definition
from dnnbench.data import load_dataset
from dnnbench.files import read_toml
from dnnbench.run.protocols import build_units
from dnnbench.spec import RunSpec

PROFILES_FILE = Path("benchmarks") / "regression.toml"
TOP_KEYS = {"description", "dataset", "seeds", "baseline_seeds", "baseline_seed_offset",
            "seed_offset", "max_steps_ratio", "max_accuracy_drop", "alpha", "experiment",
            "experiments", "set"}
ENTRY_KEYS = {"experiment", "set"}  # of each [[profiles.X.experiments]] entry


class ProfileError(ValueError):
    """A profiles file or profile is unusable (message is user-facing, one line)."""


@dataclasses.dataclass(frozen=True)
class ProfileArm:
    group: str  # the name of the arm's experiment
    name: str  # the arm's name in the runs tables (see Profile.arm_prefix)
    # the arm's settings as a spec, resolved without the data (a budget given in epochs
    # counts one step per epoch here): what a stored baseline's digest covers
    spec: RunSpec


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
    config: dict  # the profile's TOML table, verbatim, and its arms' digest: what a
    # baseline must match
    experiments: tuple[Any, ...] = ()  # dnnbench.definition.Experiment, overrides applied

    @property
    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)

    def arm_prefix(self, experiment) -> str:
        """What precedes the arm names of ``experiment`` (named as ``dnnbench run`` names
        them): nothing in a profile of one experiment, ``<experiment name>/`` in one of
        several."""
        return _arm_prefix(experiment, self.experiments)

    def baseline_seed_list(self, offset: int | None = None) -> list[int]:
        start = self.baseline_seed_offset if offset is None else offset
        return list(range(start, start + self.baseline_seeds))

    def current_seed_list(self, offset: int | None = None) -> list[int]:
        start = self.seed_offset if offset is None else offset
        return list(range(start, start + self.seeds))


def _arm_prefix(experiment, experiments: Sequence) -> str:
    return f"{experiment.name}/" if len(experiments) > 1 else ""


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


def _entries(table: dict, where: str) -> list[tuple[str, dict, str]]:
    """(experiment, overrides, where) of every experiment of a profile: the profile's own
    ``set`` applies to all of them, an entry's ``set`` on top of it."""
    common = dict(_need(table, "set", dict, where)) if "set" in table else {}
    if "experiment" in table and "experiments" in table:
        raise ProfileError(f"{where}: 'experiment' (one experiment file) and "
                           f"[[{where}.experiments]] (several) exclude each other")
    if "experiment" not in table and "experiments" not in table:
        raise ProfileError(f"{where}: no experiment: name one with experiment = "
                           f"\"NAME_OR_FILE\", or several as [[{where}.experiments]] entries")
    if "experiment" in table:
        return [(_need(table, "experiment", str, where), common, where)]
    items = _need(table, "experiments", list, where)
    if not items:
        raise ProfileError(f"{where}.experiments: list at least one experiment")
    out = []
    for i, item in enumerate(items):
        at = f"{where}.experiments[{i}]"
        if not isinstance(item, dict):
            raise ProfileError(f"{at}: expected a table with 'experiment' and 'set'")
        _unknown(item, ENTRY_KEYS, at)
        own = _need(item, "set", dict, at) if "set" in item else {}
        out.append((_need(item, "experiment", str, at), {**common, **own}, at))
    return out


def _experiment(source: str, overrides: dict, where: str):
    """(experiment, [(arm name, spec)]) of one experiment file with the overrides, trained to
    the end of the budget (``stop_at_target = false``)."""
    overrides = {**overrides, "stop_at_target": False}
    try:
        exp = definition.load(source)
        if exp.tune is not None:  # the default arms: a tuned arm is chosen, not trained as one
            overrides.setdefault(definition.TUNE_FACTOR, "default")
        exp = definition.override(exp, overrides, f"{where}.set")
        expanded = definition.expand(exp)
        arms = [(a.name, definition.make_spec(a.settings, None, where)) for a in expanded]
    except definition.ExperimentError as e:
        raise ProfileError(f"{where}: {e}") from None
    if "max_steps" in overrides and any("epochs" in a.settings for a in expanded):
        raise ProfileError(f"{where}.set: {exp.name} gives its budget in epochs, which wins "
                           "over max_steps: set epochs instead")
    return exp, arms


def parse_profile(name: str, table: dict) -> Profile:
    """A profile's table checked; its experiments loaded with their overrides. The config
    that a stored baseline must match is the table plus a digest of every arm's spec, so a
    changed experiment file makes the baseline incompatible."""
    where = f"profiles.{name}"
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: expected a table")
    _unknown(table, TOP_KEYS, where)
    experiments, named_arms = [], []
    for source, overrides, at in _entries(table, where):
        exp, arms = _experiment(source, overrides, at)
        if any(e.name == exp.name for e in experiments):
            raise ProfileError(f"{at}: experiment {exp.name!r} is listed twice; list each "
                               "experiment once (a factor may take several levels)")
        experiments.append(exp)
        named_arms.append((exp, arms))
    arms = [ProfileArm(exp.name, _arm_prefix(exp, experiments) + arm, spec)
            for exp, pairs in named_arms for arm, spec in pairs]
    digest = hashlib.sha256(" ".join(a.spec.hash for a in arms).encode()).hexdigest()[:16]
    config = {**table, "experiment_arms_digest": digest}
    return _profile(name, table, where, arms, config, tuple(experiments))


def _profile(name: str, table: dict, where: str, arms, config: dict,
             experiments: tuple) -> Profile:
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
        experiments=experiments)
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
    return load_dataset(profile.dataset, data_dir=data_dir, download=False)


def run_profile(profile: Profile, data, seeds: Sequence[int], *, timing: bool = True,
                transform: Callable[[Any], Any] | None = None,
                experiments: Collection[str] | None = None,
                on_arm: Callable[[str, float], None] | None = None) -> pd.DataFrame:
    """Train the arms of ``profile`` on ``seeds``: its experiments' programs (the arms of
    one structure are the lanes of one vmapped program, with all seeds).

    ``transform`` changes each experiment (a ``definition.Experiment``) before it runs
    (benchmarks/gate.py injects regressions with it; the arm names must stay);
    ``experiments`` restricts the run to the experiments of those names;
    ``on_arm(label, seconds)`` is called after each program.  Returns one row per (arm,
    seed) in the experiments' result schema, with the columns profile, dataset and group
    (the experiment's name) first and the arms named as in ``profile.arms``.
    """
    import time


    seeds = [int(s) for s in seeds]
    frames = []
    for exp in profile.experiments:
        if experiments is not None and exp.name not in experiments:
            continue
        prefix = profile.arm_prefix(exp)
        for unit in build_units(transform(exp) if transform else exp, data, seeds,
                                timing=timing):
            t0 = time.perf_counter()
            runs = unit.compute()[0]
            runs["arm"] = prefix + runs["arm"].astype(str)
            runs.insert(0, "group", exp.name)
            runs.insert(0, "dataset", data.name)
            runs.insert(0, "profile", profile.name)
            frames.append(runs)
            if on_arm is not None:
                on_arm(prefix + unit.label, time.perf_counter() - t0)
    if not frames:
        raise ProfileError(f"profile {profile.name}: no experiment to run")
    return pd.concat(frames, ignore_index=True)
