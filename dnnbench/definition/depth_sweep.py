"""The `dnnbench depth-sweep` preset: batch normalization vs none across network depth.

The protocol is the packaged ``bn-depth`` file's (tapered ReLU MLPs on MNIST, Adam, batch 500,
BN before the activation, steps to 90% test accuracy; ``dnnbench list bn-depth``), which is
the only home of its defaults: the command's options are overrides of that file, and an
option not given keeps the file's value (its ``[quick]`` variant's with ``--quick``). Its
results are the file layer's common tables, under the name ``depth-sweep``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dnnbench import definition

EXPERIMENT = "depth-sweep"
PACKAGED = "bn-depth"  # the experiment file this command is a preset over
DEFAULT_DATASET = "mnist"
BN_LEVELS = {False: "off", True: "on"}  # the levels of the file's factor `bn`


def experiment(*, quick: bool = False, seeds: int | None = None,
               depths: Sequence[int] | None = None, widths: Sequence[int] | None = None,
               width: int | None = None, activations: Sequence[str] | None = None,
               init: str | None = None, bn_arms: Sequence[bool] | None = None,
               bn_momentum: float | None = None, bn_position: str | None = None,
               bn_logits: bool | None = None, optimizer: str | None = None,
               learning_rate: float | None = None, batch_size: int | None = None,
               target: float | None = None, eval_every: int | None = None,
               max_steps: int | None = None) -> definition.Experiment:
    """The packaged ``bn-depth`` file (its quick variant with ``quick``) with the options given
    (None: the file's) as overrides, named ``depth-sweep``: factors depth x bn (x activation
    when several are given); ``width`` makes every hidden layer that wide; the file's claims
    about levels the options leave out are dropped (as for ``dnnbench run --set``)."""
    exp = definition.load(PACKAGED)
    if quick:
        exp = definition.quick_variant(exp)
    given = {"depth": list(depths) if depths else None,
             "bn": [BN_LEVELS[b] for b in bn_arms] if bn_arms else None,
             "activation": (list(activations) if len(activations) > 1 else activations[0])
             if activations else None,
             "init": init, "norm_position": bn_position, "bn_momentum": bn_momentum,
             "optimizer": optimizer, "learning_rate": learning_rate, "batch_size": batch_size,
             "max_steps": max_steps, "eval_every": eval_every, "target": target}
    exp = definition.override(exp, {k: v for k, v in given.items() if v is not None},
                              f"{EXPERIMENT} command")
    # (no "cost": the packaged file's describes its own grid; the report counts the programs)
    doc = definition.to_doc(exp) | {
        "name": EXPERIMENT, "dataset": DEFAULT_DATASET, "cost": "",
        "seeds": seeds if seeds is not None else exp.quick["seeds"] if quick else exp.seeds}
    if width is not None:
        doc["base"].pop("widths")
        doc["base"]["width"] = width
    elif widths is not None:
        doc["base"]["widths"] = list(widths)
    if bn_logits is not None and "on" in doc["factors"]["bn"]:
        doc["factors"]["bn"]["on"]["bn_logits"] = bn_logits
    return definition.parse(doc, f"{EXPERIMENT} command (the packaged {PACKAGED} file)")
