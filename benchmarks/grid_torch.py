"""The PyTorch side of benchmarks/grid.py: the same 60 arms x 3 seeds as a plain eager loop.

    DNNBENCH_DATA_DIR=../shared/data /tmp/torchenv/bin/python benchmarks/grid_torch.py

PyTorch is NOT a dependency of dnnbench. Each run: 3x100 ReLU (He-normal), dropout after every
hidden layer, Adam with decoupled weight decay (torch.optim.AdamW: w -= lr * (adam direction +
wd * w), as dnnbench's weight_decay), batch 32, 500 steps, validation accuracy every 100 steps.
Prints one JSON line per arm (its 3 seeds) and the total wall time.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_baseline import idx

LRS = (0.0001, 0.0003, 0.001, 0.003, 0.01)
WDS = (0.0, 0.0001, 0.001, 0.01)
DROPOUTS = (0.0, 0.2, 0.4)


def load(folder: Path):
    x = idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    y = idx(folder / "train-labels-idx1-ubyte.gz")
    t = torch.as_tensor
    return (t(x[:55000], dtype=torch.float32), t(y[:55000], dtype=torch.long),
            t(x[55000:], dtype=torch.float32), t(y[55000:], dtype=torch.long))


def net(dropout: float) -> nn.Sequential:
    layers, n_in = [], 784
    for w in (100, 100, 100):
        dense = nn.Linear(n_in, w)
        nn.init.kaiming_normal_(dense.weight, nonlinearity="relu")
        nn.init.zeros_(dense.bias)
        layers += [dense, nn.ReLU(), nn.Dropout(dropout)]
        n_in = w
    layers.append(nn.Linear(n_in, 10))
    return nn.Sequential(*layers)


def run(data, lr, wd, dropout, seed, steps=500, every=100, batch=32) -> float:
    x, y, xv, yv = data
    torch.manual_seed(seed)
    model = net(dropout)
    # dnnbench's decoupled decay: w -= lr * (adam_direction + wd * w); torch's AdamW applies
    # w -= lr * weight_decay * w, the same with weight_decay = wd
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    acc = float("nan")
    for step in range(1, steps + 1):
        i = (step - 1) % (len(y) // batch)
        if i == 0 and step > 1:
            order = torch.randperm(len(y), generator=gen)
        b = order[i * batch:(i + 1) * batch]
        model.train()
        opt.zero_grad()
        loss_fn(model(x[b]), y[b]).backward()
        opt.step()
        if step % every == 0:
            model.eval()
            with torch.no_grad():
                acc = (model(xv).argmax(1) == yv).float().mean().item()
    return acc


def main() -> None:
    folder = Path(os.environ.get("DNNBENCH_DATA_DIR", "../shared/data")) / "mnist"
    t0 = time.perf_counter()
    data = load(folder)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for lr, wd, p in itertools.product(LRS, WDS, DROPOUTS):
        accs = [run(data, lr, wd, p, s) for s in range(3)]
        print(json.dumps({"learning_rate": lr, "weight_decay": wd, "dropout": p,
                          "final_eval_accuracy": accs}), flush=True)
    total = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "load_s": t_load, "runs_s": total, "runs": 180}), flush=True)


if __name__ == "__main__":
    main()
