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

CATALOGUE_PACKAGE = "dnnbench.experiments.catalogue"
MAX_ARMS = 1000  # the arms of one experiment (dnnbench.limits "grid")


class ExperimentError(ValueError):
    """A bad experiment file or override; the message is one line naming the key and file."""


# ------------------------------------------------------------------------------ the settings

@dataclasses.dataclass(frozen=True)
class Setting:
    """A run setting's type and allowed values: kind is int, float, bool, str, widths; for
    names, ``names`` (a tuple, or a registry attribute name) lists the allowed values."""

    kind: str
    about: str
    names: tuple[str, ...] | None = None
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # exclusive for floats with ``open_max``
    open_max: bool = False
    plugins: bool = False  # a name may also be package.module:factory


SETTINGS: dict[str, Setting] = {
    # model
    "widths": Setting("widths", "hidden-layer widths, e.g. [300, 100]"),
    "depth": Setting("int", "hidden layers: the first `depth` of widths (or `width` each)",
                     minimum=1, maximum=1000),
    "width": Setting("int", "units of every hidden layer (with depth)", minimum=1,
                     maximum=65536),
    "activation": Setting("str", "hidden activation", choices.ACTIVATIONS, plugins=True),
    "init": Setting("str", "kernel initializer of the hidden layers ('default': He for the "
                    "ReLU family, Glorot for sigmoid/tanh, LeCun for SELU)",
                    ("default", *choices.INITIALIZERS), plugins=True),
    "head_init": Setting("str", "initializer of the output layer", choices.INITIALIZERS,
                         plugins=True),
    "norm": Setting("str", "normalization of the hidden layers", choices.NORMALIZATIONS),
    "norm_position": Setting("str", "normalization layer before or after the activation",
                             choices.BN_POSITIONS),
    "norm_groups": Setting("int", "group norm: groups of units per hidden layer (divides "
                           "every width)", minimum=1, maximum=65536),
    "input_norm": Setting("bool", "batch norm on the inputs, as the first layer"),
    "inputs": Setting("str", "input features: unit (pixels / 255, as loaded), raw (pixel "
                      "values in [0, 255]) or standardized (train split's mean and std)",
                      choices.INPUTS),
    "bn_eval": Setting("str", "BN statistics at evaluation: running averages, the training "
                       "split's (recomputed at each evaluation), or each evaluated batch's",
                       choices.BN_EVAL),
    "bn_eval_batch": Setting("int", "bn_eval batch: examples per evaluated batch (0 = the "
                             "training batch size)", minimum=0, maximum=2**31 - 1),
    "bn_momentum": Setting("float", "BN running-average momentum (a lane value)", minimum=0,
                           maximum=1, open_max=True),
    "bn_epsilon": Setting("float", "epsilon of the normalization layers (a lane value)",
                          minimum=0),
    "bn_logits": Setting("bool", "batch-normalize the logits too (BN arms)"),
    "dropout": Setting("float", "dropout rate (a lane value), after every hidden layer or "
                       "before every dense layer (dropout_placement)", minimum=0, maximum=1,
                       open_max=True),
    "dropout_placement": Setting("str", "dropout after every hidden layer, or before every "
                                 "dense layer (the inputs too, at the same rate)",
                                 choices.DROPOUT_PLACEMENTS),
    "dropout_kind": Setting("str", "standard (inverted) dropout, or alpha dropout (SELU)",
                            choices.DROPOUTS),
    "leaky_slope": Setting("float", "leaky_relu's slope for negative inputs (a lane value)",
                           minimum=0),
    "standardize": Setting("bool", "standardize the inputs with the training split's "
                           "per-feature mean and std"),
    "loss": Setting("str", "softmax over the classes, or one sigmoid unit (2 classes)",
                    ("softmax", "sigmoid")),
    # optimization
    "optimizer": Setting("str", "optimizer", choices.OPTIMIZERS, plugins=True),
    "learning_rate": Setting("float", "learning rate (a lane value)", minimum=0),
    "schedule": Setting("str", "learning-rate schedule", choices.SCHEDULES, plugins=True),
    "clip": Setting("str", "gradient clipping: none, value (each component into [-t, t]), "
                    "norm (each tensor by its own norm, Keras clipnorm) or global_norm (all "
                    "tensors by one factor); t = clip_norm", choices.CLIPPINGS),
    "clip_norm": Setting("float", "gradient clipping threshold t of the clip kind, 0 = off (a "
                         "lane value)", minimum=0),
    "l1": Setting("float", "l1 penalty coefficient on the kernels (a lane value)", minimum=0),
    "l2": Setting("float", "l2 penalty coefficient on the kernels (a lane value)", minimum=0),
    "max_norm": Setting("float", "max-norm: after every step each unit's incoming weights "
                        "rescaled to norm <= this, 0 = off (a lane value)", minimum=0),
    "decay_params": Setting("str", "what decoupled weight decay (weight_decay) shrinks: all "
                            "parameters, or the kernels only (as the l1/l2 penalties)",
                            choices.DECAY_PARAMS),
    "batch_size": Setting("int", "mini-batch size", minimum=1),
    # budget and evaluation
    "max_steps": Setting("int", "training steps of the budget", minimum=1, maximum=2**31 - 1),
    "epochs": Setting("int", "the budget in epochs (passes over the training split)",
                      minimum=1, maximum=100000),
    "eval_every": Setting("int", "steps between evaluations (or \"epoch\")", minimum=1,
                          maximum=2**31 - 1),
    "eval_split": Setting("str", "the split evaluated during training", ("val", "test")),
    "target": Setting("float", "accuracy on the eval split that counts as reached; 0 = none",
                      minimum=0, maximum=1),
    "stop_at_target": Setting("bool", "stop a seed once it reaches the target"),
    "early_stopping": Setting("int", "early stopping's patience: stop after this many "
                              "evaluations without a lower validation loss and restore the "
                              "best parameters; 0 = off", minimum=0, maximum=2**31 - 1),
    "eval_train": Setting("bool", "evaluate the training split too (without dropout or "
                          "penalty): training accuracy and generalization gap"),
    "mc_samples": Setting("int", "MC dropout: stochastic passes of the final test evaluation "
                          "(e.g. 100); 0 = off", minimum=0, maximum=10000),
    "train_size": Setting("int", "use the first n training examples (0 = all)", minimum=0),
    "diagnostics": Setting("bool", "per-layer diagnostics at step 0 and every evaluation "
                           "(written to <name>-<dataset>-layers.csv)"),
    # files with [tune]
    "lr_source": Setting("str", "a factor of files with [tune]: default (the arm's own "
                         "settings) or tuned (the best point of the [tune] grid)",
                         ("default", "tuned")),
}
# settings that are not RunSpec fields: resolved into the spec by ``make_spec``
DERIVED = ("depth", "width", "epochs", "train_size")
STRUCTURE_ONLY = ("train_size",)  # shapes the data rather than the spec
COLUMN_ORDER = ("depth", "widths", "activation", "init", "head_init", "norm", "norm_position",
                "norm_groups", "input_norm", "inputs", "bn_momentum", "bn_epsilon", "bn_logits",
                "bn_eval", "bn_eval_batch", "leaky_slope", "dropout", "dropout_placement",
                "dropout_kind", "standardize", "loss", "optimizer",
                "learning_rate", "schedule", "clip", "clip_norm", "l1", "l2", "max_norm",
                "decay_params", "batch_size", "epochs", "max_steps", "eval_every", "eval_split",
                "target", "stop_at_target", "early_stopping", "eval_train", "mc_samples",
                "train_size", "diagnostics")

