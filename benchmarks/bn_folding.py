"""BN folding (issue 17): the folded model's logits against the original's, and the jitted
inference latency of both at batch 1 and 1,000 (run by hand; results go into RESULTS.md).

    DNNBENCH_DATA_DIR=../shared/data uv run python benchmarks/bn_folding.py [--steps 300]

Two trained nets (seed 0, MNIST; synthetic data of MNIST's shape without it):
  * depth sweep: tapered 500-400-300-200-100 ReLU, BN before every activation and on the
    logits, Adam at 0.01, batch 500;
  * Keras: the BN tutorial's model, BN on the inputs, Dense 300 and 100 ELU each followed by
    BN, Adam at 0.01, batch 32.
Each is trained ``--steps`` steps, folded (models/fold.py: W' = a W, b' = a b + c with
a = gamma / sqrt(var + eps), c = beta - a mean), and both are evaluated on the 10,000 test
images: the largest absolute logit difference, against the tolerance 1e-5 x the largest
|logit| (float32 rounding: the folded product rounds a W instead of the product's result),
and the predictions that differ. Latency: ``jax.jit(model.apply)`` of each (the original in
evaluation mode: running averages), warmed up, then timed interleaved (original, folded,
original, ...) so that a loaded machine slows both alike; the median and quartiles of
``--repeats`` calls, ``block_until_ready`` after each. The load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from dnnbench.data import DataError, load_dataset
from dnnbench.models.fold import fold_batch_norm
from dnnbench.models.mlp import build_model
from dnnbench.spec import TAPERED_WIDTHS, RunSpec
from dnnbench.train.engine import make_program, to_device

NETS = {
    "depth sweep (5 x tapered, BN before ReLU + logits)": RunSpec(
        widths=TAPERED_WIDTHS[:5], norm="batch", bn_logits=True, optimizer="adam",
        learning_rate=0.01, batch_size=500),
    "Keras (BN inputs, 300-100 ELU, BN after)": RunSpec(
        widths=(300, 100), activation="elu", init="he-normal", norm="batch",
        norm_position="after", input_norm=True, optimizer="adam", learning_rate=0.01,
        batch_size=32),
}
TOLERANCE = 1e-5  # of the largest |logit|


def data():
    try:
        return load_dataset("mnist", download=False)
    except DataError:
        print("(MNIST not found: synthetic data with 784 features)")
        return load_dataset("synthetic", n_train=55000, n_val=5000, n_test=10000,
                            n_features=784)


def trained(spec: RunSpec, ds, steps: int) -> dict:
    program = make_program(spec, ds.n_classes, len(ds.y_train))
    dev = to_device(ds, spec)
    hp = {"learning_rate": jnp.float32(spec.learning_rate)}
    state = program.init(jax.random.PRNGKey(0), hp, dev)
    state, _ = jax.jit(program.train_chunk, static_argnums=4)(state, 0, hp, dev, steps)
    return {"params": state.params, "batch_stats": state.batch_stats}


def latency_ms(fns: dict, x, repeats: int) -> dict:
    """Median and quartiles (ms) of each jitted function on ``x``, timed interleaved."""
    for f in fns.values():
        for _ in range(20):  # warm-up: compile, caches
            f(x).block_until_ready()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f(x).block_until_ready()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: np.percentile(v, [25, 50, 75]) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps of each net")
    ap.add_argument("--repeats", type=int, default=300, help="timed calls per batch size")
    args = ap.parse_args()
    ds = data()
    x_test = jnp.asarray(ds.x_test)
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores shared with other work)")
    for name, spec in NETS.items():
        variables = trained(spec, ds, args.steps)
        model = build_model(spec, ds.n_classes)
        plain, folded = fold_batch_norm(model, variables)
        original = jax.jit(lambda x, m=model, v=variables: m.apply(v, x, train=False))
        fast = jax.jit(lambda x, m=plain, v=folded: m.apply(v, x))
        a, b = np.asarray(original(x_test)), np.asarray(fast(x_test))
        diff = float(np.abs(a - b).max())
        tol = TOLERANCE * float(np.abs(a).max())
        flips = int(np.sum(a.argmax(-1) != b.argmax(-1)))
        acc = float(np.mean(a.argmax(-1) == ds.y_test))
        print(f"\n{name}: {args.steps} steps, test accuracy {acc:.4f}")
        print(f"  max |logit difference| {diff:.3g} (largest |logit| {np.abs(a).max():.3g}; "
              f"tolerance {tol:.3g}: {'within' if diff <= tol else 'EXCEEDED'}); "
              f"predictions that differ: {flips} of {len(a)}")
        for batch in (1, 1000):
            q = latency_ms({"with BN": original, "folded": fast}, x_test[:batch],
                           args.repeats)
            bn, fo = q["with BN"], q["folded"]
            print(f"  batch {batch:>5}: with BN {bn[1]:.3f} ms [{bn[0]:.3f}, {bn[2]:.3f}], "
                  f"folded {fo[1]:.3f} ms [{fo[0]:.3f}, {fo[2]:.3f}]: "
                  f"folded / with BN = {fo[1] / bn[1]:.2f}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
