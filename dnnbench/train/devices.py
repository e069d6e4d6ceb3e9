"""Where the seeds of an arm run: one device, or split across several.

On a CPU, XLA gives one device to the whole machine and parallelizes *inside* each operation.
That pays for large matrix products, but the small steps of a 3x100 net at batch 32 run on
one core whatever the number of vmapped seeds. JAX can instead expose the CPU as several
devices (``jax_num_cpu_devices``); the seed axis is then split across them with ``shard_map``
and every device trains its share of the seeds at the same time, each on its own core.

``configure_cpu_devices()`` must run before JAX initializes its backends (importing
``dnnbench.train`` does it); when it is too late, or when ``XLA_FLAGS`` already sets a host
device count, everything still works on the devices there are. ``DNNBENCH_CPU_DEVICES=1``
turns the split off. On a GPU nothing changes: one GPU is one device.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import jax

# Per-seed training FLOPs per step below which a CPU arm is split across devices: a larger
# step already keeps every core busy inside its matrix products (measured: depth-7 tapered
# net at batch 500, 2.4 GFLOP per step, runs as fast on one device as split over two).
CPU_SPLIT_MAX_FLOPS = 2e8
# Bytes of training state (parameters, gradients, optimizer state) of the seeds that one CPU
# device trains at once; more seeds are trained in groups (``seed_chunk``).
CPU_SEED_GROUP_BYTES = int(os.environ.get("DNNBENCH_SEED_GROUP_BYTES") or 4 << 20)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_cpu_devices() -> int | None:
    """Expose one CPU device per core (at most 8) unless told otherwise; the count set, or
    None when it was left alone (already configured, or the backends already run)."""
    wanted = os.environ.get("DNNBENCH_CPU_DEVICES")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    n = int(wanted) if wanted and wanted.isdigit() and int(wanted) > 0 else min(cpu_count(), 8)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends already initialized: keep what there is
        return None
    return n


def seed_shards(n_seeds: int, flops_per_seed_step: float) -> int:
    """How many devices to split ``n_seeds`` over: the fewest that give the fewest seeds per
    device (the last one padded), or 1 where splitting would not pay (a CPU step of at least
    CPU_SPLIT_MAX_FLOPS per seed already keeps every core busy inside its matrix products)."""
    devices = jax.devices()
    if len(devices) < 2 or n_seeds < 2:
        return 1
    if devices[0].platform == "cpu" and flops_per_seed_step >= CPU_SPLIT_MAX_FLOPS:
        return 1
    per_device = math.ceil(n_seeds / len(devices))
    return math.ceil(n_seeds / per_device)


def seed_chunk(n_seeds: int, flops_per_seed_step: float, state_bytes: Callable[[], int]) -> int:
    """How many of a device's ``n_seeds`` to train at once (vmapped), the seeds being trained
    group after group (the last group padded); ``state_bytes()``: the bytes of one seed's
    training state (asked only when needed). On a CPU, for small steps (below
    CPU_SPLIT_MAX_FLOPS per seed), the states of the seeds trained together should stay in the
    cache: a step of a larger group runs slower per seed (measured on 2 cores, 3x100 net,
    batch 32, MNIST, 20 seeds: Adam 4.7 ms per step in groups of 2 seeds per core, 7.5-9.3 ms
    in one group of 10). The group size is the one that fits and pads the fewest seeds. Large
    steps are faster vmapped together (depth-7 net, batch 500, 3 seeds: 56-66 ms per step
    together, 68-77 ms one by one); so is everything on an accelerator."""
    if (jax.default_backend() != "cpu" or n_seeds < 2
            or flops_per_seed_step >= CPU_SPLIT_MAX_FLOPS):
        return max(n_seeds, 1)
    fit = min(n_seeds, max(1, int(CPU_SEED_GROUP_BYTES // max(state_bytes(), 1))))
    return min(range(fit, 0, -1), key=lambda c: c * math.ceil(n_seeds / c))


def compile_ahead() -> bool:
    """Whether compiling the next arm while this one trains can save time: only where the
    training runs on an accelerator. On a CPU, XLA's compiler and the training compete for the
    same cores (both use all of them), so nothing is gained and the arm's compile time would
    be measured under that competition."""
    return jax.default_backend() != "cpu"