METRICS = ("steps_to_target", "time_to_target_s", "final_eval_accuracy", "best_eval_accuracy",
           "final_eval_loss", "final_train_loss", "final_test_accuracy", "final_test_loss",
           # eval_train
           "final_train_accuracy", "final_train_loss_clean", "generalization_gap",
           # early_stopping
           "restored_step",
           # mc_samples
           "det_test_nll", "det_test_ece", "mc_test_accuracy", "mc_test_nll", "mc_test_ece",
           "mc_std_correct", "mc_std_wrong",
           "divergence_rate")  # the fraction of seeds whose loss became NaN/inf
DEFAULT_SHOW = ("steps_to_target", "final_eval_accuracy", "final_test_accuracy")
EXPECTATIONS = {"fewer": ("steps", "lower"), "more": ("steps", "higher"),
                "higher": ("value", "higher"), "lower": ("value", "lower"),
                "same": ("value", "same"), "not-lower": ("value", "not-lower")}
MARGIN_EXPECTATIONS = ("same", "not-lower")  # need a claim's margin
# claims on one arm's values against fixed bounds (no reference), and rankings of levels
BOUND_EXPECTATIONS = ("within", "outside")
RANKING = "ranking"
# per-layer diagnostics as claim metrics: "layers.<column>" (engine.DIAG_COLUMNS), reduced
# over the layers of a run by a statistic, at the first or the last diagnosed step
LAYER_PREFIX = "layers."
LAYER_COLUMNS = ("pre_mean", "pre_std", "act_mean", "act_std", "saturated", "grad_norm")
LAYER_STATISTICS = ("first", "last", "min", "max", "mean", "last/first", "first/last",
                    "max/min", "range")
LAYER_AT = ("start", "end")
# metrics where less is better (the best of a claim's `against` levels)
LOWER_IS_BETTER = ("steps_to_target", "time_to_target_s", "generalization_gap",
                   "restored_step", "mc_std_correct", "divergence_rate")


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith(("_loss", "_nll", "_ece", "_clean"))

TOP_KEYS = {"name", "title", "question", "dataset", "seeds", "expected", "cost", "reference",
            "show", "base", "factors", "quick", "claims", "protocol", "search",
            "relative_target", "figures", "tune"}
# [tune]: the factor that tells default and tuned arms apart, and the metrics that choose
TUNE_FACTOR = "lr_source"
TUNE_LEVELS = ("default", "tuned")
TUNE_BY = ("final_eval_accuracy", "best_eval_accuracy", "final_eval_loss")
QUICK_KEYS = {"seeds", "subset", "set", "search"}
CLAIM_KEYS = {"id", "text", "compare", "where", "metric", "expect", "test", "against", "versus",
              "margin", "rank", "statistic", "at", "bounds"}
SEARCH_TESTS = {"best": ("design", "against", "stage", "against_stage"),
                "importance": ("parameter",)}
# a claim checked by evaluators of `dnnbench claims` (dnnbench.claims.engine) on a result set
EVALUATOR_CLAIM_KEYS = {"id", "text", "results", "command", "check"}


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    text: str
    compare: dict[str, Any]  # factor -> level (or tuple of levels: the best of them) of the
    # arms compared with the reference
    where: dict[str, tuple]  # factor -> levels the claim is restricted to
    metric: str
    expect: str
    # an evaluator claim: its [[claims.check]] tables, the result set (experiment name) it is
    # checked on, and the command that makes those results (compare ... expect are unused)
    checks: tuple[dict, ...] = ()
    results: str = ""
    command: str = ""
    test: str = "arms"  # or a claim about a search (SEARCH_TESTS; see search.check_claim)
    # factor -> level (or tuple of levels: the best of them) of the arm compared with, instead
    # of the file's reference
    against: dict[str, Any] = dataclasses.field(default_factory=dict)
    versus: str = ""  # compare each arm's metric with this metric of the same arm
    margin: float = 0.0  # for expect same / not-lower
    rank: tuple[str, tuple] | None = None  # (factor, levels from best to worst)
    statistic: str = "mean"  # layers.* metrics: reduction over the layers
    at: str = "end"  # layers.* metrics: "start" (step 0) or "end" (last diagnosed step)
    bounds: tuple[float, float] | None = None  # within / outside

    @property
    def layer_metric(self) -> str | None:
        """The column of a layers.* metric (None for the runs' metrics)."""
        return self.metric[len(LAYER_PREFIX):] if self.metric.startswith(LAYER_PREFIX) \
            else None

    @property
    def column(self) -> str:
        """The runs column the claim reads (a layers.* metric's per-run value)."""
        if self.layer_metric is None:
            return self.metric
        return f"{self.metric}[{self.statistic}]@{self.at}"

    @property
    def diagnostic(self) -> bool:
        """A ranking, a bounds claim or a claim on the per-layer diagnostics."""
        return self.expect in (*BOUND_EXPECTATIONS, RANKING) or self.layer_metric is not None


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
    cost: str = ""
    base: dict[str, Any] = dataclasses.field(default_factory=dict)
    factors: dict[str, tuple] = dataclasses.field(default_factory=dict)  # name -> levels
    # factor -> {level name: settings} for factors with named levels
    named_levels: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)
    reference: dict[str, Any] = dataclasses.field(default_factory=dict)
    show: tuple[str, ...] = DEFAULT_SHOW
    quick: dict[str, Any] = dataclasses.field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    protocol: str | None = None
    search: Any = None  # a search.Search: its points are the levels of the factor "point"
    relative_target: float | None = None  # fraction of the best median final eval accuracy
    figures: tuple[str, ...] = ()  # figure kinds (dnnbench.report.figure_kinds); () = default
    tune: Tune | None = None  # the [tune] table

    @property
    def n_arms(self) -> int:
        return math.prod(len(v) for v in self.factors.values())

    @property
    def command(self) -> str:
        return f"dnnbench run {self.name}"


