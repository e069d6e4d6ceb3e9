"""Repeated, interleaved step timings: what a claim about the cost of a step needs.

The step time recorded with each unit (``step_ms`` of the runs table) is one measurement,
taken right after the unit trained, at whatever moment the machine was then in: two arms
compared on it were timed minutes apart, under other loads. An experiment with
``timing_rounds = R`` (a key of its file) also gets, once every unit has trained, a timing
pass: every program of the run is compiled (the persistent compile cache makes this cheap),
one warm-up round times each and is discarded, then R rounds time every program once each,
in the plan's order on even rounds and the reverse on odd ones. The programs compared by a
claim (BN on and off at one depth) are timed seconds apart in every round, so a slow phase
of the machine slows both; the rounds are the replicates of a paired comparison
(:func:`dnnbench.analysis.evaluators.interleaved_timing`).

The table (``<name>-<dataset>-timing.csv``): arm, round (0 .. R-1), position (the program's
place in that round), step_ms and eval_ms (the arm's share of its program's step and
evaluation, as in the runs table)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from dnnbench.definition.experiment import Experiment
from dnnbench.run.plan import plan, subset
from dnnbench.train.arm import compile_arm

COLUMNS = ("arm", "round", "position", "step_ms", "eval_ms")


def interleaved_timings(exp: Experiment, data, seeds: Sequence[int], rounds: int, *,
                        timing_steps: int = 100,
                        progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """``rounds`` interleaved timings of every program of ``exp`` (see the module)."""
    seeds = tuple(int(s) for s in seeds)
    compiled = []
    for prog in plan(exp, len(data.y_train)):
        task = subset(data, prog.arms[0].train_size)
        arm = compile_arm(prog.spec, task, seeds * len(prog.arms),
                          hps=prog.lane_values(len(seeds)))
        compiled.append((prog, arm))
    rows = []
    for r in range(-1, rounds):  # round -1: the warm-up, not kept
        order = compiled if r % 2 == 0 else compiled[::-1]
        if progress is not None and r >= 0:
            progress(f"timing round {r + 1} of {rounds}")
        for position, (prog, arm) in enumerate(order):
            step_ms, eval_ms = arm.time_steps(timing_steps=timing_steps)
            if r < 0:
                continue
            share = 1 / len(prog.arms)  # an arm's lanes: its seeds, as in the runs table
            rows += [{"arm": a.name, "round": r, "position": position,
                      "step_ms": step_ms * share, "eval_ms": eval_ms * share}
                     for a in prog.arms]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def with_interleaved_step_time(runs: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with step_ms, eval_ms and time_to_target_s from the median of the rounds (the
    one timing taken with each unit replaced): the time to target of every arm then rests on
    measurements taken under the same conditions."""
    med = timing.groupby("arm")[["step_ms", "eval_ms"]].median()
    runs = runs.copy()
    known = runs["arm"].isin(med.index)
    for col in ("step_ms", "eval_ms"):
        runs.loc[known, col] = runs.loc[known, "arm"].map(med[col])
    steps = pd.to_numeric(runs["steps_to_target"], errors="coerce")
    runs["time_to_target_s"] = steps * runs["step_ms"] / 1e3
    return runs
