"""Name -> factory tables. Every choice offered on the command line is looked up here.

Add an entry to extend the tool; the CLI's choices and the contract tests follow the tables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
    "mish": jax.nn.mish,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    # PReLU: leaky ReLU whose slope is learned, one per hidden layer (flax.linen.PReLU, built
    # by models.mlp); this entry is the function at the initial slope
    "prelu": functools.partial(jax.nn.leaky_relu, negative_slope=0.25),
}
PRELU_INIT = 0.25  # PReLU's initial slope (He et al. 2015)
# activations with a numeric parameter: activation -> (its keyword, the RunSpec setting, a
# lane value, that gives it)
ACTIVATION_PARAMS: dict[str, tuple[str, str]] = {"leaky_relu": ("negative_slope", "leaky_slope")}


def _bounded(low: float, high: float, rel: float = 0.01):
    """Saturation of a bounded activation: outputs within ``rel`` of the range from a bound,
    as a fraction of every (example, unit) output of the layer."""
    tol = rel * (high - low)
    return lambda pre, act: jnp.mean((act <= low + tol) | (act >= high - tol))


def _dead(pre, act):
    """Dead units of the ReLU family: units whose pre-activation is <= 0 on every example of
    the batch (a ReLU outputs 0 for all of them; a leaky unit is then in its negative regime
    throughout), as a fraction of the layer's units."""
    return jnp.mean(jnp.all(pre <= 0, axis=0))


# activation -> fraction of saturated units of a layer, from its (batch, units) pre-activations
# and activations (diagnostics); activations not listed (plug-ins) report NaN
SATURATION: dict[str, Callable] = {
    **{name: _dead for name in ("relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "swish",
                                "mish")},
    "sigmoid": _bounded(0.0, 1.0),
    "tanh": _bounded(-1.0, 1.0),
}

@dataclasses.dataclass(frozen=True)
class Initializer:
    """A variance-scaling initializer, as data: variance = scale / n, where n is fan_in,
    fan_out or their average (mode "unit": n = 1, a plain distribution with variance = scale).

    Calling it gives the equivalent ``jax.nn.initializers`` function; ``sample_flat`` lets the
    model draw every kernel of a network in one random call per distribution (each random draw
    of a new shape is a separate kernel for XLA to compile, ~0.5 s apiece on a CPU).
    """

    distribution: str  # "truncated_normal" | "normal" | "uniform"
    scale: float
    mode: str  # "fan_in" | "fan_out" | "fan_avg" | "unit"

    def __call__(self) -> Callable:
        if self.mode == "unit":
            return jax.nn.initializers.normal(stddev=self.scale ** 0.5)
        return jax.nn.initializers.variance_scaling(self.scale, self.mode, self.distribution)

    def multiplier(self, fan_in: int, fan_out: int) -> float:
        """Factor that turns a standard draw of ``distribution`` into this initializer's."""
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
             "unit": 1}[self.mode]
        var = self.scale / n
        return {"truncated_normal": (var ** 0.5) / TRUNCATED_STD, "normal": var ** 0.5,
                "uniform": (3 * var) ** 0.5}[self.distribution]


# std of a standard normal truncated to [-2, 2] (as in jax.nn.initializers.variance_scaling)
TRUNCATED_STD = 0.87962566103423978

STANDARD_DRAWS: dict[str, Callable] = {
    "truncated_normal": lambda key, n: jax.random.truncated_normal(key, -2.0, 2.0, (n,)),
    "normal": lambda key, n: jax.random.normal(key, (n,)),
    "uniform": lambda key, n: jax.random.uniform(key, (n,), minval=-1.0, maxval=1.0),
}

INITIALIZERS: dict[str, Initializer] = {
    "glorot-uniform": Initializer("uniform", 1.0, "fan_avg"),
    "glorot-normal": Initializer("truncated_normal", 1.0, "fan_avg"),
    "he-normal": Initializer("truncated_normal", 2.0, "fan_in"),
    "he-uniform": Initializer("uniform", 2.0, "fan_in"),
    "lecun-normal": Initializer("truncated_normal", 1.0, "fan_in"),
    "normal": Initializer("normal", 1.0, "unit"),
    # Keras' VarianceScaling(scale=2, mode="fan_avg", distribution="uniform") (Geron, ch. 11)
    "he-avg-uniform": Initializer("uniform", 2.0, "fan_avg"),
}

