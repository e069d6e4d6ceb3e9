"""What a run may ask for: numbers the engine can represent and the machine can hold.

Checked before any work (no JAX here), by plain functions of values that raise
:class:`LimitError` with a one-line message naming the limit; the commands turn it into exit
code 2. A number past these limits would otherwise end, after work has started, in an int32
overflow, an out-of-memory crash, or a Python list of a hundred million depths.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from itertools import pairwise

INT32_MAX = 2**31 - 1  # step counters and example indices are int32 on device
UINT32_MAX = 2**32 - 1  # jax.random.PRNGKey keeps the low 32 bits: seed 2**32 is seed 0
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # smallest normal float32

# kind -> (largest allowed value, why)
LIMITS: dict[str, tuple[int, str]] = {
    "int32": (INT32_MAX, "the engine's counters are int32"),
    "steps": (INT32_MAX, "step counts are int32"),
    "seed": (UINT32_MAX, "PRNG seeds are 32-bit: a larger one repeats a smaller one"),
    "seeds": (1_000, "the seeds of an arm are the lanes of one vmapped program"),
    "width": (65_536, "the widest hidden layer supported"),
    "depth": (1_000, "the deepest network supported"),
    "grid": (1_000, "the points of a grid are lanes of one vmapped program"),
    "workers": (256, ("local dask workers are processes of this machine, each with a copy "
                      "of the data set")),
}


class LimitError(ValueError):
    """A value past a limit; the message is one line for the user."""


def check(kind: str, value: int, option: str) -> None:
    """``value`` (of ``option``) must not exceed the limit of ``kind`` (see :data:`LIMITS`)."""
    maximum, why = LIMITS[kind]
    if value > maximum:
        raise LimitError(f"{option}: {value:,} is above the limit of {maximum:,} ({why})")


def check_float32(value: float, option: str) -> None:
    """A nonzero ``value`` must be a normal float32 (it becomes one on device: inf or 0)."""
    if value != 0 and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
        raise LimitError(f"{option}: {value:g} is not representable in float32 "
                         f"(magnitude {FLOAT32_TINY:.1e} to {FLOAT32_MAX:.1e})")


def run_bytes(*, lanes: int, layer_sizes: Sequence[int], batch_size: int, steps: int,
              n_evals: int) -> int:
    """A lower estimate of the memory of one vmapped program of ``lanes`` runs of an MLP with
    ``layer_sizes`` (inputs, hidden..., outputs): per lane, the data order of every epoch of
    the budget (int32, ~3 copies while drawn and sorted: ~``steps * batch_size`` entries), the
    parameters with their gradients and optimizer state (~4 float32 copies), one batch's
    activations (~3 copies for the backward pass) and the curves (4 float32 per evaluation)."""
    params = sum(a * b + b for a, b in pairwise(layer_sizes))
    per_lane = (12 * steps * batch_size + 16 * params + 12 * batch_size * sum(layer_sizes)
                + 16 * n_evals)
    return lanes * per_lane


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes: int, what: str, available: int | None = None) -> None:
    """``nbytes`` (an estimate for ``what``) must fit in the machine's memory."""
    available = memory_bytes() if available is None else available
    if available is not None and nbytes > available:
        raise LimitError(f"{what} needs about {nbytes / 2**30:,.1f} GiB, more than the "
                         f"{available / 2**30:,.1f} GiB of memory of this machine; use fewer "
                         "seeds, narrower layers, fewer steps or a smaller batch")


def cpu_model() -> str | None:
    """The CPU's model name and its widest vector instructions (XLA's CPU kernels, and so the
    last bits of float32 results, differ between them: numbers are comparable bit for bit
    only on the same kind of CPU)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return platform.processor() or None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    isa = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    model = fields.get("model name") or platform.processor() or "unknown"
    return f"{model} ({', '.join(isa) or 'no avx'})"
