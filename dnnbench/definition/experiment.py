"""Experiments as data: a TOML file per experiment, read, checked and expanded into arms.

An experiment file holds (every key but ``name`` optional)::

    name = "my-grid"                 # lower-case words joined by "-"
    protocol = "train"               # how arms are trained: train | transfer (see protocols)
    title = "..."                    # one line
    question = "..."                 # the question it answers, one line
    dataset = "digits"               # default data set (mnist falls back offline)
    seeds = 5                        # paired seeds per arm
    relative_target = 0.98          # (optional) the target is this fraction of the best
                                     # arm's median final eval accuracy, found after training
    expected = "..."                 # the expected result, in words
    cost = "..."                     # what a full run costs, in words
    reference = { bn = "off" }       # the arm every other is compared with, paired by seed
    show = ["steps_to_target", ...]  # summary columns (default: steps, final eval, test acc.)

    [base]                           # run settings shared by every arm (see SETTINGS)
    widths = [64, 64]
    optimizer = "adam"

    [factors]                        # a grid: every combination of levels is an arm
    learning_rate = [0.001, 0.01]    # a setting and its levels
    [factors.bn]                     # named levels, each a table of settings
    off = { norm = "none" }
    on = { norm = "batch", bn_logits = true }

    [tune]                           # (optional) tuned arms: see below
    learning_rate = [1e-4, 1e-3, 1e-2]
    by = "final_eval_accuracy"

    [quick]                          # the smoke variant (--quick): seconds, not minutes
    seeds = 2
    subset = true                    # first 4,000 training / 1,000 evaluation examples
    set = { max_steps = 100, depth = [1, 2] }   # settings or factor levels replaced

    [[claims]]                       # what the textbook says, checked against the summary
    text = "BN needs fewer steps at depth 5 and more"
    compare = { bn = "on" }          # arms with these levels, against the reference
    where = { depth = [5, 7] }       # (optional) only these levels
    metric = "steps_to_target"       # or a final metric column
    expect = "fewer"                 # fewer | more | higher | lower | same | not-lower
    # compare (or where) select the arms; a list of levels in compare: only the best of them
    # (by the mean of the metric)
    # optional: against = { reg = "l2" } compares with that arm instead of the reference (a
    # list of levels: the one of them with the best mean of the metric); versus = "metric"
    # compares each arm's metric with its own other metric (paired by seed, no second arm);
    # margin = 0.002: for same (the difference's interval within +-margin) and not-lower
    # (its lower bound above -margin)

Every run setting of :class:`dnnbench.spec.RunSpec` may be set in ``[base]``, varied as a
factor, or overridden with ``--set key=value`` (a comma list replaces a factor's levels), and
so may the derived settings ``depth`` (the first ``depth`` of ``widths``, or ``width`` units
each), ``width``, ``epochs`` (the budget in passes over the training split),
``train_size`` (the first n training examples), and every coefficient of the arm's optimizer
(``momentum``, ``b1``, ``b2``, ``eps``, ``weight_decay``, ...: see ``dnnbench list``) and
every parameter of the arm's schedule (``decay_steps``, ``exponent``, ``boundary1``,
``pct_start``, ...; lane values like the coefficients).
Optimizers, activations, initializers and schedules may be plug-ins named by import path
(``package.module:factory``; see :mod:`dnnbench.registry`).

Tuning (``[tune]``, train protocol): every arm is also reported as a *tuned* arm. The table
gives a grid of lane values (``learning_rate``, any other lane setting such as ``dropout`` or
``l2``, or the optimizer's coefficients; several keys: every combination) and ``by``, the
eval-split metric whose median over the seeds picks the grid point (``final_eval_accuracy``,
the default, or ``best_eval_accuracy``: a diverged run counts as 0; ``final_eval_loss``: as
infinite; ties: the smaller values). The grid points are lanes of the arm's own program (no
extra compile). The factor ``lr_source`` (levels ``default``, ``tuned``; appended to the
factors unless the file lists it) tells the arms apart: a default arm trains its own
settings, a tuned arm is the sweep's runs at the chosen point (its columns carry the chosen
values). ``--set lr_source=default`` leaves the sweep out. The choice is made on the eval
split, so a tuned arm's eval-split numbers are optimistic; its test accuracy is not.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from dnnbench import choices
from dnnbench.definition import figures, protocols, search
from dnnbench.definition.claims import SEARCH_TESTS, claim_docs, parse_claim
from dnnbench.definition.settings import (
    COLUMN_ORDER,
    DEFAULT_SHOW,
    METRICS,
    SETTINGS,
    TUNE_BY,
    TUNE_FACTOR,
    TUNE_LEVELS,
    ExperimentError,
    Setting,
    check_setting,
    check_type,
    fail,
    is_number,
    level_of,
)
from dnnbench.definition.specs import make_spec
from dnnbench.spec import LANE_SETTINGS

# the packaged experiment files (a folder of data, not a package: a package of that name would
# shadow :func:`catalogue` on ``dnnbench.definition``). A file added there is listed by
# `dnnbench list`, runs as `dnnbench run NAME` and is tested by the catalogue contract test
# (tests/test_experiment_files.py): it loads, and its quick variant runs.
CATALOGUE_FOLDER = "catalogue"
# the packaged files in reading order (reports, listings): the three main experiments, then
# the chapter's order (initialization and activations, normalization, gradients, reuse,
# optimizers, schedules, regularization, hyper-parameter search, defaults)
READING_ORDER = ("bn-depth", "optimizer-comparison", "transfer-learning",
                 "init-activation", "activation-cost", "dying-relu", "selu", "bn-placement", "bn-inference",
                 "normalization", "normalization-lr", "bn-scale-invariance", "bn-regularizes",
                 "bn-init-scale", "input-normalization",
                 "clipping", "transfer-reuse", "pretraining",
                 "schedules", "losses", "regularization", "lr-wd-dropout", "search",
                 "random-vs-grid", "random-vs-grid-3", "lr-scale", "default-configs")
MAX_ARMS = 1000  # the arms of one experiment (dnnbench.limits "grid")


TOP_KEYS = {"name", "title", "question", "dataset", "seeds", "expected", "found", "cost",
            "reference",
            "show", "base", "factors", "quick", "claims", "protocol", "search",
            "relative_target", "figures", "tune", "timing_rounds"}


QUICK_KEYS = {"seeds", "subset", "set", "search"}


@dataclasses.dataclass(frozen=True)
class Tune:
    """The ``[tune]`` table: a grid of lane values (their combinations are the sweep of
    every tuned arm) and the eval-split metric whose median over seeds picks the point."""

    grid: dict[str, tuple[float, ...]]
    by: str = TUNE_BY[0]

    def points(self) -> list[dict[str, float]]:
        """The grid's points, sorted (the first of equal medians wins: the smaller values)."""
        keys = list(self.grid)
        return [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(sorted(self.grid[k]) for k in keys))]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment file, checked (see the module docstring)."""

    name: str
    source: str  # the file it was read from
    title: str = ""
    question: str = ""
    dataset: str = "mnist"
    seeds: int = 5
    expected: str = ""
    # what the committed full run found, and for each contradicted or inconclusive claim the
    # reason (design, test, data) and the literature that explains it
    found: str = ""
    cost: str = ""
    base: dict[str, Any] = dataclasses.field(default_factory=dict)
    factors: dict[str, tuple] = dataclasses.field(default_factory=dict)  # name -> levels
    # factor -> {level name: settings} for factors with named levels
    named_levels: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)
    reference: dict[str, Any] = dataclasses.field(default_factory=dict)
    show: tuple[str, ...] = DEFAULT_SHOW
    quick: dict[str, Any] = dataclasses.field(default_factory=dict)
    claims: tuple = ()  # definition.claims.Claim
    protocol: str | None = None
    search: Any = None  # a search.Search: its points are the levels of the factor "point"
    relative_target: float | None = None  # fraction of the best median final eval accuracy
    figures: tuple[str, ...] = ()  # figure kinds (dnnbench.definition.figures); () = default
    tune: Tune | None = None  # the [tune] table
    # > 0: after training, every program's step is timed again in this many rounds, the
    # programs interleaved (dnnbench.run.timing): the "<name>-<dataset>-timing.csv" table
    timing_rounds: int = 0

    @property
    def n_arms(self) -> int:
        return math.prod(len(v) for v in self.factors.values())

    @property
    def command(self) -> str:
        return f"dnnbench run {self.name}"


def catalogue() -> dict[str, Path]:
    """The packaged experiment files: name -> path, sorted by name."""
    folder = resources.files("dnnbench.definition").joinpath(CATALOGUE_FOLDER)
    files = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))
    return {p.stem: p for p in files}


def find(name_or_path: str) -> Path:
    """A packaged experiment by name, or a file by path."""
    packaged = catalogue()
    if name_or_path in packaged:
        return packaged[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ExperimentError(f"experiment file not found: {path}")
        return path
    raise ExperimentError(f"unknown experiment {name_or_path!r}: neither a packaged experiment "
                          f"({', '.join(packaged)}) nor a .toml file")


def packaged_doc(name: str) -> dict[str, Any]:
    """A packaged file's TOML document as written, unchecked (e.g. for the defaults a preset
    command names in its help, without building the experiment)."""
    import tomllib

    return tomllib.loads(catalogue()[name].read_text(encoding="utf-8"))


def recorded_source(exp: Experiment) -> str:
    """The experiment's file as results record it: a packaged file by its name, another by its
    path relative to the working folder when it lies under it (never a temporary or
    machine-specific absolute path of the installed package)."""
    packaged = catalogue().get(exp.name)
    path = Path(exp.source)
    if packaged is not None and path.resolve() == packaged.resolve():
        return exp.name
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return exp.source


def as_packaged_now(exp: Experiment, packaged: str | None = None) -> Experiment:
    """A recorded definition with the claims and texts (expected, found, cost: written
    after the committed run, from what it measured) of its packaged file as it is now (``packaged``: the file's name as the metadata record it, e.g. bn-depth for
    the depth-sweep preset; default the experiment's own name): the claims are checked as the
    packaged file states them, as `dnnbench claims` does. Any other experiment as it is."""
    name = packaged if packaged in catalogue() else exp.name
    if name not in catalogue():
        return exp
    now = load(name)
    return dataclasses.replace(exp, claims=tuple(c for c in now.claims
                                                 if not missing_factors(c, exp)),
                               expected=now.expected, found=now.found, cost=now.cost)


def missing_factors(claim, exp: Experiment) -> list[str]:
    """The factors a claim names (compare, where, against, rank, order) that ``exp`` lacks:
    results of an earlier design of the file, on which the claim cannot be checked."""
    if claim.test in SEARCH_TESTS:  # names columns of the search's own table, not factors
        return []
    named = {*claim.compare, *claim.where, *claim.against,
             *(f[0] for f in (claim.rank, claim.order) if f)}
    return sorted(named - set(exp.factors))


def load(name_or_path: str) -> Experiment:
    """Read and check an experiment file (by packaged name or path)."""
    import tomllib

    path = find(name_or_path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ExperimentError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ExperimentError(f"{path}: cannot be read ({e.strerror})") from None
    return parse(doc, str(path))


def parse(doc: Mapping, source: str) -> Experiment:
    """An :class:`Experiment` from a TOML document; ExperimentError for anything unknown or
    out of range, naming the key and the file."""
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        fail(source, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(TOP_KEYS))}")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
        fail(source, f"name must be lower-case words joined by '-', got {name!r}")
    for key in ("title", "question", "expected", "found", "cost"):
        check_type(doc.get(key, ""), str, source, key)
    protocols.get(check_type(doc.get("protocol", protocols.DEFAULT), str, source, "protocol"),
                  source)
    dataset = check_type(doc.get("dataset", "mnist"), str, source, "dataset")
    if dataset not in choices.DATASETS and not choices.is_user_dataset(dataset):
        fail(source, f"dataset: unknown value {dataset!r}; allowed: "
                      f"{', '.join(choices.DATASETS)}, a file.npz (relative to the folder the "
                      "command runs in) or a plug-in package.module:load")
    seeds = _count(doc.get("seeds", 5), source, "seeds")
    base = {k: check_setting(k, v, f"{source} [base]")
            for k, v in check_type(doc.get("base", {}), dict, source, "[base]").items()}
    factors, named = {}, {}
    for key, levels in check_type(doc.get("factors", {}), dict, source, "[factors]").items():
        factors[key], named_levels = _levels(key, levels, f"{source} [factors]")
        if named_levels is not None:
            named[key] = named_levels
    tune = _tune(doc["tune"], source, doc) if "tune" in doc else None
    if tune is not None and TUNE_FACTOR not in factors:
        factors[TUNE_FACTOR] = TUNE_LEVELS
    exp = Experiment(
        name=name, source=source, title=doc.get("title", ""),
        question=doc.get("question", ""), dataset=dataset, seeds=seeds,
        expected=doc.get("expected", ""), found=doc.get("found", "").strip(),
        cost=doc.get("cost", ""), base=base,
        factors=factors, named_levels=named, protocol=doc.get("protocol"),
        relative_target=_fraction(doc.get("relative_target"), source), tune=tune,
        timing_rounds=_timing_rounds(doc.get("timing_rounds", 0), source))
    if "search" in doc:
        exp = with_search(exp, doc["search"], source)
    reference = check_type(doc.get("reference", {}), dict, source, "reference")
    for key, level in reference.items():
        level_of(exp, key, level, f"{source} reference")
    show = doc.get("show", list(DEFAULT_SHOW))
    if not isinstance(show, list) or not show:
        fail(source, "show must be a list of metric names")
    for m in show:
        if m not in METRICS:
            fail(source, f"show: unknown metric {m!r}; allowed: {', '.join(METRICS)}")
    exp = dataclasses.replace(exp, reference=dict(reference), show=tuple(show),
                              figures=_figures(doc.get("figures"), source))
    if exp.n_arms > MAX_ARMS:
        fail(source, f"the factors make {exp.n_arms:,} arms, above the limit of {MAX_ARMS:,}")
    quick = _quick(check_type(doc.get("quick", {}), dict, source, "[quick]"), exp, source)
    claims = doc.get("claims", [])
    if not isinstance(claims, list):
        fail(source, "claims must be an array of tables ([[claims]])")
    exp = dataclasses.replace(exp, quick=quick, claims=tuple(
        parse_claim(c, i, exp, source) for i, c in enumerate(claims)))
    expand(exp)  # every arm must make a valid spec (names, coefficients, depths)
    return exp


MAX_TIMING_ROUNDS = 50


def _timing_rounds(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= MAX_TIMING_ROUNDS:
        fail(where, f"timing_rounds must be a whole number from 0 to {MAX_TIMING_ROUNDS} "
                    f"(got {value!r})")
    return value


def _figures(value, where: str) -> tuple[str, ...]:
    """The figure kinds a file declares (dnnbench.definition.figures); () = the default."""
    if value is None:
        return ()
    allowed = figures.names()
    if not isinstance(value, list) or not value:
        fail(where, f"figures must be a list of figure names: {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            fail(where, f"figures: unknown figure {v!r}; allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def _tune(table, source: str, doc: Mapping) -> Tune:
    """The ``[tune]`` table, checked: lane settings with lists of values, and ``by``."""

    where = f"{source} [tune]"
    check_type(table, dict, source, "[tune]")
    if doc.get("protocol", protocols.DEFAULT) != protocols.DEFAULT or "search" in doc:
        fail(where, "tuning needs the train protocol and no [search]")
    by = table.get("by", TUNE_BY[0])
    if by not in TUNE_BY:
        fail(where, f"by: unknown {by!r}; allowed: {', '.join(TUNE_BY)} (eval-split metrics)")
    grid = {}
    for key, values in table.items():
        if key == "by":
            continue
        if key in SETTINGS and key not in LANE_SETTINGS or protocols.setting(key) is not None:
            fail(where, f"{key} is not a lane setting; tunable: {', '.join(LANE_SETTINGS)} and "
                         "the optimizer's coefficients (see `dnnbench list`)")
        if not isinstance(values, list) or not values:
            fail(where, f"{key} must be a non-empty list of values")
        checked = tuple(check_setting(key, v, f"{where} {key}") for v in values)
        if len(set(checked)) != len(checked):
            fail(where, f"{key} repeats a value: {values}")
        grid[key] = checked
    if not grid:
        fail(where, "give the grid of at least one lane setting, e.g. learning_rate = "
                     "[0.0001, 0.001, 0.01]")
    if math.prod(len(v) for v in grid.values()) > MAX_ARMS:
        fail(where, f"the grid has more than {MAX_ARMS:,} points")
    return Tune(grid, by)


def _fraction(value, where: str) -> float | None:
    """``relative_target``: a fraction in (0, 1], or None (absent)."""
    if value is None:
        return None
    if not is_number(value) or not 0 < value <= 1:
        fail(where, f"relative_target must be a number in (0, 1], got {value!r}")
    return float(value)


def _count(value, where: str, key: str, maximum: int = 1000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        fail(where, f"{key} must be an integer from 1 to {maximum}, got {value!r}")
    return value


def _levels(key: str, levels, where: str) -> tuple[tuple, dict | None]:
    """(levels, named levels or None) of a factor."""
    if isinstance(levels, dict):  # named levels: level -> settings
        if not levels:
            fail(where, f"factor {key!r} has no levels")
        named = {}
        for level, settings in levels.items():
            check_type(settings, dict, where, f"{key}.{level}")
            named[level] = {k: check_setting(k, v, f"{where} {key}.{level}")
                            for k, v in settings.items()}
        return tuple(named), named
    if key not in SETTINGS and not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        fail(where, f"unknown setting {key!r}")
    if not isinstance(levels, list) or not levels:
        fail(where, f"factor {key!r} must be a non-empty list of levels (or a table of "
                     "named levels)")
    checked = tuple(check_setting(key, v, f"{where} {key}") for v in levels)
    if len(set(checked)) != len(checked):
        fail(where, f"factor {key!r} repeats a level: {list(levels)}")
    return checked, None


def _quick(quick: dict, exp: Experiment, where: str) -> dict:
    unknown = sorted(set(quick) - QUICK_KEYS)
    if unknown:
        fail(where, f"[quick]: unknown key {unknown[0]!r}; allowed: "
                     f"{', '.join(sorted(QUICK_KEYS))}")
    if "search" in quick:
        if exp.search is None:
            fail(where, "[quick] search: the file has no [search]")
        check_type(quick["search"], dict, where, "[quick] search")
        with_search(exp, {**exp.search.source, **quick["search"]}, f"{where} [quick]")
    out = {"seeds": _count(quick.get("seeds", min(exp.seeds, 2)), where, "[quick] seeds"),
           "subset": quick.get("subset", True), "set": {}}
    if not isinstance(out["subset"], bool):
        fail(where, "[quick] subset must be true or false")
    for key, value in check_type(quick.get("set", {}), dict, where, "[quick] set").items():
        out["set"][key] = value
    if "search" in quick:
        out["search"] = dict(quick["search"])
    override(exp, out["set"], f"{where} [quick] set")  # checked now, applied with --quick
    return out


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` or ``key=v1,v2`` from the command line; values read as TOML where they
    can be (numbers, true/false, [lists]), else as names."""
    import tomllib

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ExperimentError(f"--set {text!r}: expected key=value (e.g. learning_rate=0.01 or "
                              "learning_rate=0.001,0.01)")

    def value(s: str):
        s = s.strip()
        if not s:
            raise ExperimentError(f"--set {text!r}: empty value")
        try:
            return tomllib.loads(f"v = {s}")["v"]
        except tomllib.TOMLDecodeError:
            return s

    if raw.strip().startswith("["):
        return key, value(raw)
    parts = raw.split(",")
    values = [value(p) for p in parts]
    return key, values if len(values) > 1 else values[0]


def override(exp: Experiment, assignments: Mapping[str, Any], where: str = "--set"
             ) -> Experiment:
    """``exp`` with settings replaced: a factor's levels (a list, or one value: the factor
    then has one level; a table: named levels, level -> settings, as in ``[factors]``), or a
    base setting (a list makes it a factor)."""
    base, factors, named = dict(exp.base), dict(exp.factors), dict(exp.named_levels)
    for key, value in assignments.items():
        if isinstance(value, dict):  # named levels (a profile of `dnnbench check`)
            factors[key], named[key] = _levels(key, value, where)
            base.pop(key, None)
            continue
        if key in named:
            levels = value if isinstance(value, list) else [value]
            unknown = [v for v in levels if v not in named[key]]
            if unknown:
                fail(where, f"{key}: unknown level {unknown[0]!r}; levels: "
                             f"{', '.join(named[key])}")
            if len(set(levels)) != len(levels):
                fail(where, f"{key} repeats a level: {levels}")
            factors[key] = tuple(levels)
            continue
        is_levels = isinstance(value, list) and not (
            SETTINGS.get(key, Setting("", "")).kind == "widths"
            and all(isinstance(v, int) for v in value))
        if is_levels or key in factors:
            factors[key], _ = _levels(key, value if is_levels else [value], where)
            base.pop(key, None)
        else:
            base[key] = check_setting(key, value, where)
    out = dataclasses.replace(exp, base=base, factors=factors, named_levels=named)
    reference = {k: v for k, v in exp.reference.items()
                 if k in factors and v in factors[k]}
    return dataclasses.replace(out, reference=reference)


def quick_variant(exp: Experiment) -> Experiment:
    """The experiment's smoke variant (its ``[quick]`` table), without interleaved timing
    rounds (a smoke run decides no step-time claim: they need 5 rounds)."""
    if "search" in exp.quick:
        exp = with_search(exp, {**exp.search.source, **exp.quick["search"]},
                          f"{exp.source} [quick]")
    exp = dataclasses.replace(exp, timing_rounds=0)
    return override(exp, exp.quick.get("set", {}), f"{exp.source} [quick] set")


@dataclasses.dataclass(frozen=True)
class ArmSettings:
    """One combination of factor levels: its name, levels and resolved settings."""

    name: str
    levels: tuple[tuple[str, Any], ...]  # (factor, level) in factor order
    settings: dict[str, Any]


def format_level(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def expand(exp: Experiment) -> list[ArmSettings]:
    """Every combination of the factors' levels (the first factor varies slowest), checked
    against the experiment's protocol (its own settings are not run settings)."""
    protocol = protocols.get(exp.protocol, exp.source)
    protocols.check(protocol, exp, exp.source)
    _check_tune(exp)
    names = list(exp.factors)
    arms = []
    for combo in itertools.product(*(exp.factors[n] for n in names)):
        settings = dict(exp.base)
        for n, level in zip(names, combo, strict=True):
            settings.update(exp.named_levels[n][level] if n in exp.named_levels
                            else {n: level})
        label = ",".join(f"{n}={format_level(v)}" for n, v in zip(names, combo, strict=True))
        arms.append(ArmSettings(label or "base", tuple(zip(names, combo, strict=True)),
                                settings))
        make_spec({k: v for k, v in settings.items() if k not in protocol.settings},
                  n_train=None, where=f"{exp.source} arm {label or 'base'}")
        if exp.relative_target is not None and settings.get("stop_at_target", True):
            fail(f"{exp.source} arm {label or 'base'}", "relative_target needs "
                  "stop_at_target = false (the target is found after training, on whole "
                  "curves)")
        if settings.get(TUNE_FACTOR) == "tuned":
            if settings.get("stop_at_target", True):
                fail(f"{exp.source} arm {label}", "[tune] needs stop_at_target = false (the "
                      "grid's points are compared on whole runs)")
            if settings.get("diagnostics"):
                fail(f"{exp.source} arm {label}", "[tune] does not go with diagnostics")
            point = {**settings, **exp.tune.points()[0]}  # the tuned keys fit the arm
            make_spec({k: v for k, v in point.items() if k not in protocol.settings},
                      n_train=None, where=f"{exp.source} [tune] for arm {label}")
    return arms


def _check_tune(exp: Experiment) -> None:
    """The factor lr_source only with [tune], never a setting; a tuned value not a factor."""
    named = [k for levels in exp.named_levels.values() for s in levels.values() for k in s]
    if TUNE_FACTOR in exp.base or TUNE_FACTOR in named or TUNE_FACTOR in exp.named_levels:
        fail(exp.source, f"{TUNE_FACTOR} is a factor (a list of levels: "
                          f"{', '.join(TUNE_LEVELS)}), not a setting")
    if exp.tune is None:
        if TUNE_FACTOR in exp.factors:
            fail(exp.source, f"the factor {TUNE_FACTOR} needs a [tune] table")
        return
    tuned = "tuned" in exp.factors.get(TUNE_FACTOR, ())
    for key in exp.tune.grid:
        if tuned and key in exp.factors and key not in exp.named_levels:
            fail(exp.source, f"{key} is tuned ([tune]) and a factor: tune it or vary it, "
                              "not both")


def tune_sweep(exp: Experiment, arm: ArmSettings) -> list[tuple[ArmSettings, dict[str, float]]]:
    """The arms that a tuned arm is chosen from (one per grid point, named
    ``<arm>|<key>=<value>,...``; its levels are the tuned arm's), with their points; [] for
    any other arm."""
    if exp.tune is None or dict(arm.levels).get(TUNE_FACTOR) != "tuned":
        return []
    out = []
    for point in exp.tune.points():
        label = ",".join(f"{k}={format_level(v)}" for k, v in point.items())
        out.append((ArmSettings(f"{arm.name}|{label}", arm.levels, {**arm.settings, **point}),
                    point))
    return out


def settings_table(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings sorted in the result tables' column order."""
    order = {k: i for i, k in enumerate(COLUMN_ORDER)}
    return dict(sorted(settings.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def describe(exp: Experiment) -> Sequence[str]:
    """Lines that describe the experiment (for `dnnbench list NAME`)."""
    factors = ", ".join(f"{k} ({len(v)})" for k, v in exp.factors.items()) or "none"
    return [f"{exp.name}: {exp.title}", f"question: {exp.question}",
            f"arms: {exp.n_arms} ({factors}); seeds: {exp.seeds}; data set: {exp.dataset}",
            f"command: {exp.command}"]


def to_doc(exp: Experiment) -> dict[str, Any]:
    """``exp`` as the TOML document that :func:`parse` reads back into it (recorded in the
    metadata of its results, so a report rebuilds the experiment without its file)."""
    factors = {k: ({level: dict(settings) for level, settings in exp.named_levels[k].items()
                    if level in v} if k in exp.named_levels else
                   [list(x) if isinstance(x, tuple) else x for x in v])
               for k, v in exp.factors.items() if not (exp.search and k == POINT)}
    claims = claim_docs(exp)
    base = {k: list(v) if isinstance(v, tuple) else v for k, v in exp.base.items()}
    quick = {"seeds": exp.quick.get("seeds", 2), "subset": exp.quick.get("subset", True),
             "set": dict(exp.quick.get("set", {}))} if exp.quick else {}
    doc = {"name": exp.name, "title": exp.title, "question": exp.question,
           "dataset": exp.dataset, "seeds": exp.seeds, "expected": exp.expected,
           "cost": exp.cost, "reference": dict(exp.reference), "show": list(exp.show),
           "base": base, "factors": factors, "quick": quick, "claims": claims}
    if exp.found:
        doc["found"] = exp.found
    if exp.protocol is not None:
        doc["protocol"] = exp.protocol
    if exp.figures:
        doc["figures"] = list(exp.figures)
    if exp.timing_rounds:
        doc["timing_rounds"] = exp.timing_rounds
    if exp.search is not None:
            doc["search"] = search.to_doc(exp.search)
    if exp.relative_target is not None:
        doc["relative_target"] = exp.relative_target
    if exp.tune is not None:
        doc["tune"] = {**{k: list(v) for k, v in exp.tune.grid.items()}, "by": exp.tune.by}
    return doc


POINT = "point"  # the factor whose named levels are a search's points


def with_search(exp: Experiment, doc, where: str, drawn=None) -> Experiment:
    """``exp`` with the search of the ``[search]`` table ``doc`` (or the already ``drawn``
    search.Search): its points become the last factor, ``point`` (named levels)."""
    if drawn is None:
        if POINT in exp.factors and exp.search is None:
            fail(where, f"a file with [search] cannot have a factor named {POINT!r}")
        try:
            drawn = search.parse(doc, where, check_setting)
        except search.SearchError as e:
            raise ExperimentError(str(e)) from None
    factors = {k: v for k, v in exp.factors.items() if k != POINT}
    named = {k: v for k, v in exp.named_levels.items() if k != POINT}
    levels = search.point_levels(drawn)
    factors[POINT], named[POINT] = tuple(levels), levels
    return dataclasses.replace(exp, factors=factors, named_levels=named, search=drawn)
