"""What progress inside a unit costs (issue 31: under 2% of a unit's time).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/progress.py [--repeats 5]

A unit that trains with progress runs its program in calls of about four seconds (the loop's
carry handed from call to call, see ``engine.Program.segment_seeds``) instead of one call.
For two arms on MNIST, compiled once each, the same training is timed both ways, alternating
(one call, segments, one call, ...) so that a slow phase of the machine slows both alike:

  * "small": 3x100 ReLU, Adam, batch 32, 5 seeds, 3,000 steps, validation every 50 steps
    (60 evaluation periods; the runs never stop early);
  * "many lanes": the same net with 60 lanes (20 learning rates x 3 seeds), 1,000 steps,
    validation every 25 steps: a carry of 60 states (parameters and Adam's moments) handed
    over at every call.

Prints the median wall time of each way, the number of calls, and the overhead. Run it on an
otherwise idle machine (`uptime` below 1.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train.arm import compile_arm

SPEC = RunSpec(widths=(100, 100, 100), optimizer="adam", learning_rate=1e-3, batch_size=32,
               max_steps=3000, eval_every=50, target=0.0, stop_at_target=False,
               eval_split="val")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small-only", action="store_true", help="only the 5-lane case")
    args = ap.parse_args()
    data = load_dataset("mnist", download=False)
    many = dataclasses.replace(SPEC, max_steps=1000, eval_every=25)
    cases = {"small (5 lanes)": (SPEC, list(range(5)), None),
             "many lanes (60)": (many, [s for _ in range(20) for s in range(3)],
                                 {"learning_rate": np.repeat(np.geomspace(1e-4, 1e-2, 20), 3)})}
    if args.small_only:
        cases = dict(list(cases.items())[:1])
    for name, (spec, seeds, hps) in cases.items():
        arm = compile_arm(spec, data, seeds, hps=hps)
        arm.train(timing=False)  # warm: the executable loaded and run once
        calls: list[int] = []
        times = {"one call": [], "segments": []}
        for _ in range(args.repeats):
            for way, took in times.items():
                seen: list[int] = []
                t = time.perf_counter()
                arm.train(timing=False, progress=None if way == "one call" else
                          lambda i, n, seen=seen: seen.append(i))
                took.append(time.perf_counter() - t)
                if way == "segments":
                    calls.append(len(seen))
        one, seg = (statistics.median(times[w]) for w in times)
        print(f"{name}: one call {one:.2f} s, segments {seg:.2f} s ({statistics.median(calls):.0f}"
              f" calls), overhead {100 * (seg / one - 1):+.1f}% (each way's times: "
              f"{', '.join(f'{t:.2f}' for t in times['one call'])} | "
              f"{', '.join(f'{t:.2f}' for t in times['segments'])})", flush=True)


if __name__ == "__main__":
    main()
