"""The protocols' unit builders, registered by the names the experiment files use
(:mod:`dnnbench.definition.protocols` declares each protocol's settings and rules).

A builder is called as ``build_units(exp, data, seeds, *, timing, one_program_per_arm,
worker_data)`` and returns the experiment's resumable units; every protocol emits the common
result table.
"""

from __future__ import annotations

from collections.abc import Callable

from dnnbench.definition import protocols
from dnnbench.run import plan, transfer

BUILDERS: dict[str, Callable] = {
    protocols.DEFAULT: plan.build_units,
    protocols.TRANSFER.name: transfer.build_file_units,
}
assert set(BUILDERS) == set(protocols.PROTOCOLS), "every declared protocol has its builder"


def build_units(exp, data, seeds, **kwargs):
    """The units of ``exp`` built by its protocol (keywords as for
    :func:`dnnbench.run.plan.build_units`)."""
    return BUILDERS[protocols.get(exp.protocol, exp.source).name](exp, data, seeds, **kwargs)