# ------------------------------------------------------------------------------- reading

def catalogue() -> dict[str, Path]:
    """The packaged experiment files: name -> path, sorted by name."""
    folder = resources.files(CATALOGUE_PACKAGE)
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


def _fail(where: str, message: str):
    raise ExperimentError(f"{where}: {message}")


def _type(value, kind, where: str, key: str):
    if kind is dict and not isinstance(value, dict):
        _fail(where, f"{key} must be a table, got {value!r}")
    if kind is str and not isinstance(value, str):
        _fail(where, f"{key} must be a string, got {value!r}")
    return value


def parse(doc: Mapping, source: str) -> Experiment:
    """An :class:`Experiment` from a TOML document; ExperimentError for anything unknown or
    out of range, naming the key and the file."""
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        _fail(source, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(TOP_KEYS))}")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
        _fail(source, f"name must be lower-case words joined by '-', got {name!r}")
    for key in ("title", "question", "expected", "cost"):
        _type(doc.get(key, ""), str, source, key)
    from dnnbench.experiments import protocols

    protocols.get(_type(doc.get("protocol", protocols.DEFAULT), str, source, "protocol"),
                  source)
    dataset = _type(doc.get("dataset", "mnist"), str, source, "dataset")
    if dataset not in choices.DATASETS:
        _fail(source, f"dataset: unknown value {dataset!r}; allowed: "
                      f"{', '.join(choices.DATASETS)}")
    seeds = _count(doc.get("seeds", 5), source, "seeds")
    base = {k: check_setting(k, v, f"{source} [base]")
            for k, v in _type(doc.get("base", {}), dict, source, "[base]").items()}
    factors, named = {}, {}
    for key, levels in _type(doc.get("factors", {}), dict, source, "[factors]").items():
        factors[key], named_levels = _levels(key, levels, f"{source} [factors]")
        if named_levels is not None:
            named[key] = named_levels
    tune = _tune(doc["tune"], source, doc) if "tune" in doc else None
    if tune is not None and TUNE_FACTOR not in factors:
        factors[TUNE_FACTOR] = TUNE_LEVELS
    exp = Experiment(
        name=name, source=source, title=doc.get("title", ""),
        question=doc.get("question", ""), dataset=dataset, seeds=seeds,
        expected=doc.get("expected", ""), cost=doc.get("cost", ""), base=base,
        factors=factors, named_levels=named, protocol=doc.get("protocol"),
        relative_target=_fraction(doc.get("relative_target"), source), tune=tune)
    if "search" in doc:
        exp = with_search(exp, doc["search"], source)
    reference = _type(doc.get("reference", {}), dict, source, "reference")
    for key, level in reference.items():
        _level_of(exp, key, level, f"{source} reference")
    show = doc.get("show", list(DEFAULT_SHOW))
    if not isinstance(show, list) or not show:
        _fail(source, "show must be a list of metric names")
    for m in show:
        if m not in METRICS:
            _fail(source, f"show: unknown metric {m!r}; allowed: {', '.join(METRICS)}")
    exp = dataclasses.replace(exp, reference=dict(reference), show=tuple(show),
                              figures=_figures(doc.get("figures"), source))
    if exp.n_arms > MAX_ARMS:
        _fail(source, f"the factors make {exp.n_arms:,} arms, above the limit of {MAX_ARMS:,}")
    quick = _quick(_type(doc.get("quick", {}), dict, source, "[quick]"), exp, source)
    claims = doc.get("claims", [])
    if not isinstance(claims, list):
        _fail(source, "claims must be an array of tables ([[claims]])")
    exp = dataclasses.replace(exp, quick=quick, claims=tuple(
        _claim(c, i, exp, source) for i, c in enumerate(claims)))
    expand(exp)  # every arm must make a valid spec (names, coefficients, depths)
    return exp


