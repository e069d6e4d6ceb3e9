"""Where the main job's wall time goes, warm and cold (issue 29): a breakdown by phase.

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/startup.py [--seeds 3]

The main job W1 is `dnnbench depth-sweep --depths 1,3,5,7 --seeds 3` on MNIST with the
protocol of `benchmarks/pytorch_baseline.py` (an evaluation every 10 steps, no interleaved
timing rounds). For a cold start (an empty XDG_CACHE_HOME: no compile cache, no kept programs,
no decoded data) and then a warm one (the caches the cold one filled), it measures, each in a
fresh process:

  * the whole command, as a user runs it (wall time of the process);
  * `python -c "import dnnbench.cli"` and `dnnbench --version` (interpreter and imports);
  * inside one process that replays the command's steps with a clock around each: imports of
    the run path (JAX and the engine), data loading, program compile (or load of a kept
    program) per unit, training and evaluation per unit (the recorded step and evaluation
    times separate them), and writing the result files.

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
from dnnbench.cli.run import execute  # noqa: F401  (the run path's imports: JAX, the engine)
from dnnbench.data import load_dataset
from dnnbench.definition import depth_sweep
from dnnbench.results import io
from dnnbench.run import plan
import pandas as pd
t_imports = time.perf_counter() - t0
t = time.perf_counter()
data = load_dataset("mnist", download=False)
t_data = time.perf_counter() - t
exp = depth_sweep.experiment(depths=(1, 3, 5, 7), seeds=int(sys.argv[1]), eval_every=10)
units = plan.build_units(exp, data, range(exp.seeds), timing=True)
compile_s = train_s = 0.0
frames = []
for u in units:
    t = time.perf_counter()
    if u.prepare is not None:  # (compiled inside compute where units are not compiled ahead)
        u.prepare()  # trace and compile, or load the kept program
    compile_s += time.perf_counter() - t
    t = time.perf_counter()
    frames.append(u.compute())  # train and evaluate (and time a step), then the tables
    train_s += time.perf_counter() - t
t = time.perf_counter()
runs = pd.concat([f[0] for f in frames], ignore_index=True)
curves = pd.concat([f[1] for f in frames], ignore_index=True)
io.write_results(sys.argv[2], exp.name, data, runs, curves, {})
t_write = time.perf_counter() - t
print(json.dumps({"imports_s": t_imports, "data_s": t_data, "compile_or_load_s": compile_s,
                  "train_and_eval_s": train_s, "write_s": t_write, "units": len(units)}))
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
    args = ap.parse_args()
    exe = [str(Path(sys.executable).with_name("dnnbench"))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        for state in ("cold", "warm"):
            out = Path(tmp) / f"out-{state}"
            cmd = [*exe, *(a.format(seeds=args.seeds) for a in W1), "--out", str(out)]
            if state == "cold":  # the whole command first: it fills the caches for "warm"
                whole, _ = timed(cmd, env, ROOT)
            else:
                whole, _ = timed([*cmd, "--fresh"], env, ROOT)
            imports, _ = timed([sys.executable, "-c", "import dnnbench.cli"], env, ROOT)
            version, _ = timed([*exe, "--version"], env, ROOT)
            if state == "cold":  # the phases on cold caches again
                env_phase = {**env, "XDG_CACHE_HOME": str(Path(tmp) / "cache-phases")}
            else:
                env_phase = env
            (Path(tmp) / f"ph-{state}").mkdir()
            _, stdout = timed([sys.executable, "-c", PHASES, str(args.seeds),
                               str(Path(tmp) / f"ph-{state}")], env_phase, ROOT)
            phases = json.loads(stdout.strip().splitlines()[-1])
            rows.append((state, whole, imports, version, phases))
    print(f"W1 = dnnbench {' '.join(W1).format(seeds=args.seeds)} (MNIST), each in a fresh "
          "process")
    print(f"{'':6} {'whole':>7} {'import':>7} {'--version':>9} | {'imports*':>8} {'data':>6} "
          f"{'compile':>8} {'train+eval':>10} {'write':>6}  (s; * the run path's, in-process)")
    for state, whole, imports, version, p in rows:
        print(f"{state:6} {whole:7.1f} {imports:7.2f} {version:9.2f} | {p['imports_s']:8.2f} "
              f"{p['data_s']:6.2f} {p['compile_or_load_s']:8.2f} {p['train_and_eval_s']:10.2f} "
              f"{p['write_s']:6.2f}  ({p['units']} units)")


if __name__ == "__main__":
    main()