# The default initializer depends on the activation family (He for the ReLU family,
# Glorot for saturating ones, LeCun for SELU), as the textbooks recommend.
DEFAULT_INIT: dict[str, str] = {
    "relu": "he-normal", "leaky_relu": "he-normal", "elu": "he-normal", "gelu": "he-normal",
    "swish": "he-normal", "mish": "he-normal", "selu": "lecun-normal",
    "sigmoid": "glorot-uniform", "tanh": "glorot-uniform", "prelu": "he-normal",
}


# ------------------------------------------------------------------------------------ dropout
# SELU's fixed point: the constants of jax.nn.selu
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def standard_dropout(x: jax.Array, rate, key: jax.Array) -> jax.Array:
    """Inverted dropout at ``rate`` (a number or a traced lane value; 0 returns ``x``
    unchanged): the arithmetic of ``flax.linen.Dropout``, which needs a static rate."""
    keep = 1.0 - rate
    mask = jax.random.bernoulli(key, p=keep, shape=x.shape)
    return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def alpha_dropout(x: jax.Array, rate, key: jax.Array) -> jax.Array:
    """Alpha dropout (Klambauer et al. 2017): a dropped unit is set to SELU's negative
    saturation value -scale*alpha, then an affine map a*x + b restores mean 0 and variance 1
    of standardized inputs; rate 0 returns ``x`` unchanged."""
    keep = 1.0 - rate
    sat = -SELU_SCALE * SELU_ALPHA
    a = (keep + sat ** 2 * keep * rate) ** -0.5
    b = -a * rate * sat
    mask = jax.random.bernoulli(key, p=keep, shape=x.shape)
    return a * jnp.where(mask, x, sat) + b


DROPOUTS: dict[str, Callable] = {"standard": standard_dropout, "alpha": alpha_dropout}


@dataclasses.dataclass(frozen=True)
class Loss:
    """A training loss as data: ``fn(logits, labels)`` gives each example's (loss, correct);
    ``binary``: one output unit (two classes), else one logit per class; ``reconstructs``:
    the model outputs one value per input feature and ``fn(outputs, inputs)`` compares them
    with the inputs themselves (labels unused: an autoencoder); its "correct" is the
    fraction of an example's features reconstructed within :data:`RECONSTRUCTED`."""

    fn: Callable
    about: str
    binary: bool = False
    reconstructs: bool = False

    def outputs(self, n_classes: int, n_features: int | None = None) -> int:
        """The model's output units for ``n_classes`` classes (or ``n_features`` inputs)."""
        if self.reconstructs:
            if n_features is None:
                raise ValueError("a reconstruction loss needs the number of input features")
            return n_features
        return 1 if self.binary else n_classes


def _cross_entropy(logits, labels):
    return (optax.softmax_cross_entropy_with_integer_labels(logits, labels),
            jnp.argmax(logits, -1) == labels)


def _logistic(logits, labels):
    z = logits[:, 0]
    return (optax.sigmoid_binary_cross_entropy(z, labels.astype(z.dtype)),
            (z > 0) == (labels > 0))


def _quadratic(logits, labels):
    """Keras' ``mse`` on a softmax output: the mean over the classes of the squared
    difference between the softmax probabilities and the one-hot target."""
    target = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return (jnp.mean((jax.nn.softmax(logits) - target) ** 2, axis=-1),
            jnp.argmax(logits, -1) == labels)


RECONSTRUCTED = 0.1  # a feature within this of the input counts as reconstructed


def _reconstruction(outputs, inputs):
    """Mean squared error of the outputs against the inputs (pixels in [0, 1])."""
    error = outputs - inputs
    return (jnp.mean(error ** 2, axis=-1),
            jnp.mean(jnp.abs(error) < RECONSTRUCTED, axis=-1, dtype=outputs.dtype))


