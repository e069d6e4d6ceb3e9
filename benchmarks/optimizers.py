"""Optimizer-comparison performance profile (a script run by hand, not a test).

    DNNBENCH_DATA_DIR=/work/shared/data uv run python benchmarks/optimizers.py
    uv run python benchmarks/optimizers.py --dataset digits --epochs 1 --seeds 2   # smoke run

Runs the default protocol of ``dnnbench optimizers`` (9 optimizers x 5 seeds x 10 epochs at
batch 32, 3x100 ReLU MLP, validation every epoch) exactly as the command builds it, with an
empty compilation cache, and prints, all measured in this one run:

  * fp32 matmul throughput (GFLOP/s; jitted 1024x1024 matmul, before and after the protocol;
    the higher of the two is used, which makes the target harder, not easier);
  * the protocol's training FLOPs (forward + backward = 3 x 2 x sum(in x out) per example,
    x batch x steps x seeds) and their time at that throughput; evaluation FLOPs separately;
  * the protocol's wall time (compile, evaluation and step timing included) and its ratio to
    the training-FLOP time (issue 4 target: <= 2);
  * per optimizer: compile time, run time, step-timing overhead, ms per step of all seeds and
    steps per second (vmapped steps, and seed-steps).

``matmul_gflops`` is re-exported here (it lives in ``benchmarks/common.py``) so that other
benchmark scripts may import it from either module.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import eval_flops, matmul_gflops, peak_rss_mib, train_flops

__all__ = ["main", "matmul_gflops"]


def main(argv=None) -> None:
    import argparse
    import json
    import os
    import tempfile
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist", help="data set (default mnist; reads "
                    "DNNBENCH_DATA_DIR or --data-dir)")
    ap.add_argument("--data-dir", default=None, help="folder holding mnist/")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--optimizer", action="append", help="repeatable; default: all nine")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    import jax
    import pandas as pd
    from rich.console import Console

    from dnnbench.data import load_dataset
    from dnnbench.experiments import optimizers as exp
    from dnnbench.registry import OPTIMIZERS
    from dnnbench.report.optimizers import optimizers_table
    from dnnbench.train.arm import enable_compile_cache, train_arm

    enable_compile_cache(tempfile.mkdtemp(prefix="dnnbench-bench-jax-"))  # cold: compile counts
    print(f"backend={jax.default_backend()} devices={jax.devices()} cpus={os.cpu_count()}")
    gflops_before = matmul_gflops()
    print(f"fp32 matmul throughput (before): {gflops_before:.1f} GFLOP/s")

    data = load_dataset(args.dataset, data_dir=args.data_dir, download=False)
    n_train = len(data.y_train)
    cfg = exp.OptimizersConfig(optimizers=tuple(args.optimizer or OPTIMIZERS),
                               epochs=args.epochs, batch_size=args.batch_size,
                               seeds=tuple(range(args.seeds)))
    max_steps, every = cfg.max_steps(n_train), cfg.eval_every_steps(n_train)
    n_evals = max_steps // every
    print(f"protocol: {data.name} ({n_train} train, {len(data.y_val)} val), "
          f"{len(cfg.optimizers)} optimizers x {args.seeds} seeds x {args.epochs} epochs = "
          f"{max_steps} steps at batch {args.batch_size}, eval every {every} steps")

    rows, frames = [], []
    t_all = time.perf_counter()
    for arm in exp.build_arms(cfg, n_train):  # the command's own arms and specs
        t0 = time.perf_counter()
        res = train_arm(arm.spec, data, cfg.seeds)
        wall = time.perf_counter() - t0
        tm = res.timing
        frames.append(exp.raw_frames(cfg, data, arm.spec, arm.name, "default", res, cfg.seeds,
                                     [arm.spec.learning_rate] * len(cfg.seeds)))
        rows.append({"optimizer": arm.spec.optimizer, "wall_s": wall, "compile_s": tm.compile_s,
                     "run_s": tm.run_s, "timing_s": wall - tm.compile_s - tm.run_s,
                     "step_ms": tm.step_ms, "eval_ms": tm.eval_ms,
                     "steps_per_s": 1e3 / tm.step_ms if tm.step_ms > 0 else float("nan"),
                     "run_steps_per_s": max_steps / tm.run_s})
        r = rows[-1]
        print(f"  {r['optimizer']:9s} wall {wall:7.1f} s = compile {tm.compile_s:5.1f} + run "
              f"{tm.run_s:7.1f} + step timing {r['timing_s']:6.1f}; {tm.step_ms:.3f} ms/step "
              f"= {r['steps_per_s']:,.0f} steps/s ({r['steps_per_s'] * args.seeds:,.0f} "
              f"seed-steps/s); eval {tm.eval_ms:.1f} ms", flush=True)
    wall = time.perf_counter() - t_all
    gflops_after = matmul_gflops()
    gflops = max(gflops_before, gflops_after)

    n_opt, seeds = len(cfg.optimizers), args.seeds
    widths = cfg.widths
    train = train_flops(data.n_features, widths, data.n_classes,
                        args.batch_size * max_steps * seeds) * n_opt
    evals = eval_flops(data.n_features, widths, data.n_classes,
                       (len(data.y_val) * n_evals + len(data.y_test)) * seeds) * n_opt
    flop_s = train / (gflops * 1e9)
    per = pd.DataFrame(rows)
    print(f"fp32 matmul throughput (after): {gflops_after:.1f} GFLOP/s; used: {gflops:.1f}")
    print(f"training FLOPs: {train / 1e12:.3f} TFLOP -> {flop_s:.1f} s at {gflops:.1f} GFLOP/s; "
          f"evaluation FLOPs: {evals / 1e12:.3f} TFLOP -> {evals / (gflops * 1e9):.1f} s")
    print(f"wall time of the protocol: {wall:.1f} s (compile {per['compile_s'].sum():.1f} s, "
          f"run {per['run_s'].sum():.1f} s, step timing {per['timing_s'].sum():.1f} s)")
    print(f"wall / training-FLOP time: {wall / flop_s:.2f} (target <= 2); "
          f"run only: {per['run_s'].sum() / flop_s:.2f}; peak RSS {peak_rss_mib():.0f} MiB")

    runs, _curves, info = exp.finalize(cfg, pd.concat([f[0] for f in frames], ignore_index=True),
                                      pd.concat([f[1] for f in frames], ignore_index=True))
    Console(width=160).print(optimizers_table(
        exp.summarize(runs), data.name, info["target"], info["target_kind"], epochs=args.epochs,
        batch_size=args.batch_size, target_fraction=cfg.target_fraction))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "dataset": data.name, "optimizers": list(cfg.optimizers), "seeds": seeds,
            "epochs": args.epochs, "batch_size": args.batch_size, "max_steps": max_steps,
            "matmul_gflops": [gflops_before, gflops_after], "train_flops": train,
            "eval_flops": evals, "train_flop_time_s": flop_s, "wall_s": wall,
            "ratio": wall / flop_s, "per_optimizer": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
