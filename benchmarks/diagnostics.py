"""What the per-layer diagnostics cost: the same arm compiled with and without them, run side by
side (alternating, best of ``--repeats``) in one process.

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/diagnostics.py

The arm: 10 hidden layers of 100 ReLU units (init-activation's net), SGD with momentum, batch
32, MNIST, 5 seeds, 1,000 steps, evaluation on the validation split every 100 steps. Reports
the compile time, the whole run's wall time (10 evaluations, plus the step-0 diagnosis), the
steady-state time of one training step and of one evaluation (``CompiledArm`` timing: the same
executables), and the diagnostics' cost per training step: the difference of the run times
over the steps. Diagnostics are computed at evaluations only, so a step without an evaluation
costs the same.
"""

from __future__ import annotations

import argparse
import os
import time

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train.arm import compile_arm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    data = load_dataset("mnist")
    spec = RunSpec(widths=(100,) * 10, activation="relu", optimizer="momentum",
                   learning_rate=0.01, batch_size=32, max_steps=args.steps, eval_every=100,
                   eval_split="val", target=0.0, stop_at_target=False)
    seeds = range(5)
    arms = {}
    for label, s in (("without", spec), ("with", spec.replace(diagnostics=True))):
        t0 = time.perf_counter()
        arms[label] = compile_arm(s, data, seeds)
        arms[label].compile_wall = time.perf_counter() - t0
    best = {k: float("inf") for k in arms}
    timing = {}
    for _ in range(args.repeats):
        for label, arm in arms.items():
            result = arm.train(timing=True)
            best[label] = min(best[label], result.timing.run_s)
            timing[label] = result.timing
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; 5 seeds, {args.steps} "
          f"steps, 10 evaluations")
    for label, arm in arms.items():
        t = timing[label]
        print(f"{label:>8} diagnostics: compile {arm.compile_wall:6.1f} s, run {best[label]:6.2f} s"
              f" (best of {args.repeats}), step {t.step_ms:6.2f} ms, evaluation "
              f"{t.eval_ms:7.1f} ms")
    extra = best["with"] - best["without"]
    print(f"diagnostics: {extra:+.2f} s per run = {extra / args.steps * 1e3:+.3f} ms per "
          f"training step ({extra / best['without']:+.1%} of the run)")


if __name__ == "__main__":
    main()
