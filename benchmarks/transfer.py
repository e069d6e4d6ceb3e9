"""Transfer benchmark: wall time of `dnnbench transfer` vs the time its FLOPs take (by hand).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/transfer.py            # full
    uv run python benchmarks/transfer.py --tiny                                      # smoke

Measured in one run on this machine:
  * the fp32 matmul throughput (GFLOP/s; ``common.matmul_gflops``) before and after each
    command; the ratios use the higher of the two (the stricter choice: this machine's
    throughput varies from run to run);
  * the default protocol with 20 seeds on MNIST (`--dataset mnist --seeds 20`) and
    `--pairs all` with 20 seeds on digits, each as the real command in a subprocess with an
    empty persistent compilation cache: wall time, compile included;
  * their FLOPs, counted from the configuration the command wrote to its meta file and from
    the data: training = 6 x MACs per example x examples per step x steps x seeds, for A, B
    and B-on-A (the frozen phase computes full gradients, so it counts in full); evaluation
    (once per epoch on the validation split, once at the end on the test split) separately;
  * wall time / (training FLOPs / throughput) (target <= 2), and the same with evaluation.

``--tiny`` runs the same code on small settings (digits, 2 seeds, 1+1+1 epochs; and
``--quick --pairs all``: 3 pairs) to show that the script works; its ratios mean little
(compile time dominates runs of a few steps).
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

from dnnbench import definition
from dnnbench.cli.common import quick_subset
from dnnbench.data import load_dataset, tasks
from dnnbench.run import transfer as exp

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {  # name -> command-line arguments of `dnnbench transfer`
    "mnist default protocol, 20 seeds": ["--dataset", "mnist", "--seeds", "20"],
    "digits --pairs all, 20 seeds": ["--dataset", "digits", "--pairs", "all", "--seeds", "20"],
}
TINY = {
    "digits default pair, 2 seeds, 1+1+1 epochs": [
        "--dataset", "digits", "--seeds", "2", "--epochs-a", "1", "--freeze-epochs", "1",
        "--unfreeze-epochs", "1"],
    "digits --quick --pairs all (3 pairs, 3 seeds)": ["--dataset", "digits", "--quick",
                                                      "--pairs", "all"],
}


def configs_from_meta(meta: dict, data) -> list[exp.TransferConfig]:
    """The configuration of every class pair of a run, from the experiment its metadata
    records."""
    recorded = definition.parse(json.loads(meta["experiment_definition"]), "recorded definition")
    return [g.cfg for g in exp.plan(recorded, data, range(meta["config"]["seeds"]))]


def protocol_flops(cfgs: list[exp.TransferConfig], data) -> tuple[float, float]:
    """(training FLOPs, evaluation FLOPs) of every arm, pair and seed of ``cfgs``."""
    train = evaluate = 0.0
    for cfg, (pos, neg) in ((c, pair) for c in cfgs for pair in c.pairs):
        n_seeds, d = len(cfg.seeds), data.n_features
        task_a, task_b = tasks.split_tasks(data, pos, neg, cfg.train_size)
        for spec, task, copies in ((exp.spec_a(cfg, task_a), task_a, 1),
                                   (exp.spec_b(cfg, task_b), task_b, 2)):  # B and B-on-A
            n_out = 1 if spec.loss == "sigmoid" else task.n_classes
            steps = spec.n_evals * spec.eval_every
            train += copies * n_seeds * train_flops(d, cfg.widths, n_out, steps * spec.batch_size)
            examples = spec.n_evals * len(task.y_val) + len(task.y_test)
            evaluate += copies * n_seeds * eval_flops(d, cfg.widths, n_out, examples)
    return train, evaluate


def run_command(args: list[str], tmp: Path) -> tuple[float, Path, str]:
    """Run `dnnbench transfer ARGS` with an empty compile cache; (wall s, out folder, stdout)."""
    out = tmp / "out"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}
    cmd = [sys.executable, "-m", "dnnbench", "transfer", *args, "--out", str(out), "--fresh"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, check=False, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return wall, out, p.stdout


def scenario(name: str, args: list[str], gflops: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wall, out, stdout = run_command(args, Path(tmp))
        meta_path = next(out.glob("transfer-*-meta.json"))
        meta = json.loads(meta_path.read_text())
        runs_path = meta_path.with_name(meta_path.name.replace("-meta.json", "-runs.csv"))
        import pandas as pd

        runs = pd.read_csv(runs_path)
    data = load_dataset(meta["dataset"]["name"], download=False)
    if meta.get("quick"):
        data = quick_subset(data)
    if data.fingerprint != meta["dataset"]["fingerprint"]:
        raise SystemExit(f"{name}: the data loaded here differ from the command's; FLOPs "
                         "would be wrong")
    cfgs = configs_from_meta(meta, data)
    train, evaluate = protocol_flops(cfgs, data)
    after = matmul_gflops()
    print(f"\nfp32 matmul throughput: {gflops:.1f} GFLOP/s before, {after:.1f} after")
    gflops = max(gflops, after)
    per_program = runs.groupby(["pair", "stage"])["compile_s"].first()
    compile_s, n_programs = per_program.sum(), int((per_program > 0).sum())
    t_train = train / (gflops * 1e9)
    t_all = (train + evaluate) / (gflops * 1e9)
    print(f"\n[{name}] dnnbench transfer {' '.join(args)}")
    print(f"  {len(cfgs)} pair(s) x 3 arms x {len(cfgs[0].seeds)} seeds; wall {wall:.1f} s "
          f"(compile included: {compile_s:.1f} s in {n_programs} programs)")
    print(f"  training {train / 1e12:.3f} TFLOP -> {t_train:.1f} s at {gflops:.1f} GFLOP/s; "
          f"wall / FLOP time = {wall / t_train:.2f} (target <= 2)")
    print(f"  with evaluation {(train + evaluate) / 1e12:.3f} TFLOP -> {t_all:.1f} s; "
          f"wall / FLOP time = {wall / t_all:.2f}")
    for line in stdout.splitlines():
        if "B on A's layers" in line:  # the file's claim, checked on the run
            print(f"  {' '.join(line.replace('│', ' ').split())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="small settings that prove the script "
                    "works (seconds to minutes), not the benchmark")
    ap.add_argument("--only", choices=["mnist", "digits"], help="run one scenario only")
    args = ap.parse_args()
    import jax

    print(f"backend={jax.default_backend()} devices={jax.devices()} cpus={os.cpu_count()}")
    before = matmul_gflops()
    scenarios = TINY if args.tiny else SCENARIOS
    if args.only:
        scenarios = {k: v for k, v in scenarios.items() if k.startswith(args.only)}
    for name, cmd in scenarios.items():
        scenario(name, cmd, before)
        before = matmul_gflops()


if __name__ == "__main__":
    main()
