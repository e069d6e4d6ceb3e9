"""Name -> factory tables. Every choice offered on the command line is looked up here.

Add an entry to extend the tool; the CLI's choices and the contract tests follow the tables.
"""

from __future__ import annotations

import dataclasses
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

# Optimizers: learning_rate (a float, a traced scalar or a schedule) -> GradientTransformation.
# Hyper-parameters other than the learning rate are the reference textbook's.
OPTIMIZERS: dict[str, Callable] = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr: optax.adagrad(lr),
    "rmsprop": lambda lr: optax.rmsprop(lr, decay=0.9),
    "adam": lambda lr: optax.adam(lr, b1=0.9, b2=0.999),
    "adamax": lambda lr: optax.adamax(lr, b1=0.9, b2=0.999),
    "nadam": lambda lr: optax.nadam(lr, b1=0.9, b2=0.999),
    "adamw": lambda lr: optax.adamw(lr, b1=0.9, b2=0.999, weight_decay=1e-5),
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
                   clip_norm: float = 0.0) -> optax.GradientTransformation:
    """The optimizer ``name`` at ``learning_rate`` (may be traced), with schedule and clipping."""
    lr = lookup(SCHEDULES, schedule, "schedule")(learning_rate, total_steps)
    if schedule == "constant":
        lr = learning_rate  # keep the plain scalar: some optimizers special-case it
    tx = lookup(OPTIMIZERS, name, "optimizer")(lr)
    if clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
    return tx
