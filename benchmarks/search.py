"""A search of one structure three ways in one run: dnnbench as ONE compiled program (all
points x seeds as lanes), dnnbench with one program per point (measured on the first
``--alone`` points, extrapolated), and a plain PyTorch eager loop (likewise).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/search.py \
        --torch-python /tmp/torchenv/bin/python

The search (issue 20): 256 random points x 3 seeds of a 3x100 ReLU net (He-normal), Adam,
batch 128, one epoch of MNIST, validation accuracy at the end; the points draw the learning
rate (log-uniform in [1e-4, 10^-1.5]), beta1 and beta2 (1 - 10^r) and epsilon (log-uniform)
with the [search] sampler. Each dnnbench way runs as `dnnbench run` in a fresh process with
cold caches (an empty XDG_CACHE_HOME) and a fresh result folder: compile time is included.
Targets: one program >= 10x faster than one program per point and >= 3x faster than the
PyTorch loop. ``--points`` and ``--train-size`` shrink the search on a busy machine (say so
next to the figures). Prints the machine's load (`uptime`) before and after.
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

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_cold

HERE = Path(__file__).resolve().parent

FILE = """
name = "search-bench"
title = "search benchmark"
question = "What does one program for a search save?"
dataset = "mnist"
seeds = {seeds}
expected = "One compiled program for every point."
cost = "benchmarks/search.py"
[base]
widths = [100, 100, 100]
activation = "relu"
init = "he-normal"
optimizer = "adam"
batch_size = {batch}
epochs = 1
eval_every = "epoch"
eval_split = "val"
target = 0.0
stop_at_target = false
train_size = {train_size}
[search]
n = {points}
seed = 0
[search.params]
learning_rate = {{ scale = "log", low = -4, high = -1.5 }}
b1 = {{ scale = "one-minus-log", low = -2, high = -0.5 }}
b2 = {{ scale = "one-minus-log", low = -4, high = -1.5 }}
eps = {{ scale = "log", low = -8, high = -4 }}
"""


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True,
                          check=False).stdout.strip()


def dnnbench_way(tmp: Path, points: int, args, extra: list[str], label: str):
    path = tmp / f"search-{points}.toml"
    path.write_text(FILE.format(points=points, seeds=args.seeds, batch=args.batch,
                                train_size=args.train_size))
    out = tmp / f"out-{label.replace(' ', '-').replace(',', '')}"
    wall, runs, _meta = run_cold(path, out, extra, f"{label} ({points} points x {args.seeds} "
                                                   "seeds)")
    return wall, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--alone", type=int, default=16, help="points run one by one (and by "
                    "PyTorch), extrapolated to --points")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--train-size", type=int, default=0, help="first n training images "
                    "(0: all 55,000)")
    ap.add_argument("--torch-python", help="a Python with torch (skipped when not given)")
    args = ap.parse_args()
    print(f"load before: {load()}", flush=True)
    scale = args.points / args.alone
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        one, runs = dnnbench_way(tmp, args.points, args, [], "dnnbench, one program")
        alone, runs_alone = dnnbench_way(tmp, args.alone, args, ["--one-program-per-arm"],
                                         "dnnbench, one program per point")
    key = ["learning_rate", "b1", "b2", "eps"]
    a = runs.groupby("point")["final_eval_accuracy"].mean()
    b = runs_alone.groupby("point")["final_eval_accuracy"].mean()
    diff = (a.reindex(b.index) - b).abs()
    print(f"one program vs one per point (the same {len(b)} points): |mean final val "
          f"accuracy difference| median {diff.median():.5f}, max {diff.max():.5f}")
    print(f"one per point, extrapolated to {args.points} points: {alone * scale:.1f} s; "
          f"speed-up of one program: {alone * scale / one:.2f}x (target >= 10x)", flush=True)
    if args.torch_python:
        first = runs_alone.groupby("point")[key].first().reset_index(drop=True)
        spec = {"points": first.to_dict("records"), "seeds": args.seeds,
                "batch": args.batch, "train_size": args.train_size, "epochs": 1}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        t0 = time.perf_counter()
        done = subprocess.run([args.torch_python, str(HERE / "search_torch.py"), f.name],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        os.unlink(f.name)
        if done.returncode != 0:
            sys.exit(f"PyTorch loop failed:\n{done.stderr[-2000:]}")
        lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
        info = lines[-1]
        per_run = info["runs_s"] / info["runs"]
        total = info["load_s"] + per_run * args.points * args.seeds
        torch_acc = pd.Series([sum(r["final_eval_accuracy"]) / len(r["final_eval_accuracy"])
                               for r in lines[:-1]])
        print(f"PyTorch eager loop: {wall:.1f} s wall for {args.alone} points x {args.seeds} "
              f"seeds ({per_run:.2f} s a run, load {info['load_s']:.1f} s; torch "
              f"{info['torch']}, {info['threads']} threads); extrapolated {total:.1f} s; mean "
              f"val accuracy {torch_acc.mean():.4f} vs dnnbench's {b.mean():.4f} on the same "
              f"points (other random streams)")
        print(f"speed-up of one program over the PyTorch loop: {total / one:.2f}x "
              "(target >= 3x)")
    print(f"load after: {load()}", flush=True)


if __name__ == "__main__":
    main()
