"""What a run of an experiment would do, without training: its arms, lanes, compiled
programs and resumable units, and a lower estimate of the memory of its largest program
(:func:`dnnbench.limits.run_bytes`). ``dnnbench run FILE --dry-run`` prints it."""

from __future__ import annotations

import dataclasses

from dnnbench.definition import Experiment, protocols
from dnnbench.limits import run_bytes
from dnnbench.run import plan, transfer


@dataclasses.dataclass(frozen=True)
class DryRun:
    arms: int
    seeds: int
    lanes: int  # arms x seeds (with [tune], the sweeps' lanes too)
    programs: int  # compiled programs
    units: int  # resumable units
    largest: str  # the program with the most memory
    largest_bytes: int  # its lower memory estimate
    max_steps: int  # the longest budget of a program

    def lines(self) -> list[str]:
        mib = self.largest_bytes / 2**20
        return [(f"{self.arms} arms x {self.seeds} seeds = {self.lanes} lanes in "
                 f"{self.programs} compiled programs ({self.units} resumable units)"),
                (f"largest program: {self.largest}: at least {mib:,.1f} MiB; budget up to "
                 f"{self.max_steps:,} steps"),
                "time: not estimated (no step cost is kept for programs not yet run)",
                "nothing was trained or written"]


def dry_run(exp: Experiment, data, n_seeds: int, *, lanes_per_unit: int | None = None,
            one_program_per_arm: bool = False) -> DryRun:
    """The plan of ``exp`` on ``data`` with ``n_seeds`` seeds (ExperimentError, as a run
    would raise it, for an arm the data set cannot serve)."""
    layer_sizes = lambda spec: (data.n_features, *spec.widths, data.n_classes)
    if protocols.get(exp.protocol, exp.source).name == protocols.TRANSFER.name:
        groups = transfer.plan(exp, data, range(n_seeds))
        units = transfer.sources(groups)
        cfg = groups[0].cfg
        spec = transfer.spec_a(cfg, data)
        return DryRun(exp.n_arms, n_seeds, exp.n_arms * n_seeds,
                      transfer.program_count(groups), len(units),
                      f"model A of {units[0].label}", run_bytes(
                          lanes=n_seeds, layer_sizes=layer_sizes(spec),
                          batch_size=spec.batch_size, steps=spec.max_steps,
                          n_evals=spec.n_evals), spec.max_steps)
    programs = plan.plan(exp, len(data.y_train), one_program_per_arm=one_program_per_arm)
    parts = plan.split_lanes(programs, n_seeds, lanes_per_unit)
    sizes = [(run_bytes(lanes=len(p.arms) * n_seeds, layer_sizes=layer_sizes(p.spec),
                        batch_size=p.spec.batch_size, steps=p.spec.max_steps,
                        n_evals=p.spec.n_evals), p) for p in parts]
    top_bytes, top = max(sizes, key=lambda sp: sp[0])
    return DryRun(exp.n_arms, n_seeds, sum(len(p.arms) for p in programs) * n_seeds,
                  len(programs), len(parts), top.label, top_bytes,
                  max(p.spec.max_steps for p in programs))
