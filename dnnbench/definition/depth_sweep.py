"""The `dnnbench depth-sweep` preset: batch normalization vs none across network depth.

Fully connected nets on MNIST, hidden widths tapered 500, 400, 300, 200, 100, 50, 25 (depth d
uses the first d), He-normal init, Adam at 0.01, batch 500, BN after each dense layer and
before its activation (momentum 0.9), and the count of training steps needed to reach 90%
*test* accuracy, with and without BN. The command is a preset over the packaged ``bn-depth``
experiment file (:func:`experiment`); its results are the file layer's common tables.
"""

from __future__ import annotations

import dataclasses

from dnnbench import definition
from dnnbench.spec import TAPERED_WIDTHS

EXPERIMENT = "depth-sweep"
PACKAGED = "bn-depth"  # the experiment file this command is a preset over
DEFAULT_DATASET = "mnist"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DepthSweepConfig:
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    widths: tuple[int, ...] = TAPERED_WIDTHS  # depth d uses widths[:d]
    width: int | None = None  # all hidden layers this wide (overrides widths)
    activations: tuple[str, ...] = ("relu",)
    init: str | None = None  # None: the activation's default (DEFAULT_INIT)
    bn_arms: tuple[bool, ...] = (False, True)
    bn_momentum: float = 0.9
    bn_position: str = "before"
    bn_logits: bool = True  # the original normalized the logits too (BN arm only)
    optimizer: str = "adam"
    learning_rate: float = 0.01
    batch_size: int = 500
    target: float = 0.90
    eval_every: int = 10
    max_steps: int = 3000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


def experiment(cfg: DepthSweepConfig) -> definition.Experiment:
    """The packaged ``bn-depth`` file with the command's options, named ``depth-sweep``:
    factors depth x bn (x activation when several are given); the file's claims about
    levels the options leave out are dropped (as for ``dnnbench run --set``)."""
    levels = {False: "off", True: "on"}
    exp = definition.override(definition.load(PACKAGED), {
        "depth": list(cfg.depths), "bn": [levels[b] for b in cfg.bn_arms],
        "activation": list(cfg.activations) if len(cfg.activations) > 1 else cfg.activations[0],
        "init": cfg.init or "default", "norm_position": cfg.bn_position,
        "bn_momentum": cfg.bn_momentum, "optimizer": cfg.optimizer,
        "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size,
        "max_steps": cfg.max_steps, "eval_every": cfg.eval_every, "target": cfg.target},
        f"{EXPERIMENT} command")
    # (no "cost": the packaged file's describes its own grid; the report counts the programs)
    doc = definition.to_doc(exp) | {"name": EXPERIMENT, "dataset": DEFAULT_DATASET, "cost": "",
                               "seeds": len(cfg.seeds)}
    if cfg.width is not None:
        doc["base"].pop("widths")
        doc["base"]["width"] = cfg.width
    else:
        doc["base"]["widths"] = list(cfg.widths)
    if "on" in doc["factors"]["bn"]:
        doc["factors"]["bn"]["on"]["bn_logits"] = cfg.bn_logits
    return definition.parse(doc, f"{EXPERIMENT} command (the packaged {PACKAGED} file)")