def _figures(value, where: str) -> tuple[str, ...]:
    """The figure kinds a file declares (dnnbench.report.figure_kinds); () = the default."""
    if value is None:
        return ()
    from dnnbench.report.figure_kinds import names

    allowed = names()
    if not isinstance(value, list) or not value:
        _fail(where, f"figures must be a list of figure names: {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            _fail(where, f"figures: unknown figure {v!r}; allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def _tune(table, source: str, doc: Mapping) -> Tune:
    """The ``[tune]`` table, checked: lane settings with lists of values, and ``by``."""
    from dnnbench.experiments import protocols
    from dnnbench.spec import LANE_SETTINGS

    where = f"{source} [tune]"
    _type(table, dict, source, "[tune]")
    if doc.get("protocol", protocols.DEFAULT) != protocols.DEFAULT or "search" in doc:
        _fail(where, "tuning needs the train protocol and no [search]")
    by = table.get("by", TUNE_BY[0])
    if by not in TUNE_BY:
        _fail(where, f"by: unknown {by!r}; allowed: {', '.join(TUNE_BY)} (eval-split metrics)")
    grid = {}
    for key, values in table.items():
        if key == "by":
            continue
        if key in SETTINGS and key not in LANE_SETTINGS or protocols.setting(key) is not None:
            _fail(where, f"{key} is not a lane setting; tunable: {', '.join(LANE_SETTINGS)} and "
                         "the optimizer's coefficients (see `dnnbench list`)")
        if not isinstance(values, list) or not values:
            _fail(where, f"{key} must be a non-empty list of values")
        checked = tuple(check_setting(key, v, f"{where} {key}") for v in values)
        if len(set(checked)) != len(checked):
            _fail(where, f"{key} repeats a value: {values}")
        grid[key] = checked
    if not grid:
        _fail(where, "give the grid of at least one lane setting, e.g. learning_rate = "
                     "[0.0001, 0.001, 0.01]")
    if math.prod(len(v) for v in grid.values()) > MAX_ARMS:
        _fail(where, f"the grid has more than {MAX_ARMS:,} points")
    return Tune(grid, by)


def _fraction(value, where: str) -> float | None:
    """``relative_target``: a fraction in (0, 1], or None (absent)."""
    if value is None:
        return None
    if not _is_number(value) or not 0 < value <= 1:
        _fail(where, f"relative_target must be a number in (0, 1], got {value!r}")
    return float(value)


def _count(value, where: str, key: str, maximum: int = 1000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        _fail(where, f"{key} must be an integer from 1 to {maximum}, got {value!r}")
    return value


def check_setting(key: str, value, where: str):
    """``value`` checked against the setting ``key`` (or an optimizer coefficient: any finite
    non-negative number, checked against the optimizer when the arm is built)."""
    from dnnbench.experiments import protocols

    setting = SETTINGS.get(key) or protocols.setting(key)
    if setting is None:
        if _is_number(value) and re.fullmatch(r"[a-z][a-z0-9_]*", key):
            if not math.isfinite(value) or value < 0:
                _fail(where, f"{key} must be a finite number >= 0, got {value!r}")
            return float(value)  # an optimizer coefficient (checked in make_spec)
        _fail(where, f"unknown setting {key!r}; allowed: {', '.join(SETTINGS)} and the "
                     "optimizer's coefficients and schedule's parameters (see `dnnbench list`)")
    kind = setting.kind
    if key == "eval_every" and value == "epoch":
        return value
    if kind == "pair":
        if not isinstance(value, str) or not re.fullmatch(r"\d+v\d+|default", value):
            _fail(where, f"{key} must be two class labels POSvNEG like \"3v5\", or "
                         f"\"default\", got {value!r}")
        return value
    if kind == "widths":
        if (not isinstance(value, list) or not value
                or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 65536
                           for w in value)):
            _fail(where, f"{key} must be a non-empty list of integers from 1 to 65536, "
                         f"got {value!r}")
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(where, f"{key} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            _fail(where, f"{key} must be a name, got {value!r}")
        if value not in setting.names and not (setting.plugins and ":" in value):
            plug = " or package.module:factory" if setting.plugins else ""
            _fail(where, f"{key}: unknown value {value!r}; allowed: "
                         f"{', '.join(setting.names)}{plug}")
        return value
    if not _is_number(value) or (kind == "int" and not isinstance(value, int)):
        _fail(where, f"{key} must be {'an integer' if kind == 'int' else 'a number'}, "
                     f"got {value!r}")
    if not math.isfinite(value):
        _fail(where, f"{key} must be finite, got {value!r}")
    low, high = setting.minimum, setting.maximum
    too_high = high is not None and (value >= high if setting.open_max else value > high)
    if (low is not None and value < low) or too_high:
        right = ")" if setting.open_max else "]"
        _fail(where, f"{key} must be in [{low:g}, {'inf' if high is None else f'{high:g}'}"
                     f"{right}, got {value!r}")
    return int(value) if kind == "int" else float(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _levels(key: str, levels, where: str) -> tuple[tuple, dict | None]:
    """(levels, named levels or None) of a factor."""
    if isinstance(levels, dict):  # named levels: level -> settings
        if not levels:
            _fail(where, f"factor {key!r} has no levels")
        named = {}
        for level, settings in levels.items():
            _type(settings, dict, where, f"{key}.{level}")
            named[level] = {k: check_setting(k, v, f"{where} {key}.{level}")
                            for k, v in settings.items()}
        return tuple(named), named
    if key not in SETTINGS and not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        _fail(where, f"unknown setting {key!r}")
    if not isinstance(levels, list) or not levels:
        _fail(where, f"factor {key!r} must be a non-empty list of levels (or a table of "
                     "named levels)")
    checked = tuple(check_setting(key, v, f"{where} {key}") for v in levels)
    if len(set(checked)) != len(checked):
        _fail(where, f"factor {key!r} repeats a level: {list(levels)}")
    return checked, None


def _level_of(exp: Experiment, key: str, level, where: str):
    if key not in exp.factors:
        _fail(where, f"{key!r} is not a factor; factors: {', '.join(exp.factors) or 'none'}")
    if key in exp.named_levels:
        if level not in exp.named_levels[key]:
            _fail(where, f"{key}: unknown level {level!r}; levels: "
                         f"{', '.join(exp.named_levels[key])}")
        return level
    value = check_setting(key, level, where)
    if value not in exp.factors[key]:
        _fail(where, f"{key}: {level!r} is not one of its levels {list(exp.factors[key])}")
    return value


def _quick(quick: dict, exp: Experiment, where: str) -> dict:
    unknown = sorted(set(quick) - QUICK_KEYS)
    if unknown:
        _fail(where, f"[quick]: unknown key {unknown[0]!r}; allowed: "
                     f"{', '.join(sorted(QUICK_KEYS))}")
    if "search" in quick:
        if exp.search is None:
            _fail(where, "[quick] search: the file has no [search]")
        _type(quick["search"], dict, where, "[quick] search")
        with_search(exp, {**exp.search.source, **quick["search"]}, f"{where} [quick]")
    out = {"seeds": _count(quick.get("seeds", min(exp.seeds, 2)), where, "[quick] seeds"),
           "subset": quick.get("subset", True), "set": {}}
    if not isinstance(out["subset"], bool):
        _fail(where, "[quick] subset must be true or false")
    for key, value in _type(quick.get("set", {}), dict, where, "[quick] set").items():
        out["set"][key] = value
    if "search" in quick:
        out["search"] = dict(quick["search"])
    override(exp, out["set"], f"{where} [quick] set")  # checked now, applied with --quick
    return out


def _claim(doc, i: int, exp: Experiment, where: str) -> Claim:
    at = f"{where} claims[{i}]"
    _type(doc, dict, at, "claim")
    if "check" in doc:
        return _evaluator_claim(doc, i, exp, at)
    unknown = sorted(set(doc) - CLAIM_KEYS)
    if unknown:
        _fail(at, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(CLAIM_KEYS))}")
    test = doc.get("test", "arms")
    for key in ("text", "expect") if test != "arms" else ("text", "metric", "expect"):
        if not isinstance(doc.get(key), str):
            _fail(at, f"{key} is required (a string)")
    if test != "arms":
        return _search_claim(doc, i, test, exp, at)
    if doc["expect"] in (*BOUND_EXPECTATIONS, RANKING) or doc["metric"].startswith(LAYER_PREFIX):
        return _diagnostic_claim(doc, i, exp, at)
    if doc["metric"] not in METRICS:
        _fail(at, f"metric: unknown {doc['metric']!r}; allowed: {', '.join(METRICS)}")
    if doc["expect"] not in EXPECTATIONS:
        _fail(at, f"expect: unknown {doc['expect']!r}; allowed: {', '.join(EXPECTATIONS)}")
    steps = doc["metric"] == "steps_to_target"
    if steps != (EXPECTATIONS[doc["expect"]][0] == "steps"):
        _fail(at, "expect fewer/more goes with steps_to_target, higher/lower with the others")
    versus = _type(doc.get("versus", ""), str, at, "versus")
    if versus and versus not in METRICS:
        _fail(at, f"versus: unknown metric {versus!r}; allowed: {', '.join(METRICS)}")
    if versus and (steps or "against" in doc):
        _fail(at, "versus compares two value metrics of the same arms: not with "
                  "steps_to_target or against")
    against = {}
    for k, v in _type(doc.get("against", {}), dict, at, "against").items():
        against[k] = (tuple(_level_of(exp, k, x, at) for x in v) if isinstance(v, list)
                      else _level_of(exp, k, v, at))
    if not exp.reference and not against and not versus:
        _fail(at, "a claim needs the file's reference arm (reference = {factor = level}), "
                  "against or versus")
    margin = doc.get("margin", 0.0)
    if not _is_number(margin) or not math.isfinite(margin) or margin < 0:
        _fail(at, f"margin must be a number >= 0, got {margin!r}")
    if (doc["expect"] in MARGIN_EXPECTATIONS) != ("margin" in doc):
        _fail(at, f"margin goes with expect {' or '.join(MARGIN_EXPECTATIONS)} (and they "
                  "need it)")
    compare = _type(doc.get("compare", {}), dict, at, "compare")
    if not compare and not doc.get("where"):
        _fail(at, "compare or where is required: the levels of the arms compared")
    compare = {k: tuple(_level_of(exp, k, x, at) for x in v) if isinstance(v, list)
               else _level_of(exp, k, v, at) for k, v in compare.items()}
    where_levels = {}
    for k, v in _type(doc.get("where", {}), dict, at, "where").items():
        vs = v if isinstance(v, list) else [v]
        where_levels[k] = tuple(_level_of(exp, k, x, at) for x in vs)
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], compare, where_levels,
                 doc["metric"], doc["expect"], against=against, versus=versus,
                 margin=float(margin))


