"""Optimizer-comparison performance profile (a script run by hand, not a test).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/optimizers.py
    uv run python benchmarks/optimizers.py --dataset digits --epochs 1 --seeds 2   # smoke run

Runs the real command, ``dnnbench optimizers`` with its default protocol (9 optimizers x 5
seeds x 10 epochs at batch 32, 3x100 ReLU MLP, validation every epoch), in a subprocess with an
empty compilation cache, and prints, all measured in this one run:

  * fp32 matmul throughput (GFLOP/s; ``common.matmul_gflops``) before and after the command;
    the higher of the two is used, which makes the target harder, not easier;
  * the protocol's training FLOPs (forward + backward = 3 x 2 x sum(in x out) per example,
    x batch x steps x seeds) and their time at that throughput; evaluation FLOPs separately;
  * the command's wall time (start-up, compile, evaluation and step timing included) and its
    ratio to the training-FLOP time (issue 4 target: <= 2);
  * per optimizer, from the command's own CSV: compile time, ms per step of all seeds, and
    steps per second (steps of all seeds, and seed-steps).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import eval_flops, matmul_gflops, train_flops

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist", help="data set (default mnist; reads "
                    "DNNBENCH_DATA_DIR)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    import jax
    import pandas as pd

    from dnnbench.data import load_dataset

    print(f"backend={jax.default_backend()} devices={jax.devices()} cpus={os.cpu_count()}")
    before = matmul_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "dnnbench", "optimizers", "--dataset", args.dataset,
               "--epochs", str(args.epochs), "--seeds", str(args.seeds), "--out", str(out)]
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}  # cold compile
        t0 = time.perf_counter()
        p = subprocess.run(cmd, check=False, env=env, cwd=ROOT, capture_output=True,
                           text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        runs = pd.read_csv(next(out.glob("optimizers-*-runs.csv")))
        meta = json.loads(next(out.glob("optimizers-*-meta.json")).read_text())
    after = matmul_gflops()
    gflops = max(before, after)

    data = load_dataset(args.dataset, download=False)
    # the protocol as the command's CSV records it (one row per arm and seed)
    first = runs.iloc[0]
    max_steps, every = int(first["max_steps"]), int(first["eval_every"])
    widths = tuple(int(w) for w in str(first["widths"]).split("-"))
    batch_size = int(first["batch_size"])
    n_opt = runs["optimizer"].nunique()
    train = train_flops(data.n_features, widths, data.n_classes,
                        batch_size * max_steps * args.seeds) * n_opt
    evals = eval_flops(data.n_features, widths, data.n_classes,
                       (len(data.y_val) * (max_steps // every) + len(data.y_test))
                       * args.seeds) * n_opt
    flop_s = train / (gflops * 1e9)

    print(f"command: {' '.join(cmd[2:])} (empty compile cache)")
    print(f"protocol: {data.name}, {n_opt} optimizers x {args.seeds} seeds x {args.epochs} "
          f"epochs = {max_steps} steps at batch {batch_size}, eval every {every} steps")
    per = runs.groupby("optimizer", sort=False)[["compile_s", "step_ms", "eval_ms"]].first()
    for name, r in per.iterrows():
        sps = 1e3 / r["step_ms"]
        print(f"  {name:9s} compile {r['compile_s']:5.1f} s; {r['step_ms']:.3f} ms/step = "
              f"{sps:,.0f} steps/s ({sps * args.seeds:,.0f} seed-steps/s); eval "
              f"{r['eval_ms']:.1f} ms")
    print(f"fp32 matmul throughput: {before:.1f} GFLOP/s before, {after:.1f} after; used "
          f"{gflops:.1f}")
    print(f"training FLOPs: {train / 1e12:.3f} TFLOP -> {flop_s:.1f} s; evaluation FLOPs: "
          f"{evals / 1e12:.3f} TFLOP -> {evals / (gflops * 1e9):.1f} s")
    print(f"wall time of the command: {wall:.1f} s (compile {per['compile_s'].sum():.1f} s "
          f"summed over the arms)")
    print(f"wall / training-FLOP time: {wall / flop_s:.2f} (target <= 2)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": meta["command"], "wall_s": wall, "matmul_gflops": [before, after],
            "train_flops": train, "eval_flops": evals, "train_flop_time_s": flop_s,
            "ratio": wall / flop_s, "per_optimizer": per.reset_index().to_dict("records")},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
