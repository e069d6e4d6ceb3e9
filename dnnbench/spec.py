"""Run specifications: frozen, hashable, keyword-only dataclasses that fully describe one arm.

A ``RunSpec`` is closed over by ``jit`` (never traced); its stable hash names the run in
caches and CSVs. Everything that changes the numbers of a run belongs here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from dnnbench import choices

TAPERED_WIDTHS = (500, 400, 300, 200, 100, 50, 25)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSpec:
    # model
    widths: tuple[int, ...]  # () for a model plug-in
    # "mlp" (the settings below build it) or a plug-in package.module:factory (registry
    # get_model): a structure setting that the MLP's settings do not apply to
    model: str = "mlp"
    activation: str = "relu"
    init: str = "he-normal"
    # the hidden initializer's variance scale (variance = init_scale / n, n its fan mode's
    # count); 0: the initializer's own (He 2, LeCun and Glorot 1). A lane value
    init_scale: float = 0.0
    head_init: str = "glorot-uniform"
    norm: str = "none"  # a name of models.norms.NORMALIZATIONS
    norm_position: str = "before"  # "before" | "after" the activation
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_logits: bool = False
    norm_groups: int = 4  # group norm: groups of units per hidden layer
    input_norm: bool = False  # batch norm on the inputs, as the first layer
    standardize: bool = False  # inputs shifted and scaled by the training split's statistics
    inputs: str = "unit"  # scaling of the input features: data.INPUT_SCALINGS
    bn_eval: str = "running"  # BN statistics at evaluation: running | population | batch
    bn_eval_batch: int = 0  # bn_eval "batch": examples per evaluated batch
    dropout: float = 0.0  # rate of the dropout after every hidden layer
    # where dropout applies: "hidden" (after every hidden layer) | "dense" (before every dense
    # layer: the inputs too, at the same rate)
    dropout_placement: str = "hidden"
    dropout_kind: str = "standard"  # a name of registry.DROPOUTS: "standard" | "alpha"
    leaky_slope: float = 0.01  # leaky_relu: the slope for negative inputs
    loss: str = "softmax"  # a name of registry.LOSSES: softmax | sigmoid (one unit) | mse
    # optimization
    optimizer: str = "adam"
    learning_rate: float = 0.01
    # coefficients of the optimizer, (name, value) pairs sorted by name; the others keep the
    # registry's defaults (registry.Optimizer.defaults), weight_decay included
    optimizer_params: tuple[tuple[str, float], ...] = ()
    schedule: str = "constant"
    # parameters of the schedule, (name, value) pairs sorted by name; the others keep the
    # registry's defaults (registry.Schedule.params)
    schedule_params: tuple[tuple[str, float], ...] = ()
    clip: str = "global_norm"  # gradient clipping kind: registry.CLIPPINGS
    clip_norm: float = 0.0  # the clipping threshold (a norm; a value for clip "value"); 0 = off
    l1: float = 0.0  # penalty l1 * sum(|kernel|) over the kernels, added to the training loss
    l2: float = 0.0  # penalty l2 * sum(kernel^2) over the kernels, added to the training loss
    # max-norm: after every step each unit's incoming weight vector (a kernel's column, Keras
    # max_norm axis 0) is rescaled to norm <= max_norm; 0 = off
    max_norm: float = 0.0
    max_norm_params: str = "all"  # the kernels max_norm rescales: "all" | "hidden" (not head)
    decay_params: str = "all"  # what decoupled weight decay shrinks: "all" | "kernels"
    batch_size: int = 500
    # budget and evaluation
    max_steps: int = 3000
    eval_every: int = 10
    # the split evaluated during training (targets, tuning, early stopping, best-of choices);
    # the test split is evaluated once at the end
    eval_split: str = "val"
    target: float = 0.90  # accuracy on eval_split; <= 0 disables early stopping
    stop_at_target: bool = True
    # a seed diverges when its training loss is not finite or (> 0) exceeds this multiple of
    # its initial loss (its first step's loss, before any update); 0: only non-finite losses
    divergence_factor: float = 0.0
    # early stopping on the eval split's loss, its patience: stop a seed after this many
    # evaluations without a new lowest loss, and restore its parameters of the lowest; 0 = off
    early_stopping: int = 0
    eval_train: bool = False  # evaluate the training split (no dropout, no penalty) too
    mc_samples: int = 0  # MC dropout: stochastic passes of the final test evaluation; 0 = off
    # the fraction of the final kernels' weights with |w| below this (kernel_sparsity); 0 = off
    sparsity_threshold: float = 0.0
    # per-layer diagnostics at step 0 and at every evaluation (Trace.layers; a structure
    # setting: programs without them are unchanged)
    diagnostics: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "optimizer_params", tuple(sorted(
            (str(k), float(v)) for k, v in dict(self.optimizer_params).items())))
        object.__setattr__(self, "schedule_params", tuple(sorted(
            (str(k), float(v)) for k, v in dict(self.schedule_params).items())))

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def n_evals(self) -> int:
        return self.max_steps // self.eval_every

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["optimizer_params"] = [list(kv) for kv in self.optimizer_params]
        d["schedule_params"] = [list(kv) for kv in self.schedule_params]
        # settings added after results were committed are left out at their defaults, so the
        # hash of every earlier spec (and its results' spec_hash) stays what it was
        for name in _DEFAULTS:
            if d[name] == _DEFAULTS[name]:
                del d[name]
        return d

    @property
    def hash(self) -> str:
        """Stable 12-hex-digit hash of all fields (independent of Python's hash seed)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)


def widths_str(widths: tuple[int, ...]) -> str:
    return "-".join(str(w) for w in widths)


_DEFAULTS = {"optimizer_params": [], "schedule_params": [], "l1": 0.0, "l2": 0.0}
# the normalization settings (issue 17), likewise left out at their defaults
_DEFAULTS |= {"norm_groups": 4, "input_norm": False, "bn_eval": "running", "bn_eval_batch": 0}
# the regularization settings (issue 19)
_DEFAULTS |= {"dropout_placement": "hidden", "max_norm": 0.0, "max_norm_params": "all",
              "decay_params": "all",
              "early_stopping": 0, "eval_train": False, "mc_samples": 0}
# the unstable-gradients settings (issue 16), likewise
_DEFAULTS |= {"dropout_kind": "standard", "leaky_slope": 0.01, "diagnostics": False,
              "standardize": False}
# the clipping kind (issue 16) and the input scaling (issue 17), likewise
_DEFAULTS |= {"clip": "global_norm", "inputs": "unit"}
# the divergence rule (issue 27): off in a bare spec, as before; experiment files set it
_DEFAULTS |= {"divergence_factor": 0.0}
# the model plug-in (issue 31)
_DEFAULTS |= {"model": "mlp"}
# the l1 sparsity metric (issue 30)
_DEFAULTS |= {"sparsity_threshold": 0.0}
# the hidden initializer's scale as a number (issue 30)
_DEFAULTS |= {"init_scale": 0.0}


# ------------------------------------------------------------------- structure and lane values
# The numbers of a spec that are runtime inputs of its training program (a "lane" of the
# vmapped axis carries one value of each): many arms that differ only in these numbers are
# trained by one compiled program. Everything else (widths, activation, initializer, norm kind
# and placement, optimizer family, schedule, batch size, budget, evaluation) is the program's
# STRUCTURE. Whether a penalty, dropout, decay or clipping is applied at all is structure too:
# the program of a group applies it when any of its arms does (a lane value of 0 then leaves
# the numbers as they would be without it).
LANE_SETTINGS = ("learning_rate", "dropout", "l1", "l2", "clip_norm", "bn_momentum", "max_norm",
                 "leaky_slope", "bn_epsilon", "init_scale")
# lane name of the hidden initializer's scale (variance = scale / n): the setting init_scale,
# else the initializer's own
INIT_SCALE = "init_scale"
OPTIMIZER_PREFIX = "opt."  # lane names of optimizer coefficients: "opt.<coefficient>"
SCHEDULE_PREFIX = "sched."  # lane names of schedule parameters: "sched.<parameter>"


def lane_values(spec: RunSpec) -> dict[str, float]:
    """Every lane value of ``spec``: the lane settings and every coefficient of its optimizer
    and parameter of its schedule (defaults resolved), keyed by lane name. Clipping "off" (0)
    is an infinite threshold as a lane value (the gradients pass unchanged), and so is
    max-norm "off" (no kernel is rescaled)."""
    # the registry imports JAX: a spec is built and hashed without it (`dnnbench list`)
    from dnnbench.registry import get_initializer, get_optimizer, get_schedule

    values = {name: float(getattr(spec, name)) for name in LANE_SETTINGS}
    for name in ("clip_norm", "max_norm"):
        if values[name] == 0:
            values[name] = float("inf")
    values[INIT_SCALE] = float(spec.init_scale or get_initializer(spec.init).scale)
    coefficients = {**get_optimizer(spec.optimizer).defaults, **dict(spec.optimizer_params)}
    values |= {OPTIMIZER_PREFIX + k: float(v) for k, v in coefficients.items()}
    params = get_schedule(spec.schedule).resolve(dict(spec.schedule_params), spec.schedule)
    values |= {SCHEDULE_PREFIX + k: float(v) for k, v in params.items()}
    return values


def structure_key(spec: RunSpec) -> str:
    """What makes the compiled program of ``spec``: its fields without the lane values (arms
    with equal keys share one program). Of the hidden layers' initializer only the
    distribution and the fan mode are structure: its scale is a lane value (He-normal and
    LeCun-normal share a program, so do Glorot-uniform and He-avg-uniform)."""
    from dnnbench.registry import get_initializer  # (JAX: see lane_values)

    d = dataclasses.asdict(spec)
    for name in (*LANE_SETTINGS, "optimizer_params", "schedule_params"):
        d.pop(name)
    init = get_initializer(spec.init)
    d["init"] = [init.distribution, init.mode]
    return json.dumps(d, sort_keys=True, default=list)


def group_spec(specs: list[RunSpec]) -> tuple[RunSpec, tuple[str, ...]]:
    """The spec that one program of ``specs`` (all of one structure) is built from, and the
    names of its lanes: the lane values that differ between the specs (the learning rate is
    always one, as the engine has always had it). A setting that is a lane keeps, in the
    returned spec, its largest value: the program applies the penalty, dropout, decay or
    clipping if any arm does, and reads the numbers from the lanes."""
    first = specs[0]
    if any(structure_key(s) != structure_key(first) for s in specs[1:]):
        raise ValueError("group_spec: the specs are not all of one structure")
    values = [lane_values(s) for s in specs]
    lanes = tuple(k for k in values[0]
                  if k == "learning_rate" or any(v[k] != values[0][k] for v in values[1:]))
    changes = {k: max(getattr(s, k) for s in specs) for k in LANE_SETTINGS if k in lanes}
    if INIT_SCALE in lanes:  # the program's model keeps its initializer's own scale: the
        changes[INIT_SCALE] = 0.0  # lanes' gains turn it into each arm's (engine.init)
    params = dict(first.optimizer_params)
    for k in lanes:
        if k.startswith(OPTIMIZER_PREFIX):
            name = k[len(OPTIMIZER_PREFIX):]
            params[name] = max(v[k] for v in values)
    # a schedule parameter that is a lane keeps the first arm's value (the lanes set it)
    return first.replace(**changes, optimizer_params=tuple(params.items())), lanes


def has_batch_norm(spec) -> bool:
    """Whether the model of ``spec`` has a batch-norm layer (the only ones with statistics)."""
    return spec.norm in choices.BATCH_STAT_NORMS or spec.input_norm


def check_norm(spec) -> None:
    """ValueError (one line) for a normalization that the spec's model cannot have."""
    for table, name, what in ((choices.NORMALIZATIONS, spec.norm, "normalization"),
                              (choices.BN_EVAL, spec.bn_eval, "bn_eval")):
        if name not in table:
            raise ValueError(f"unknown {what} {name!r}; choose from: {', '.join(table)}")
    if spec.norm == "group":
        bad = [w for w in spec.widths if w % spec.norm_groups]
        if bad:
            raise ValueError(f"group norm: norm_groups {spec.norm_groups} does not divide the "
                             f"width {bad[0]} (widths {'-'.join(map(str, spec.widths))})")