def _diagnostic_claim(doc, i: int, exp: Experiment, at: str) -> Claim:
    """A ranking (expect ranking, rank = {factor = [levels, best first]}), a bounds claim
    (expect within/outside, bounds = [low, high]) or a claim on the per-layer diagnostics
    (metric layers.<column>, statistic over the layers, at start or end)."""
    metric, expect = doc["metric"], doc["expect"]
    layer = metric[len(LAYER_PREFIX):] if metric.startswith(LAYER_PREFIX) else None
    if layer is not None and layer not in LAYER_COLUMNS:
        _fail(at, f"metric: unknown layers column {layer!r}; allowed: "
                  f"{', '.join(LAYER_PREFIX + c for c in LAYER_COLUMNS)}")
    if layer is None and metric not in METRICS:
        _fail(at, f"metric: unknown {metric!r}; allowed: {', '.join(METRICS)}, "
                  f"{LAYER_PREFIX}<column>")
    allowed = (*EXPECTATIONS, *BOUND_EXPECTATIONS, RANKING)
    if expect not in allowed:
        _fail(at, f"expect: unknown {expect!r}; allowed: {', '.join(allowed)}")
    steps = metric == "steps_to_target"
    if expect in EXPECTATIONS and steps != (EXPECTATIONS[expect][0] == "steps"):
        _fail(at, "expect fewer/more goes with steps_to_target, higher/lower with the others")
    if expect in BOUND_EXPECTATIONS and steps:
        _fail(at, f"expect {expect} needs a value metric, not steps_to_target")
    extra = {}
    if layer is not None:
        extra["statistic"] = _choice(doc.get("statistic", "mean"), LAYER_STATISTICS, at,
                                     "statistic")
        extra["at"] = _choice(doc.get("at", "end"), LAYER_AT, at, "at")
        if not exp.base.get("diagnostics") and not any(
                s.get("diagnostics") for lv in exp.named_levels.values() for s in lv.values()):
            _fail(at, f"metric {metric} needs diagnostics = true in [base]")
    elif "statistic" in doc or "at" in doc:
        _fail(at, f"statistic and at go with {LAYER_PREFIX}* metrics")
    if extra.get("statistic") == "range" and expect not in BOUND_EXPECTATIONS:
        _fail(at, "statistic range goes with expect within/outside")
    if expect in BOUND_EXPECTATIONS:
        b = doc.get("bounds")
        if not (isinstance(b, list) and len(b) == 2 and all(_is_number(x) for x in b)
                and b[0] <= b[1]):
            _fail(at, f"expect {expect} needs bounds = [low, high] (low <= high)")
        extra["bounds"] = (float(b[0]), float(b[1]))
    elif "bounds" in doc:
        _fail(at, "bounds go with expect within/outside")
    compare = _type(doc.get("compare", {}), dict, at, "compare")
    if expect == RANKING:
        rank = _type(doc.get("rank"), dict, at, "rank") if "rank" in doc else None
        if not rank or len(rank) != 1:
            _fail(at, "expect ranking needs rank = { factor = [levels, best first] }")
        (factor, levels), = rank.items()
        if not isinstance(levels, list) or len(levels) < 2:
            _fail(at, "rank: a list of two levels or more, best first")
        extra["rank"] = (factor, tuple(_level_of(exp, factor, v, at) for v in levels))
    else:
        if "rank" in doc:
            _fail(at, "rank goes with expect ranking")
        if expect in EXPECTATIONS and not (exp.reference or doc.get("against")):
            _fail(at, "a claim needs the file's reference arm (reference = {factor = level}) "
                      "or its own (against = {factor = level})")
        if not compare:
            _fail(at, "compare is required: the levels of the arms the claim is about")
    compare = {k: _level_of(exp, k, v, at) for k, v in compare.items()}
    against = {k: _level_of(exp, k, v, at)
               for k, v in _type(doc.get("against", {}), dict, at, "against").items()}
    where_levels = {}
    for k, v in _type(doc.get("where", {}), dict, at, "where").items():
        vs = v if isinstance(v, list) else [v]
        where_levels[k] = tuple(_level_of(exp, k, x, at) for x in vs)
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], compare, where_levels,
                 metric, expect, against=against, **extra)