LOSSES: dict[str, Loss] = {
    "softmax": Loss(_cross_entropy, "cross-entropy of the softmax over the classes (its "
                    "gradient in the logits is softmax - one-hot)"),
    "sigmoid": Loss(_logistic, "binary cross-entropy of one sigmoid unit (logistic "
                    "regression's loss; two classes)", binary=True),
    "mse": Loss(_quadratic, "quadratic cost: the mean squared difference between the softmax "
                "probabilities and the one-hot target (Keras loss='mse' on a softmax output)"),
    "reconstruction": Loss(_reconstruction, "an autoencoder's: the mean squared error of a "
                           "linear output per input feature against the input itself (labels "
                           "unused; accuracy: the fraction of features within 0.1)",
                           reconstructs=True),
}

@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optimizer as data: ``factory(learning_rate, **coefficients)`` returns an
    ``optax.GradientTransformation``; ``coefficients`` names every numeric keyword the
    experiments may set, with the reference textbook's value. A coefficient may be a traced
    scalar (a lane value: one compiled program for many values).

    ``weight_decay`` is a coefficient of every optimizer: decoupled weight decay (the update
    becomes ``-lr * (direction + wd * params)``, as in AdamW and SGDW), native where the
    factory has it (adamw), otherwise added between the factory's direction and its learning
    rate by :func:`dnnbench.train.optim.make_tx` (the registry's factories all scale their
    direction by the learning rate last)."""

    factory: Callable
    coefficients: dict[str, float]
    about: str = ""
    native_decay: bool = False  # the factory takes weight_decay itself

    @property
    def defaults(self) -> dict[str, float]:
        return {**self.coefficients, **({} if self.native_decay else {"weight_decay": 0.0})}

    def resolve(self, given: dict | None, name: str = "") -> dict:
        """Every coefficient (``given`` ones, the others at their defaults); ValueError naming
        the allowed ones for an unknown name."""
        return _resolve("optimizer", name, "coefficient", self.defaults, given)


def _resolve(kind: str, name: str, what: str, defaults: dict, given: dict | None) -> dict:
    """``defaults`` updated with ``given``; ValueError naming the allowed keys for another."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{kind} {name!r} has no {what} {unknown[0]!r}; its {what}s: "
                         f"{', '.join(defaults) or 'none'}")
    return {**defaults, **given}


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(optax.sgd, {}, "plain stochastic gradient descent"),
    "momentum": Optimizer(optax.sgd, {"momentum": 0.9}, "SGD with momentum"),
    "nesterov": Optimizer(functools.partial(optax.sgd, nesterov=True), {"momentum": 0.9},
                          "SGD with Nesterov momentum"),
    "adagrad": Optimizer(optax.adagrad, {"initial_accumulator_value": 0.1, "eps": 1e-7},
                         "AdaGrad"),
    "rmsprop": Optimizer(optax.rmsprop, {"decay": 0.9, "eps": 1e-8}, "RMSProp"),
    "adam": Optimizer(optax.adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8}, "Adam"),
    "adamax": Optimizer(optax.adamax, {"b1": 0.9, "b2": 0.999, "eps": 1e-8}, "AdaMax"),
    "nadam": Optimizer(optax.nadam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8}, "Nadam"),
    "adamw": Optimizer(optax.adamw, {"b1": 0.9, "b2": 0.999, "eps": 1e-8,
                                     "weight_decay": 1e-5}, "Adam, decoupled weight decay",
                       native_decay=True),
}

@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule as data: ``factory(learning_rate, total_steps, **params)``
    returns an optax schedule (update count -> learning rate); ``params`` names its numeric
    parameters with their defaults. Any parameter may be a traced scalar (a lane value: one
    compiled program for many values), so the factories are formulas of the step count.

    ``momentum(total_steps, **params)``, if given, is a schedule of the optimizer's momentum
    (its ``momentum`` or ``b1`` coefficient, when it has one), applied through
    ``optax.inject_hyperparams``. ``positive`` names the parameters that must be > 0 (the
    others must be >= 0). A ``constant`` schedule hands the optimizer the plain rate (a
    number or a lane value) instead of a function of the count: some optimizers special-case
    a scalar rate, and a scalar needs no count in the optimizer's state."""

    factory: Callable
    params: dict[str, float]
    about: str = ""
    momentum: Callable | None = None
    positive: tuple[str, ...] = ()
    plateau: bool = False  # performance scheduling: the engine scales the rate (plateau_step)
    constant: bool = False  # the rate is the peak throughout (performance scheduling's too)

    def resolve(self, given: dict | None, name: str = "") -> dict:
        """Every parameter (``given`` ones, the others at their defaults); ValueError naming
        the allowed ones for an unknown name."""
        return _resolve("schedule", name, "parameter", self.params, given)


