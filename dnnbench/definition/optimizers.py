"""The `dnnbench optimizers` preset: the packaged ``optimizer-comparison.toml`` with the command's options.

The protocol, results and claims are the file's (see it, ``dnnbench list
optimizer-comparison``): 3x100 ReLU, He-normal, batch 32, 10 epochs, the validation split
evaluated once per epoch, the whole budget trained, every optimizer at learning rate 0.001,
paired seeds; the target is relative (98% of the best arm's median final validation
accuracy, found after training) unless an absolute one is given. The command writes the
common result schema of the file layer (:mod:`dnnbench.run.plan`) under the
experiment name ``optimizers``: one row per (arm, seed), the factors ``optimizer`` and
``lr_source`` ("default": the configured learning rate; "tuned": the best of the ``--tune``
grid by median final validation accuracy, the sweep trained as lanes of the optimizer's own
program, see the file layer's ``[tune]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from dnnbench import definition

EXPERIMENT = "optimizers"
FILE = "optimizer-comparison"
DEFAULT_DATASET = "fashion-mnist"


def experiment(optimizers: Sequence[str], *, learning_rate: float | None = None,
               lr_overrides: dict[str, float] | None = None, epochs: int | None = None,
               batch_size: int | None = None, eval_every: int | None = None,
               seeds: int | None = None,
               target: float | None = None, target_fraction: float | None = None,
               tune: bool = False, tune_grid: Sequence[float] | None = None
               ) -> definition.Experiment:
    """The packaged file with the command's settings (None: the file's): optimizers (with
    ``lr_overrides``, a factor of named levels that set their own learning rate), the budget,
    the evaluation cadence (None: the file's), an absolute ``target`` or the relative one
    (``target_fraction``), and the tuned arms (``tune``: the factor ``lr_source`` gets the
    level "tuned"; ``tune_grid``: their learning rates, None: the file's [tune] grid)."""
    levels = {"optimizer": list(optimizers), "lr_source": ["default", "tuned"] if tune
              else ["default"]}
    # the file's reference and claims on levels the selection lacks are left out (to_doc)
    doc = definition.to_doc(definition.override(definition.load(FILE), levels))
    given = {"epochs": epochs, "batch_size": batch_size}  # None: the file's
    base = doc["base"] | {k: v for k, v in given.items() if v is not None} | {
        "eval_every": eval_every or doc["base"]["eval_every"]}
    if learning_rate is not None:
        base["learning_rate"] = learning_rate
    # (no "cost": the packaged file's describes its own grid; the report counts the programs)
    doc |= {"name": EXPERIMENT, "title": "Optimizers: speed and quality", "cost": "",
            "dataset": DEFAULT_DATASET, "seeds": seeds or doc["seeds"], "base": base,
            "quick": {}}
    if tune_grid is not None:
        doc["tune"] = doc["tune"] | {"learning_rate": [float(v) for v in tune_grid]}
    if lr_overrides:  # named levels: each optimizer with its own learning rate
        doc["factors"]["optimizer"] = {o: {"optimizer": o, **(
            {"learning_rate": lr_overrides[o]} if o in lr_overrides else {})}
            for o in optimizers}
    if target is None:
        doc["relative_target"] = (doc["relative_target"] if target_fraction is None
                                  else target_fraction)
    else:
        doc.pop("relative_target", None)
        base["target"] = target
    if not doc["reference"]:  # (SGD not selected) no paired comparisons
        doc["claims"] = [c for c in doc["claims"] if "check" in c]
    return definition.parse(doc, f"{FILE} (dnnbench {EXPERIMENT})")
