"""The reference point of the end-to-end target: a plain PyTorch eager loop of the depth sweep.

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    DNNBENCH_DATA_DIR=../shared/data /tmp/torchenv/bin/python benchmarks/pytorch_baseline.py

PyTorch is NOT a dependency of dnnbench: run this with any Python that has torch and numpy.
It trains the 24 runs of ``dnnbench depth-sweep --depths 1,3,5,7 --seeds 3`` (ReLU, with and
without BN, tapered widths, He-normal, Adam 0.01, batch 500, BN before the activation with
momentum 0.9 and epsilon 1e-3 plus BN on the logits, test accuracy every 10 steps, stop at
90% or 3000 steps) one after the other, the way a hand-written loop would, and prints the wall
time of the loading and of the 24 runs, with the steps each run needed.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

WIDTHS = (500, 400, 300, 200, 100, 50, 25)


def idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder: Path):
    x = idx(folder / "train-images-idx3-ubyte.gz")[:55000].reshape(-1, 784) / 255.0
    y = idx(folder / "train-labels-idx1-ubyte.gz")[:55000]
    xt = idx(folder / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    yt = idx(folder / "t10k-labels-idx1-ubyte.gz")
    t = torch.as_tensor
    return (t(x, dtype=torch.float32), t(y, dtype=torch.long), t(xt, dtype=torch.float32),
            t(yt, dtype=torch.long))


def model(depth: int, bn: bool) -> nn.Sequential:
    layers, n_in = [], 784
    for w in WIDTHS[:depth]:
        dense = nn.Linear(n_in, w, bias=not bn)
        nn.init.kaiming_normal_(dense.weight, nonlinearity="relu")
        layers.append(dense)
        if bn:
            layers.append(nn.BatchNorm1d(w, momentum=0.1, eps=1e-3))
        layers.append(nn.ReLU())
        n_in = w
    layers.append(nn.Linear(n_in, 10, bias=not bn))
    if bn:
        layers.append(nn.BatchNorm1d(10, momentum=0.1, eps=1e-3))
    return nn.Sequential(*layers)


def run(data, depth: int, bn: bool, seed: int, target=0.90, max_steps=3000, eval_every=10,
        batch=500) -> int | None:
    x, y, xt, yt = data
    torch.manual_seed(seed)
    net = model(depth, bn)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    step = 0
    while step < max_steps:
        order = torch.randperm(len(y), generator=gen)
        for i in range(len(y) // batch):
            idx_b = order[i * batch:(i + 1) * batch]
            net.train()
            opt.zero_grad()
            loss_fn(net(x[idx_b]), y[idx_b]).backward()
            opt.step()
            step += 1
            if step % eval_every == 0:
                net.eval()
                with torch.no_grad():
                    acc = (net(xt).argmax(1) == yt).float().mean().item()
                if acc >= target:
                    return step
            if step >= max_steps:
                return None
    return None


def main() -> None:
    base = Path(os.environ.get("DNNBENCH_DATA_DIR", "../shared/data")) / "mnist"
    t0 = time.perf_counter()
    data = load(base)
    t_load = time.perf_counter() - t0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"MNIST loaded in {t_load:.1f} s")
    t0 = time.perf_counter()
    for depth in (1, 3, 5, 7):
        for bn in (False, True):
            steps = [run(data, depth, bn, s) for s in range(3)]
            print(f"depth {depth} bn={'on' if bn else 'off'}: steps to 90% {steps} "
                  f"({time.perf_counter() - t0:.1f} s so far)", flush=True)
    print(f"24 runs: {time.perf_counter() - t0:.1f} s wall; with loading "
          f"{time.perf_counter() - t0 + t_load:.1f} s")


if __name__ == "__main__":
    main()