def _power(lr, steps, decay_steps=10000.0, exponent=1.0):
    """eta0 / (1 + t/s)^c (Keras' ``decay`` option is c = 1, s = 1/decay)."""
    return lambda t: lr / (1.0 + t / decay_steps) ** exponent


def _exponential(lr, steps, decay_steps=10000.0):
    """eta0 * 0.1^(t/s): ten times lower every s steps."""
    return lambda t: lr * 0.1 ** (t / decay_steps)


def _piecewise(lr, steps, boundary1=0.5, boundary2=0.75, scale1=0.1, scale2=0.01):
    """eta0 until boundary1 x the budget, eta0 * scale1 until boundary2 x the budget, then
    eta0 * scale2 (three constant pieces; boundaries are fractions of the budget)."""
    return lambda t: lr * jnp.where(t < boundary1 * steps, 1.0,
                                    jnp.where(t < boundary2 * steps, scale1, scale2))


def _onecycle_points(steps, pct_start, pct_final):
    return jnp.stack([jnp.float32(0.0), pct_start * steps, pct_final * steps,
                      jnp.float32(max(steps, 1))])


def _onecycle(lr, steps, pct_start=0.45, pct_final=0.9, div_factor=10.0,
              final_div_factor=1000.0, max_momentum=0.95, min_momentum=0.85):
    """1cycle: linear from eta0/div_factor up to eta0 at pct_start of the budget, back down to
    eta0/div_factor at pct_final, then to eta0/(div_factor*final_div_factor) at the end: the
    values of ``optax.linear_onecycle_schedule`` (tested equal), as ``jnp.interp`` so that
    the fractions may be lane values too."""
    values = jnp.stack([1.0 / div_factor, jnp.float32(1.0), 1.0 / div_factor,
                        1.0 / (div_factor * final_div_factor)])
    return lambda t: lr * jnp.interp(t, _onecycle_points(steps, pct_start, pct_final), values)


def _onecycle_momentum(steps, pct_start=0.45, pct_final=0.9, div_factor=10.0,
                       final_div_factor=1000.0, max_momentum=0.95, min_momentum=0.85):
    """The momentum of 1cycle: max -> min while the learning rate rises, back to max while it
    falls, max in the last phase."""
    values = jnp.stack([jnp.float32(max_momentum), jnp.float32(min_momentum),
                        jnp.float32(max_momentum), jnp.float32(max_momentum)])
    return lambda t: jnp.interp(t, _onecycle_points(steps, pct_start, pct_final), values)


class Plateau(NamedTuple):
    """The state of performance scheduling, per run: the best eval loss so far, evaluations
    since it improved, and the factor the learning rate is multiplied by."""

    best: jax.Array
    wait: jax.Array
    scale: jax.Array


def plateau_start(shape) -> Plateau:
    return Plateau(jnp.full(shape, jnp.inf, jnp.float32), jnp.zeros(shape, jnp.float32),
                   jnp.ones(shape, jnp.float32))