def _choice(value, allowed: tuple, at: str, key: str):
    if value not in allowed:
        _fail(at, f"{key}: unknown {value!r}; allowed: {', '.join(allowed)}")
    return value


def _evaluator_claim(doc: dict, i: int, exp: Experiment, at: str) -> Claim:
    """A claim with [[claims.check]] tables: evaluators of `dnnbench claims` (their names and
    parameters: `dnnbench claims --list-evaluators`), checked on the ``results`` set."""
    from dnnbench.claims.engine import ClaimsError, _parse_check

    unknown = sorted(set(doc) - EVALUATOR_CLAIM_KEYS)
    if unknown:
        _fail(at, f"unknown key {unknown[0]!r} in a claim with checks; allowed: "
                  f"{', '.join(sorted(EVALUATOR_CLAIM_KEYS))}")
    for key in ("text", "results", "command"):
        if not isinstance(doc.get(key, "x"), str) or not doc.get(key, "x").strip():
            _fail(at, f"{key} must be a non-empty string")
    if not isinstance(doc["check"], list) or not doc["check"]:
        _fail(at, "check must be an array of tables ([[claims.check]])")
    try:
        for j, check in enumerate(doc["check"]):
            _parse_check(check, f"{at} check[{j}]")
    except ClaimsError as e:
        _fail(at, str(e).removeprefix(f"{at} "))
    return Claim(str(doc.get("id", f"{exp.name}-{i + 1}")), doc["text"].strip(), {}, {}, "",
                 "", tuple(dict(c) for c in doc["check"]), doc.get("results", exp.name),
                 doc.get("command", exp.command))


# ------------------------------------------------------------------------------- overrides

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
                _fail(where, f"{key}: unknown level {unknown[0]!r}; levels: "
                             f"{', '.join(named[key])}")
            if len(set(levels)) != len(levels):
                _fail(where, f"{key} repeats a level: {levels}")
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
    """The experiment's smoke variant (its ``[quick]`` table)."""
    if "search" in exp.quick:
        exp = with_search(exp, {**exp.search.source, **exp.quick["search"]},
                          f"{exp.source} [quick]")
    return override(exp, exp.quick.get("set", {}), f"{exp.source} [quick] set")


# ------------------------------------------------------------------------------- expansion

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
    from dnnbench.experiments import protocols

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
            _fail(f"{exp.source} arm {label or 'base'}", "relative_target needs "
                  "stop_at_target = false (the target is found after training, on whole "
                  "curves)")
        if settings.get(TUNE_FACTOR) == "tuned":
            if settings.get("stop_at_target", True):
                _fail(f"{exp.source} arm {label}", "[tune] needs stop_at_target = false (the "
                      "grid's points are compared on whole runs)")
            if settings.get("diagnostics"):
                _fail(f"{exp.source} arm {label}", "[tune] does not go with diagnostics")
            point = {**settings, **exp.tune.points()[0]}  # the tuned keys fit the arm
            make_spec({k: v for k, v in point.items() if k not in protocol.settings},
                      n_train=None, where=f"{exp.source} [tune] for arm {label}")
    return arms


