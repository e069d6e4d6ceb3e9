"""Helpers shared by the benchmark scripts: the machine's practical fp32 matmul throughput,
training-FLOP counts, peak memory."""

from __future__ import annotations

import resource
import time

import jax
import jax.numpy as jnp
import numpy as np


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 GFLOP/s of a jitted n x n matmul (median of ``repeats`` after warm-up)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def mlp_macs(n_in: int, widths, n_out: int) -> int:
    """Multiply-accumulates of one forward pass of one example through a dense MLP."""
    dims = [n_in, *widths, n_out]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=False))


def train_flops(n_in: int, widths, n_out: int, examples: int) -> float:
    """Training FLOPs: forward + backward ~ 3 x forward, 2 FLOPs per multiply-accumulate."""
    return 6.0 * mlp_macs(n_in, widths, n_out) * examples


def eval_flops(n_in: int, widths, n_out: int, examples: int) -> float:
    return 2.0 * mlp_macs(n_in, widths, n_out) * examples


def peak_rss_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024
