"""Where the main job's wall time goes, warm and cold (issue 29): a breakdown by phase.

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/startup.py [--seeds 3]

The main job W1 is `dnnbench depth-sweep --depths 1,3,5,7 --seeds 3` on MNIST with the
protocol of `benchmarks/pytorch_baseline.py` (an evaluation every 10 steps, no interleaved
timing rounds: each program's step time from one timing). For a cold start (an empty XDG_CACHE_HOME: no compile cache, no kept programs,
no decoded data) and then a warm one (the caches the cold one filled), it measures, each in a
fresh process:

  * the whole command, as a user runs it (wall time of the process), `dnnbench --version` and
    `dnnbench list`;
  * the same command again in a process that runs it with a clock around each phase: imports
    (the CLI, JAX, the engine), data loading, each program's trace and compile (or the load of
    a kept program), the training calls (evaluations included), the step and evaluation
    timings after training, writing the result files; "other" is the rest (argument parsing,
    planning, summaries, claims).

Prints a table; the figures go into benchmarks/RESULTS.md. Numbers are this machine's: run it
on an otherwise idle machine (`uptime` below 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
W1 = ["depth-sweep", "--depths", "1,3,5,7", "--seeds", "{seeds}", "--eval-every", "10",
      "--timing-rounds", "0"]

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import dnnbench.cli as cli
t_cli = time.perf_counter() - t0
import jax  # the run path's imports (JAX, the engine) are counted where the command makes them
from dnnbench import data as data_mod
from dnnbench.results import io
from dnnbench.train import arm
clock = {"data_s": 0.0, "program_s": 0.0, "train_s": 0.0, "step_timing_s": 0.0, "write_s": 0.0}
t_imports = time.perf_counter() - t0


def timer(owner, name, phase):
    fn = getattr(owner, name)

    def wrapped(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            clock[phase] += time.perf_counter() - t
    setattr(owner, name, wrapped)


timer(data_mod, "load_dataset", "data_s")
timer(io, "write_results", "write_s")
timer(arm.CompiledArm, "_build", "program_s")
timer(arm.CompiledArm, "train", "train_s")
timer(arm.CompiledArm, "time_steps", "step_timing_s")
sys.argv = ["dnnbench", *sys.argv[1:]]
t = time.perf_counter()
try:
    cli.app()
except SystemExit as e:
    assert not e.code, e.code
clock["train_s"] -= clock["step_timing_s"]
clock["command_s"] = time.perf_counter() - t
clock["imports_s"] = t_imports
clock["cli_import_s"] = t_cli
print(json.dumps(clock))
"""


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    exe = [str(Path(sys.executable).with_name("dnnbench"))]
    w1 = [a.format(seeds=args.seeds) for a in W1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        env_phase = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache-phases")}
        for state in ("cold", "warm"):
            # the whole command as a user runs it; the cold one fills the caches for "warm"
            whole, _ = timed([*exe, *w1, "--out", str(Path(tmp) / "out"), "--fresh"], env, ROOT)
            version, _ = timed([*exe, "--version"], env, ROOT)
            listing, _ = timed([*exe, "list"], env, ROOT)
            # the same command again, instrumented, on caches in the same state
            _, stdout = timed([sys.executable, "-c", PHASES, *w1, "--out",
                               str(Path(tmp) / "out-phases"), "--fresh"], env_phase, ROOT)
            phases = json.loads(stdout.strip().splitlines()[-1])
            rows.append({"state": state, "whole_s": whole, "version_s": version,
                         "list_s": listing, **phases})
    print(f"W1 = dnnbench {' '.join(w1)} (MNIST), each in a fresh process; seconds")
    cols = ("whole_s", "version_s", "list_s", "imports_s", "data_s", "program_s", "train_s",
            "step_timing_s", "write_s")
    print(f"{'':6}" + "".join(f"{c[:-2]:>13}" for c in cols) + f"{'other':>13}")
    for r in rows:
        other = r["imports_s"] + r["command_s"] - sum(r[c] for c in cols[3:])
        print(f"{r['state']:6}" + "".join(f"{r[c]:13.2f}" for c in cols) + f"{other:13.2f}")
    print("imports: the CLI, JAX and the engine before the command; program: trace and compile,"
          " or load a kept program; train: the training calls (evaluations included); "
          "step_timing: the step and evaluation timings after training; other: the rest of the "
          "instrumented process (argument parsing, planning, summaries, claims)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
