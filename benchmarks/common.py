"""Helpers shared by the benchmark scripts: the machine's practical fp32 matmul throughput,
training-FLOP counts, peak memory, a cold-cache `dnnbench run` timed in a subprocess."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def run_cold(file: Path, out: Path, extra: list[str], label: str):
    """`dnnbench run FILE --out OUT EXTRA` in a fresh process with an empty compile cache
    (compile included in the wall time); exits with its stderr on failure. Returns (wall s,
    runs DataFrame, meta dict) of the experiment the file names."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        cmd = [sys.executable, "-m", "dnnbench", "run", str(file), "--out", str(out), *extra]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{label} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (meta_path,) = out.glob("*-meta.json")
    meta = json.loads(meta_path.read_text())
    runs = pd.read_csv(str(meta_path).removesuffix("-meta.json") + "-runs.csv")
    print(f"{label}: {wall:.1f} s wall, {meta['compiled_programs']} compiled programs, "
          f"compile {runs.groupby('program')['compile_s'].first().sum():.1f} s in all",
          flush=True)
    return wall, runs, meta
