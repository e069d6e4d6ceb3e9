"""The PyTorch side of benchmarks/search.py: search points x seeds as a plain eager loop.

    DNNBENCH_DATA_DIR=../shared/data /tmp/torchenv/bin/python benchmarks/search_torch.py \
        POINTS.json

PyTorch is NOT a dependency of dnnbench. POINTS.json: {"points": [{"learning_rate", "b1",
"b2", "eps"}, ...], "seeds": 3, "batch": 128, "train_size": 0, "epochs": 1}. Each run: 3x100
ReLU (He-normal), Adam with the point's coefficients, one pass over the training split in
shuffled batches, validation accuracy at the end. Prints one JSON line per point (its seeds'
accuracies) and the total wall time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_torch import load, net


def run(data, point, seed, batch, train_size, epochs) -> float:
    x, y, xv, yv = data
    if train_size:
        x, y = x[:train_size], y[:train_size]
    torch.manual_seed(seed)
    model = net(0.0)
    opt = torch.optim.Adam(model.parameters(), lr=point["learning_rate"],
                           betas=(point["b1"], point["b2"]), eps=point["eps"])
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(len(y) // batch):
            b = order[i * batch:(i + 1) * batch]
            opt.zero_grad()
            loss_fn(model(x[b]), y[b]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return (model(xv).argmax(1) == yv).float().mean().item()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    folder = Path(os.environ.get("DNNBENCH_DATA_DIR", "../shared/data")) / "mnist"
    t0 = time.perf_counter()
    data = load(folder)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in spec["points"]:
        accs = [run(data, p, s, spec["batch"], spec["train_size"], spec["epochs"])
                for s in range(spec["seeds"])]
        print(json.dumps({**p, "final_eval_accuracy": accs}), flush=True)
    total = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "load_s": t_load, "runs_s": total,
                      "runs": len(spec["points"]) * spec["seeds"]}), flush=True)


if __name__ == "__main__":
    main()
