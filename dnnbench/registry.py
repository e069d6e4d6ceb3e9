"""Name -> factory tables. Every choice offered on the command line is looked up here.

Add an entry to extend the tool; the CLI's choices and the contract tests follow the tables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

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
}

# The default initializer depends on the activation family (He for the ReLU family,
# Glorot for saturating ones, LeCun for SELU), as the textbooks recommend.
DEFAULT_INIT: dict[str, str] = {
    "relu": "he-normal", "leaky_relu": "he-normal", "elu": "he-normal", "gelu": "he-normal",
    "swish": "he-normal", "mish": "he-normal", "selu": "lecun-normal",
    "sigmoid": "glorot-uniform", "tanh": "glorot-uniform",
}

@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optimizer as data: ``factory(learning_rate, **coefficients)`` returns an
    ``optax.GradientTransformation``; ``coefficients`` names every numeric keyword the
    experiments may set, with the reference textbook's value. A coefficient may be a traced
    scalar (a lane value: one compiled program for many values).

    ``weight_decay`` is a coefficient of every optimizer: decoupled weight decay (the update
    becomes ``-lr * (direction + wd * params)``, as in AdamW and SGDW), native where the
    factory has it (adamw), otherwise added around the factory's direction by
    :func:`make_optimizer` (the registry's factories all scale their direction by the
    learning rate last)."""

    factory: Callable
    coefficients: dict[str, float]
    about: str = ""
    native_decay: bool = False  # the factory takes weight_decay itself

    @property
    def defaults(self) -> dict[str, float]:
        return {**self.coefficients, **({} if self.native_decay else {"weight_decay": 0.0})}


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

# Schedules: (peak learning rate, total steps) -> optax schedule.
SCHEDULES: dict[str, Callable] = {
    "constant": lambda lr, steps: optax.constant_schedule(lr),
    "cosine": lambda lr, steps: optax.cosine_decay_schedule(lr, decay_steps=max(steps, 1)),
    "exponential": lambda lr, steps: optax.exponential_decay(
        lr, transition_steps=max(steps // 10, 1), decay_rate=0.8),
    "warmup-cosine": lambda lr, steps: optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=max(steps // 20, 1), decay_steps=max(steps, 2)),
}


def choices(table: dict) -> str:
    return ", ".join(table)


def lookup(table: dict, name: str, what: str):
    """table[name], or ValueError naming the allowed values (the CLI turns it into exit 2)."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; choose from: {choices(table)}") from None


def make_optimizer(name: str, learning_rate, *, schedule: str = "constant", total_steps: int = 1,
                   clip_norm=0.0, coefficients: dict | None = None) -> optax.GradientTransformation:
    """The optimizer ``name`` (a registry name or a plug-in ``package.module:factory``) at
    ``learning_rate`` with its ``coefficients`` (missing ones at their defaults; any value may
    be traced), the schedule and global-norm clipping (``clip_norm``: a number, or traced;
    0 = off; ``inf`` leaves the gradients as they are)."""
    opt = get_optimizer(name)
    given = dict(coefficients or {})
    unknown = set(given) - set(opt.defaults)
    if unknown:
        raise ValueError(f"optimizer {name!r} has no coefficient {sorted(unknown)[0]!r}; "
                         f"its coefficients: {', '.join(opt.defaults) or 'none'}")
    coef = {**opt.defaults, **given}
    lr = get_schedule(schedule)(learning_rate, total_steps)
    if schedule == "constant":
        lr = learning_rate  # keep the plain scalar: some optimizers special-case it
    decay = coef.pop("weight_decay") if not opt.native_decay else None
    if decay is None or _is_static_zero(decay):
        tx = opt.factory(lr, **coef)
    else:  # the direction at lr 1 (sign flipped), + wd * params, then scaled by lr
        tx = optax.chain(opt.factory(1.0, **coef), optax.add_decayed_weights(-decay),
                         optax.scale_by_learning_rate(lr, flip_sign=False))
    if not _is_static_zero(clip_norm):
        tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
    return tx


def _is_static_zero(value) -> bool:
    return isinstance(value, (int, float)) and value == 0


# ----------------------------------------------------------------------------------- plug-ins

def is_plugin(name: str) -> bool:
    """Whether ``name`` names a plug-in by import path (``package.module:attribute``)."""
    return ":" in name


def load_plugin(path: str, what: str):
    """The object at ``package.module:attribute``; ValueError (one line) if it cannot be had."""
    import importlib

    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} plug-in {path!r} is not of the form package.module:name")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        raise ValueError(f"{what} plug-in {path!r} cannot be imported: "
                         f"{type(e).__name__}: {e}") from None
    if not callable(obj):
        raise ValueError(f"{what} plug-in {path!r} is not callable")
    return obj


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
    try:
        tx = factory(0.01)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"optimizer plug-in {name!r} failed when called as "
                         f"factory(0.01): {type(e).__name__}: {e}") from None
    if not isinstance(tx, optax.GradientTransformation):
        raise ValueError(f"optimizer plug-in {name!r} returned {type(tx).__name__}, not an "
                         "optax.GradientTransformation")
    return Optimizer(factory, coef, f"plug-in {name}", native_decay="weight_decay" in coef)


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
    made = load_plugin(name, "initializer")()
    if not isinstance(made, Initializer):
        raise ValueError(f"initializer plug-in {name!r} returned {type(made).__name__}, not "
                         "a dnnbench.registry.Initializer")
    return made


def get_schedule(name: str) -> Callable:
    """The registry's schedule, or a plug-in ``package.module:factory`` with
    ``factory(peak_lr, total_steps)`` returning an optax schedule (step -> learning rate)."""
    if not is_plugin(name):
        return lookup(SCHEDULES, name, "schedule")
    return load_plugin(name, "schedule")