def plateau_step(state: Plateau, loss, *, factor, patience, threshold, min_scale) -> Plateau:
    """One evaluation of performance scheduling: the rule of
    ``optax.contrib.reduce_on_plateau`` (relative tolerance ``threshold``, no cooldown; tested
    equal), elementwise ``jnp`` so that every parameter may be a lane value: the loss improved
    if below (1 - threshold) x the best; after ``patience`` evaluations without improvement
    the scale is multiplied by ``factor`` (not below ``min_scale``) and the count restarts."""
    improved = loss < (1.0 - threshold) * state.best
    wait = jnp.where(improved, 0.0, state.wait + 1.0)
    reduce = wait >= patience
    scale = jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale)
    return Plateau(jnp.where(improved, loss, state.best), jnp.where(reduce, 0.0, wait), scale)


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule(lambda lr, steps: optax.constant_schedule(lr), {}, "constant",
                         constant=True),
    "cosine": Schedule(lambda lr, steps, alpha=0.0: optax.cosine_decay_schedule(
        lr, decay_steps=max(steps, 1), alpha=alpha), {"alpha": 0.0},
        "cosine decay over the budget to alpha x eta0"),
    "exponential": Schedule(_exponential, {"decay_steps": 10000.0},
                            "eta0 * 0.1^(t/decay_steps)", positive=("decay_steps",)),
    "warmup-cosine": Schedule(lambda lr, steps: optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=max(steps // 20, 1), decay_steps=max(steps, 2)), {},
        "linear warm-up from 0 over 5% of the budget, then cosine decay to 0"),
    "power": Schedule(_power, {"decay_steps": 10000.0, "exponent": 1.0},
                      "eta0 / (1 + t/decay_steps)^exponent", positive=("decay_steps",)),
    "piecewise": Schedule(_piecewise, {"boundary1": 0.5, "boundary2": 0.75, "scale1": 0.1,
                                       "scale2": 0.01},
                          "eta0, then eta0*scale1 from boundary1, eta0*scale2 from boundary2 "
                          "(fractions of the budget)"),
    "1cycle": Schedule(_onecycle, {"pct_start": 0.45, "pct_final": 0.9, "div_factor": 10.0,
                                   "final_div_factor": 1000.0, "max_momentum": 0.95,
                                   "min_momentum": 0.85},
                       "linear up to eta0 and down again, then several orders lower; "
                       "momentum (or b1) cycled max -> min -> max",
                       momentum=_onecycle_momentum, positive=("div_factor", "final_div_factor")),
    "plateau": Schedule(lambda lr, steps, factor=0.5, patience=5.0, threshold=1e-4,
                        min_scale=0.0: optax.constant_schedule(lr),
                        {"factor": 0.5, "patience": 5.0, "threshold": 1e-4, "min_scale": 0.0},
                        "performance scheduling: eta0 x factor each time the eval loss has not "
                        "improved for patience evaluations", positive=("patience",),
                        plateau=True, constant=True),
}


def clip_by_tensor_norm(max_norm) -> optax.GradientTransformation:
    """Clip each gradient tensor by its own norm (Keras' ``clipnorm``): g * max_norm / ||g||
    where ||g|| > max_norm, else g. ``optax.clip_by_block_rms`` bounds the RMS, not the norm;
    ``optax.clip_by_global_norm`` scales every tensor by one factor. ``max_norm`` may be traced
    (a lane value; ``inf`` leaves the gradients unchanged)."""
    def clip(g):
        norm = jnp.linalg.norm(g)
        return jnp.where(norm > max_norm, g * (max_norm / norm), g)
    return optax.stateless(lambda updates, params=None: jax.tree_util.tree_map(clip, updates))


# Gradient clipping kinds: name -> (threshold -> transformation of the gradients), or None
# for no clipping. The threshold (``spec.clip_norm``) is a lane value; 0 is "off" for every
# kind (the lane value inf: the gradients pass unchanged).
CLIPPINGS: dict[str, Callable | None] = {
    "none": None,
    "value": lambda t: optax.clip(t),  # every component into [-t, t]
    "norm": clip_by_tensor_norm,  # each tensor by its own norm (Keras clipnorm)
    "global_norm": optax.clip_by_global_norm,  # all tensors by one factor (Keras global_clipnorm)
}


def make_clipping(kind: str, threshold) -> optax.GradientTransformation | None:
    """The clipping ``kind`` at ``threshold`` (a number, or traced), or None when the program
    clips nothing (kind "none", or a static threshold of 0)."""
    factory = lookup(CLIPPINGS, kind, "clip")
    if factory is None or is_static_zero(threshold):
        return None
    return factory(threshold)


def choices(table: dict) -> str:
    return ", ".join(table)


def lookup(table: dict, name: str, what: str):
    """table[name], or ValueError naming the allowed values (the CLI turns it into exit 2)."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; choose from: {choices(table)}") from None


def is_static_zero(value) -> bool:
    """Whether ``value`` is the number 0 (not a traced lane value): the program leaves out
    what it switches off."""
    return isinstance(value, (int, float)) and value == 0


# ----------------------------------------------------------------------------------- plug-ins

def is_plugin(name: str) -> bool:
    """Whether ``name`` names a plug-in by import path (``package.module:attribute``)."""
    return ":" in name


def _plugin_file(module: str) -> bool:
    """Whether a plug-in's module part names a file (``path/to/file.py``), not an import path."""
    return module.endswith(".py") or "/" in module or "\\" in module


