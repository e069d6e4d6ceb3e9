"""Plug-ins used by the tests (named by import path, as a user's own would be)."""

import jax.numpy as jnp
import optax

from dnnbench.registry import Initializer


def heavy_ball(learning_rate, momentum=0.5):
    """An optimizer plug-in: SGD with momentum, its coefficient a keyword with a default."""
    return optax.sgd(learning_rate, momentum=momentum)


def not_an_optimizer(learning_rate):
    return 42


def soft_relu(x):
    """An activation plug-in."""
    return jnp.logaddexp(x, 0.0)


def wide_uniform():
    """An initializer plug-in."""
    return Initializer("uniform", 1.5, "fan_in")


def identity(x):
    """An activation plug-in: a linear network."""
    return x
