"""Engine performance profile (run by hand, results go into the closing note / README).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/engine.py [--skip-e2e]
        [--torch-python /tmp/torchenv/bin/python]

Prints, measured in one run on this machine:
  * fp32 matmul throughput (GFLOP/s), the machine's practical limit;
  * training-step throughput of the depth-7 tapered net at batch 500 as a fraction of it;
  * per-seed cost with 1, 4 and 16 vmapped seeds for a 3x100 net at batch 32;
  * one seed of the 3x100/batch-32 net as a fraction of the matmul throughput;
  * evaluation throughput vs training throughput (examples/s);
  * compile time per arm (trace, lower, compile), cold (empty persistent cache and no kept
    programs) and warm (both filled by the cold run; a warm arm loads its kept program
    instead of tracing it): the first arm of a process, then a depth-7 arm without and with
    BN after it;
  * end to end `dnnbench depth-sweep --depths 1,3,5,7 --seeds 3` wall time, cold and warm,
    and its peak RSS; with --torch-python, the same 24 runs as a plain PyTorch eager loop
    (benchmarks/pytorch_baseline.py, run by that interpreter: torch is no dependency).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import matmul_gflops, peak_rss_mib, train_flops

from dnnbench.data import DataError, load_dataset
from dnnbench.spec import TAPERED_WIDTHS, RunSpec
from dnnbench.train.arm import train_arm

ROOT = Path(__file__).resolve().parent.parent


def data():
    try:
        return load_dataset("mnist", download=False)
    except DataError:
        print("(MNIST not found: using synthetic data with 784 features)")
        return load_dataset("synthetic", n_train=55000, n_val=5000, n_test=10000, n_features=784)


def step_gflops(spec: RunSpec, ds, seeds: int) -> tuple[float, float, float]:
    """(GFLOP/s of training, ms per step of all seeds, eval ms) for ``seeds`` vmapped seeds."""
    spec = spec.replace(max_steps=max(spec.eval_every * 20, 200), target=0.0,
                        stop_at_target=False)
    res = train_arm(spec, ds, list(range(seeds)), timing=True, timing_steps=400)
    flops = train_flops(ds.n_features, spec.widths, ds.n_classes, spec.batch_size) * seeds
    return flops / (res.timing.step_ms / 1e3) / 1e9, res.timing.step_ms, res.timing.eval_ms


# A sweep's arms in one process, as `dnnbench depth-sweep` compiles them: the first arm also
# pays what a process compiles once (JAX's start, the programs every arm shares: data orders,
# initial draws); the depth-7 arms after it show the cost of one more arm.
COMPILE_SNIPPET = """
import sys
from dnnbench.data import load_dataset
from dnnbench.spec import TAPERED_WIDTHS, RunSpec
from dnnbench.train.arm import compile_arm, enable_compile_cache
enable_compile_cache(sys.argv[1] + "/jax")  # kept programs go beside it, in <dir>/programs
ds = load_dataset("synthetic", n_train=5000, n_val=500, n_test=1000, n_features=784)
for depth, norm in ((1, "none"), (7, "none"), (7, "batch")):
    spec = RunSpec(widths=TAPERED_WIDTHS[:depth], norm=norm, bn_logits=norm == "batch",
                   max_steps=100, eval_every=10)
    print(depth, norm, compile_arm(spec, ds, range(5)).compile_s)
"""


def compile_times() -> dict[tuple[int, str], tuple[float, float]]:
    """{(depth, norm): (cold s, warm s)}: an empty persistent cache, then the same again."""
    out: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            p = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET, cache],
                               capture_output=True, text=True, check=True, cwd=ROOT)
            for line in p.stdout.strip().splitlines():
                depth, norm, seconds = line.split()
                out.setdefault((int(depth), norm), []).append(float(seconds))
    return {k: (v[0], v[1]) for k, v in out.items()}


def end_to_end() -> list[tuple[str, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        for label in ("cold", "warm"):
            out = Path(tmp) / f"out-{label}"
            cmd = [sys.executable, "-m", "dnnbench", "depth-sweep", "--depths", "1,3,5,7",
                   "--seeds", "3", "--out", str(out)]
            t0 = time.perf_counter()
            before = peak_rss_mib(children=True)
            subprocess.run(cmd, env=env, check=True, cwd=ROOT, capture_output=True)
            rows.append((label, time.perf_counter() - t0, max(peak_rss_mib(children=True),
                                                              before)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end sweep")
    ap.add_argument("--skip-compile", action="store_true", help="skip cold/warm compile")
    ap.add_argument("--torch-python", help="a Python with torch: also time the PyTorch loop")
    args = ap.parse_args()
    from dnnbench.train.arm import enable_compile_cache

    enable_compile_cache(tempfile.mkdtemp())
    import jax

    print(f"backend={jax.default_backend()} devices={jax.devices()} cpus={os.cpu_count()}")
    peak = matmul_gflops()
    print(f"fp32 matmul throughput: {peak:.1f} GFLOP/s (1024x1024, jitted)")
    ds = data()

    deep = RunSpec(widths=TAPERED_WIDTHS, batch_size=500, eval_every=10)
    g, ms, ev = step_gflops(deep, ds, 1)
    print(f"depth-7 tapered, batch 500, 1 seed: {ms:.2f} ms/step = {g:.1f} GFLOP/s "
          f"= {g / peak:.0%} of matmul (target >= 60%)")
    train_eps = 500 / (ms / 1e3)
    eval_eps = len(ds.y_test) / (ev / 1e3)
    print(f"  training {train_eps:,.0f} examples/s, evaluation {eval_eps:,.0f} examples/s "
          f"= {eval_eps / train_eps:.1f}x (target >= 2.5x)")

    small = RunSpec(widths=(100, 100, 100), batch_size=32, eval_every=100, optimizer="sgd",
                    learning_rate=1e-3)
    base = None
    from dnnbench.train.devices import seed_shards

    for s in (1, 4, 16):
        g, ms, _ = step_gflops(small, ds, s)
        shards = seed_shards(s, train_flops(ds.n_features, small.widths, ds.n_classes, 32))
        per_seed = ms / s
        base = base or per_seed
        extra = f" = {g / peak:.0%} of matmul (target >= 40%)" if s == 1 else ""
        print(f"3x100, batch 32, {s:2d} seeds on {shards} device(s): {ms:.3f} ms/step, "
              f"{per_seed:.3f} ms per seed-step ({per_seed / base:.2f}x of 1 seed; target at 16: "
              f"<= 0.8x), {g:.1f} GFLOP/s{extra}")

    if not args.skip_compile:
        for (depth, norm), (cold, warm) in compile_times().items():
            what = ("first arm of the process" if depth == 1 else
                    "next arm, target cold <= 5 s, warm <= 1 s")
            print(f"compile depth-{depth} arm (bn={norm}, 5 seeds; {what}): cold {cold:.2f} s, "
                  f"warm {warm:.2f} s")
    if not args.skip_e2e:
        for label, wall, rss in end_to_end():
            print(f"depth-sweep --depths 1,3,5,7 --seeds 3 ({label} compile cache): "
                  f"{wall:.1f} s wall, peak RSS {rss:.0f} MiB")
    if args.torch_python:
        t0 = time.perf_counter()
        p = subprocess.run([args.torch_python, str(ROOT / "benchmarks" / "pytorch_baseline.py")],
                           capture_output=True, text=True, check=True, cwd=ROOT)
        print(f"PyTorch eager loop, the same 24 runs: {time.perf_counter() - t0:.1f} s wall "
              f"(process); it reports: {p.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