def _import_file(module: str):
    """The module of the file ``module`` (imported once per process, under a name made from
    its absolute path)."""
    import hashlib
    import importlib.util
    import sys
    from pathlib import Path

    file = Path(module).expanduser().resolve()
    name = "dnnbench_plugin_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def load_plugin(path: str, what: str):
    """The object at ``package.module:attribute`` (the current directory is importable, after
    the installed packages, as ``python -m`` makes it) or at ``path/to/file.py:attribute``;
    ValueError (one line) if it cannot be had."""
    import importlib
    import os
    import sys

    what = f"{what} plug-in" if what else "plug-in"
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} {path!r}: name it package.module:factory (importable "
                         "from the current directory or installed) or path/to/file.py:factory")
    if _plugin_file(module) and not os.path.isfile(os.path.expanduser(module)):
        raise ValueError(f"{what} {path!r}: no such file {module}")
    try:
        if _plugin_file(module):
            obj = _import_file(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())
            obj = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        raise ValueError(f"{what} {path!r} cannot be imported: "
                         f"{type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what} {path!r}: {module} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{what} {path!r} is not callable")  # noqa: TRY004 (a user's input: one-line usage error)
    return obj


# the run settings that may name a plug-in (RunSpec fields)
PLUGIN_SETTINGS = ("optimizer", "activation", "init", "head_init", "schedule", "model")


def _digest_files(files) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f"{f.name}:{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()[:16]


@functools.cache
def _distributions() -> dict:
    import importlib.metadata

    return importlib.metadata.packages_distributions()


def plugin_fingerprint(path: str) -> dict:
    """What the results of a plug-in depend on: its import path, the SHA-256 of its source (the
    files of its top-level package, or its module's file), and the version of the installed
    distribution that provides it (None for a user's own folder). Read afresh at each call:
    an edited plug-in never matches the results or programs of its old code."""
    import importlib
    import importlib.metadata
    import sys
    from pathlib import Path

    load_plugin(path, "")  # imported (ValueError, one line, when it cannot be)
    module_part = path.partition(":")[0]
    if _plugin_file(module_part):  # a file of the user's: its source, no distribution
        return {"path": path, "source": _digest_files([Path(module_part).resolve()]),
                "version": None}
    top = module_part.split(".")[0]
    module = sys.modules[top]
    if getattr(module, "__path__", None):  # a package: every module of it
        files = [f for d in module.__path__ for f in Path(d).rglob("*.py")]
    else:
        files = [Path(module.__file__)] if getattr(module, "__file__", None) else []
    dists = _distributions().get(top) or []
    version = importlib.metadata.version(dists[0]) if dists else None
    return {"path": path, "source": _digest_files(files) if files else None, "version": version}


def plugins_of(values) -> dict[str, dict]:
    """The plug-ins among ``values`` (import path -> :func:`plugin_fingerprint`)."""
    names = {v for v in values if isinstance(v, str) and is_plugin(v)}
    return {name: plugin_fingerprint(name) for name in sorted(names)}


def spec_plugins(spec) -> dict[str, dict]:
    """The plug-ins a run specification names (import path -> :func:`plugin_fingerprint`)."""
    return plugins_of(getattr(spec, key) for key in PLUGIN_SETTINGS)


def _numeric_keywords(factory: Callable) -> dict[str, float]:
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: float(p.default) for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and isinstance(p.default, (int, float)) and not isinstance(p.default, bool)}


@functools.cache
def get_optimizer(name: str) -> Optimizer:
    """The registry's optimizer ``name``, or a plug-in: ``package.module:factory`` where
    ``factory(learning_rate, **coefficients)`` returns an ``optax.GradientTransformation``; its
    coefficients are its keyword arguments with numeric defaults (each one may be set in an
    experiment and vary as a lane value). Weight decay is native if it takes ``weight_decay``."""
    if not is_plugin(name):
        return lookup(OPTIMIZERS, name, "optimizer")
    factory = load_plugin(name, "optimizer")
    coef = _numeric_keywords(factory)
    coef.pop("learning_rate", None)
    _made(factory, (0.01,), f"optimizer plug-in {name!r}", optax.GradientTransformation,
          "an optax.GradientTransformation")
    return Optimizer(factory, coef, f"plug-in {name}", native_decay="weight_decay" in coef)


