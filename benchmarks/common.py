"""Helpers shared by the benchmark scripts: the machine's practical fp32 matmul throughput,
training-FLOP counts, peak memory."""

from __future__ import annotations

import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from dnnbench.models.mlp import eval_flops, mlp_macs, train_flops  # noqa: F401 (re-exported)


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


def peak_rss_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024