def _check_tune(exp: Experiment) -> None:
    """The factor lr_source only with [tune], never a setting; a tuned value not a factor."""
    named = [k for levels in exp.named_levels.values() for s in levels.values() for k in s]
    if TUNE_FACTOR in exp.base or TUNE_FACTOR in named or TUNE_FACTOR in exp.named_levels:
        _fail(exp.source, f"{TUNE_FACTOR} is a factor (a list of levels: "
                          f"{', '.join(TUNE_LEVELS)}), not a setting")
    if exp.tune is None:
        if TUNE_FACTOR in exp.factors:
            _fail(exp.source, f"the factor {TUNE_FACTOR} needs a [tune] table")
        return
    tuned = "tuned" in exp.factors.get(TUNE_FACTOR, ())
    for key in exp.tune.grid:
        if tuned and key in exp.factors and key not in exp.named_levels:
            _fail(exp.source, f"{key} is tuned ([tune]) and a factor: tune it or vary it, "
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


def make_spec(settings: Mapping[str, Any], n_train: int | None, where: str = ""):
    """The RunSpec of an arm's settings (``n_train``: training examples, for ``epochs`` and
    ``eval_every = "epoch"``; None only checks the settings)."""
    from dnnbench.registry import DEFAULT_INIT, get_optimizer, get_schedule
    from dnnbench.spec import RunSpec

    s = dict(settings)
    s.pop(TUNE_FACTOR, None)  # not a run setting: which arms a [tune] sweep chooses
    fields = {f.name for f in dataclasses.fields(RunSpec)}
    depth, width = s.pop("depth", None), s.pop("width", None)
    epochs, s_train = s.pop("epochs", None), s.pop("train_size", 0)
    widths = s.pop("widths", None)
    if width is not None:
        widths = (width,) * (depth or (len(widths) if widths else 1))
    elif widths is None:
        widths = (100,) * (depth or 3)
    elif depth is not None:
        if depth > len(widths):
            _fail(where, f"depth {depth} exceeds the {len(widths)} widths given; set width "
                         "for deeper nets")
        widths = widths[:depth]
    activation = s.get("activation", "relu")
    if s.get("init", "default") == "default":
        s["init"] = DEFAULT_INIT.get(activation, "he-normal")
    optimizer = s.get("optimizer", "adam")
    coefficients = {k: s.pop(k) for k in list(s) if k not in fields}
    schedule = s.get("schedule", "constant")
    try:
        opt = get_optimizer(optimizer)
        sched = get_schedule(schedule)
        _check_plugins(s)
    except ValueError as e:
        _fail(where, str(e))
    schedule_params = {k: coefficients.pop(k) for k in list(coefficients) if k in sched.params}
    unknown = sorted(set(coefficients) - set(opt.defaults))
    if unknown:
        _fail(where, f"unknown setting {unknown[0]!r} (optimizer {optimizer} has the "
                     f"coefficients {', '.join(opt.defaults) or 'none'}; schedule {schedule} "
                     f"has the parameters {', '.join(sched.params) or 'none'}; settings: "
                     f"{', '.join(SETTINGS)})")
    for k in sched.positive:
        if k in schedule_params and not schedule_params[k] > 0:
            _fail(where, f"{k} (a parameter of schedule {schedule}) must be > 0, got "
                         f"{schedule_params[k]!r}")
    n = n_train
    if n is not None and s_train:
        n = min(n, s_train)
    batch = s.get("batch_size", 500)
    if s.get("eval_every") == "epoch":
        s["eval_every"] = max(1, n // batch) if n else 1
    if epochs is not None:
        per_epoch = max(1, n // batch) if n else 1
        every = s.get("eval_every", 10)
        s["max_steps"] = max(every, epochs * per_epoch // every * every)
    spec = RunSpec(widths=widths, optimizer_params=tuple(coefficients.items()),
                   schedule_params=tuple(schedule_params.items()), **s)
    if spec.eval_every > spec.max_steps:
        _fail(where, f"eval_every ({spec.eval_every}) exceeds max_steps ({spec.max_steps})")
    if spec.early_stopping and spec.eval_split != "val":
        _fail(where, "early_stopping watches the validation loss: set "
                     "eval_split = \"val\"")
    if spec.norm != "batch" and spec.bn_logits:
        spec = spec.replace(bn_logits=False)
    if spec.clip == "none":  # no threshold without clipping
        spec = spec.replace(clip_norm=0.0)
    spec = _resolve_norm(spec, where)
    return spec


def _resolve_norm(spec, where: str):
    """The spec with the BN evaluation settings that apply to its model (a model without
    batch norm evaluates as it is: bn_eval "running"; bn_eval_batch 0 is the training batch
    size), checked against its widths (group norm)."""
    from dnnbench.models.norms import check_spec, has_batch_norm

    try:
        check_spec(spec)
    except ValueError as e:
        _fail(where, str(e))
    if not has_batch_norm(spec) or spec.bn_eval != "batch":
        return spec.replace(bn_eval=spec.bn_eval if has_batch_norm(spec) else "running",
                            bn_eval_batch=0)
    return spec.replace(bn_eval_batch=spec.bn_eval_batch or spec.batch_size)


def _check_plugins(settings: Mapping[str, Any]) -> None:
    """Plug-ins named in ``settings`` can be imported and are of the right kind (ValueError)."""
    from dnnbench.registry import get_activation, get_initializer, get_schedule

    getters = {"activation": get_activation, "init": get_initializer,
               "head_init": get_initializer, "schedule": get_schedule}
    for key, get in getters.items():
        name = settings.get(key)
        if isinstance(name, str) and ":" in name:
            get(name)


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


def _claim_doc(c: Claim, present) -> dict[str, Any]:
    """A claim as the TOML table that :func:`_claim` reads (levels absent from the variant
    left out of its where and rank)."""
    doc = {"id": c.id, "text": c.text, "compare": dict(c.compare),
           "where": {k: [x for x in v if present(k, x)] for k, v in c.where.items()},
           "metric": c.metric, "expect": c.expect}
    if c.against:
        doc["against"] = dict(c.against)
    if c.rank is not None:
        doc["rank"] = {c.rank[0]: [x for x in c.rank[1] if present(c.rank[0], x)]}
    if c.layer_metric is not None:
        doc |= {"statistic": c.statistic, "at": c.at}
    if c.bounds is not None:
        doc["bounds"] = list(c.bounds)
    return doc


def to_doc(exp: Experiment) -> dict[str, Any]:
    """``exp`` as the TOML document that :func:`parse` reads back into it (recorded in the
    metadata of its results, so a report rebuilds the experiment without its file)."""
    factors = {k: ({level: dict(settings) for level, settings in exp.named_levels[k].items()
                    if level in v} if k in exp.named_levels else
                   [list(x) if isinstance(x, tuple) else x for x in v])
               for k, v in exp.factors.items() if not (exp.search and k == POINT)}
    def present(k, v) -> bool:
        return k in exp.factors and v in exp.factors[k]

    def levels(given: dict) -> dict:
        return {k: [x for x in v if present(k, x)] if isinstance(v, tuple) else v
                for k, v in given.items()}

    def any_present(given: dict) -> bool:
        return all(any(present(k, x) for x in v) if isinstance(v, tuple) else present(k, v)
                   for k, v in given.items())

    # a claim about levels this variant lacks (--quick, --set) cannot be checked: left out
    claims = [{"id": c.id, "text": c.text, "compare": levels(c.compare),
               "where": {k: [x for x in v if present(k, x)] for k, v in c.where.items()},
               "metric": c.metric, "expect": c.expect,
               **({"against": levels(c.against)} if c.against else {}),
               **({"versus": c.versus} if c.versus else {}),
               **({"margin": c.margin} if c.expect in MARGIN_EXPECTATIONS else {})}
              for c in exp.claims if not c.checks and c.test == "arms" and not c.diagnostic
              and any_present(c.compare) and any_present(c.against)
              and (exp.reference or c.against or c.versus)
              and all(any(present(k, x) for x in v) for k, v in c.where.items())]
    claims += [_claim_doc(c, present) for c in exp.claims if c.diagnostic
               and all(present(k, v) for k, v in {**c.compare, **c.against}.items())
               and (c.rank is None or sum(present(c.rank[0], x) for x in c.rank[1]) >= 2)]
    claims += [{"id": c.id, "text": c.text, "results": c.results, "command": c.command,
                "check": [dict(t) for t in c.checks]} for c in exp.claims if c.checks]
    claims += [{"id": c.id, "text": c.text, "test": c.test, "compare": dict(c.compare),
                "expect": c.expect} for c in exp.claims if c.test != "arms"]
    order = {c.id: i for i, c in enumerate(exp.claims)}
    claims.sort(key=lambda c: order[c["id"]])  # the file's order
    base = {k: list(v) if isinstance(v, tuple) else v for k, v in exp.base.items()}
    quick = {"seeds": exp.quick.get("seeds", 2), "subset": exp.quick.get("subset", True),
             "set": dict(exp.quick.get("set", {}))} if exp.quick else {}
    doc = {"name": exp.name, "title": exp.title, "question": exp.question,
           "dataset": exp.dataset, "seeds": exp.seeds, "expected": exp.expected,
           "cost": exp.cost, "reference": dict(exp.reference), "show": list(exp.show),
           "base": base, "factors": factors, "quick": quick, "claims": claims}
    if exp.protocol is not None:
        doc["protocol"] = exp.protocol
    if exp.figures:
        doc["figures"] = list(exp.figures)
    if exp.search is not None:
        from dnnbench.experiments import search

        doc["search"] = search.to_doc(exp.search)
    if exp.relative_target is not None:
        doc["relative_target"] = exp.relative_target
    if exp.tune is not None:
        doc["tune"] = {**{k: list(v) for k, v in exp.tune.grid.items()}, "by": exp.tune.by}
    return doc


# ------------------------------------------------------------------------------- searches

POINT = "point"  # the factor whose named levels are a search's points


def with_search(exp: Experiment, doc, where: str, drawn=None) -> Experiment:
    """``exp`` with the search of the ``[search]`` table ``doc`` (or the already ``drawn``
    search.Search): its points become the last factor, ``point`` (named levels)."""
    from dnnbench.experiments import search

    if drawn is None:
        if POINT in exp.factors and exp.search is None:
            _fail(where, f"a file with [search] cannot have a factor named {POINT!r}")
        try:
            drawn = search.parse(doc, where, check_setting)
        except search.SearchError as e:
            raise ExperimentError(str(e)) from None
    factors = {k: v for k, v in exp.factors.items() if k != POINT}
    named = {k: v for k, v in exp.named_levels.items() if k != POINT}
    levels = search.point_levels(drawn)
    factors[POINT], named[POINT] = tuple(levels), levels
    return dataclasses.replace(exp, factors=factors, named_levels=named, search=drawn)


def _search_claim(doc, i: int, test: str, exp: Experiment, at: str) -> Claim:
    """A claim about a search: test "best" (compare = {design, against[, stage]}, expect
    higher/lower) or "importance" (compare = {parameter}, expect "first")."""
    if exp.search is None:
        _fail(at, f"test {test!r} needs a [search] section")
    if test not in SEARCH_TESTS:
        _fail(at, f"test: unknown {test!r}; allowed: arms, {', '.join(SEARCH_TESTS)}")
    compare = _type(doc.get("compare", {}), dict, at, "compare")
    allowed = SEARCH_TESTS[test]
    bad = sorted(set(compare) - set(allowed))
    if bad or allowed[0] not in compare:
        _fail(at, f"a {test} claim compares {{{', '.join(allowed)}}}, got {compare!r}")
    designs = [d.name for d in exp.search.designs]
    if test == "best":
        for k in ("design", "against"):
            if compare.get(k) not in designs:
                _fail(at, f"compare.{k}: a design of the search ({', '.join(designs)}), got "
                          f"{compare.get(k)!r}")
        if doc["expect"] not in ("higher", "lower"):
            _fail(at, "a best claim expects higher or lower")
    else:
        if compare["parameter"] not in exp.search.params:
            _fail(at, f"compare.parameter: a searched parameter "
                      f"({', '.join(exp.search.params)}), got {compare['parameter']!r}")
        if doc["expect"] != "first":
            _fail(at, "an importance claim expects \"first\" (the most important)")
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], dict(compare), {},
                 exp.search.report, doc["expect"], test=test)