@functools.cache
def get_model(name: str) -> Callable:
    """A model plug-in ``package.module:factory`` (or ``path/to/file.py:factory``):
    ``factory(n_outputs)`` returns a Flax (linen) module, called as ``module(x, train=...)`` on
    a batch of flat features (batch, features) and returning (batch, n_outputs) logits. It may
    hold batch norm (collection ``batch_stats``) and dropout (rng ``dropout``, applied when
    ``train``); its parameters named ``kernel`` are the kernels of the l1/l2 penalties."""
    import flax.linen as nn

    factory = load_plugin(name, "model")
    _made(factory, (2,), f"model plug-in {name!r}", nn.Module, "a flax.linen Module")
    return factory


def _made(factory: Callable, args: tuple, who: str, kind: type, kind_words: str):
    """``factory(*args)``, checked to be a ``kind``: ValueError (one line) naming the plug-in
    ``who`` when it raises or returns something else."""
    try:
        out = factory(*args)
    except Exception as e:  # noqa: BLE001 - a user's plug-in: one line
        call = f"factory({', '.join(map(repr, args))})"
        raise ValueError(f"{who} failed when called as {call}: {type(e).__name__}: {e}") from None
    if not isinstance(out, kind):
        raise ValueError(  # noqa: TRY004 (a user's plug-in: one-line usage error)
            f"{who} returned {type(out).__name__}, not {kind_words}")
    return out


@functools.cache
def get_activation(name: str) -> Callable:
    """The registry's activation, or a plug-in ``package.module:function`` (an elementwise
    function of a jax array)."""
    if not is_plugin(name):
        return lookup(ACTIVATIONS, name, "activation")
    fn = load_plugin(name, "activation")
    try:
        out = fn(jnp.linspace(-1.0, 1.0, 4))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"activation plug-in {name!r} failed on an array: "
                         f"{type(e).__name__}: {e}") from None
    if getattr(out, "shape", None) != (4,):
        raise ValueError(f"activation plug-in {name!r} is not elementwise (shape "
                         f"{getattr(out, 'shape', None)} for an input of shape (4,))")
    return fn


@functools.cache
def get_initializer(name: str) -> Initializer:
    """The registry's initializer, or a plug-in ``package.module:factory`` whose
    ``factory()`` returns an :class:`Initializer` (distribution, scale, mode)."""
    if not is_plugin(name):
        return lookup(INITIALIZERS, name, "initializer")
    factory = load_plugin(name, "initializer")
    try:
        made = factory()
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"initializer plug-in {name!r} failed when called as factory(): "
                         f"{type(e).__name__}: {e}") from None
    if not isinstance(made, Initializer):
        raise ValueError(  # noqa: TRY004 (a user's plug-in: one-line usage error)
            f"initializer plug-in {name!r} returned {type(made).__name__}, not "
                         "a dnnbench.registry.Initializer")
    return made


@functools.cache
def get_schedule(name: str) -> Schedule:
    """The registry's schedule, or a plug-in ``package.module:factory`` with
    ``factory(peak_lr, total_steps, **params)`` returning an optax schedule (step -> learning
    rate); its parameters are its keyword arguments with numeric defaults (each may be set in
    an experiment and vary as a lane value)."""
    if not is_plugin(name):
        return lookup(SCHEDULES, name, "schedule")
    factory = load_plugin(name, "schedule")
    params = _numeric_keywords(factory)
    for arg in ("learning_rate", "peak_lr", "total_steps", "steps"):
        params.pop(arg, None)
    try:  # called and its result checked before any training
        schedule = factory(0.01, 100)
        value = schedule(0) if callable(schedule) else None
        ok = callable(schedule) and jnp.ndim(value) == 0 and bool(jnp.isfinite(value))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"schedule plug-in {name!r} failed when called as factory(0.01, 100) "
                         f"and at step 0: {type(e).__name__}: {e}") from None
    if not ok:
        raise ValueError(f"schedule plug-in {name!r}: factory(0.01, 100) must return a "
                         "function of the step giving a finite learning rate, got "
                         f"{type(schedule).__name__}")
    return Schedule(factory, params, f"plug-in {name}")
