"""Protocols: how the arms of an experiment file are trained (its ``protocol`` key).

- ``train`` (the default): every arm is trained from scratch; arms of one structure are the
  lanes of one compiled program (:func:`dnnbench.run.plan.build_units`).
- ``transfer``: a network A is trained on the classes outside a pair, then task B (the pair)
  is trained from scratch and on A's hidden layers, frozen and then unfrozen
  (:func:`dnnbench.run.transfer.build_file_units`). The file declares the factor
  ``stage`` (levels A, B, B-on-A, in this order, and optionally B-tuned: B from scratch at
  its validation-tuned learning rate) and may set the protocol's own settings below in
  ``[base]``, as factors or with ``--set``.

Every protocol emits the common result table (:mod:`dnnbench.run.plan`: one row
per arm and seed, every factor and setting a column, the same metric columns), so the
summary, claims, figures and report of the file layer serve it unchanged. A protocol is
declared here (its settings, checked like the run settings, and what it decides itself); its
unit builder is registered under the same name in :mod:`dnnbench.run.protocols` (imported
only when a run starts: no JAX at help time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from dnnbench.definition.settings import PROTOCOL_SETTINGS, ExperimentError, Setting

DEFAULT = "train"


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    about: str
    settings: Mapping[str, Setting] = dataclasses.field(default_factory=dict)
    # run settings the protocol decides itself (refused in its files, with the reason)
    owns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    factors: tuple[str, ...] = ()  # factors every file of the protocol declares
    # the levels such a factor must start with (default: all its setting's names); the
    # setting's other names may follow
    required: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    # levels of arms that are not compared with the reference (another task: transfer's A)
    uncompared: Mapping[str, tuple] = dataclasses.field(default_factory=dict)


_EPOCHS = "set by the transfer protocol: use epochs_a, freeze_epochs and unfreeze_epochs"
TRANSFER = Protocol(
    "transfer",
    "train A on the other classes, then task B (a class pair) from scratch (B) and on A's "
    "hidden layers (B-on-A: frozen for freeze_epochs, then trained); paired by seed",
    settings=PROTOCOL_SETTINGS,
    owns={"epochs": _EPOCHS, "max_steps": _EPOCHS,
          "eval_every": "set by the transfer protocol: one evaluation per epoch",
          "eval_split": "set by the transfer protocol: the validation split",
          "target": "set by the transfer protocol: no target", "stop_at_target":
          "set by the transfer protocol: every stage trains its whole budget",
          "loss": "set by the transfer protocol: softmax for A, one sigmoid unit for B",
          "norm": "the transfer protocol reuses dense layers only", "input_norm":
          "the transfer protocol reuses dense layers only"},
    factors=("stage",), required={"stage": ("A", "B", "B-on-A")},
    uncompared={"stage": ("A",)})

PROTOCOLS: dict[str, Protocol] = {
    DEFAULT: Protocol(DEFAULT, "every arm trained from scratch; arms of one structure are the "
                      "lanes of one program"),
    TRANSFER.name: TRANSFER,
}


def get(name: str | None, where: str = "") -> Protocol:
    """The protocol named ``name`` (None: the default); ExperimentError naming the allowed."""
    protocol = PROTOCOLS.get(DEFAULT if name is None else name)
    if protocol is None:
        raise ExperimentError(f"{where}: protocol: unknown value {name!r}; allowed: "
                              f"{', '.join(PROTOCOLS)}")
    return protocol


def setting(key: str) -> Setting | None:
    """A protocol's own setting (None when no protocol has one of that name)."""
    for p in PROTOCOLS.values():
        if key in p.settings:
            return p.settings[key]
    return None


def check(protocol: Protocol, exp, where: str) -> None:
    """The experiment uses only settings its protocol knows, and declares its factors."""
    own = set(protocol.settings)
    for key in (*exp.base, *exp.factors, *(k for levels in exp.named_levels.values()
                                           for s in levels.values() for k in s)):
        if key in protocol.owns:
            raise ExperimentError(f"{where}: {key} is {protocol.owns[key]}")
        if key not in own and setting(key) is not None:
            raise ExperimentError(f"{where}: {key} is a setting of another protocol; this "
                                  f"file's protocol is {protocol.name}")
    for factor in protocol.factors:
        levels = exp.factors.get(factor)
        allowed = protocol.settings[factor].names
        wanted = protocol.required.get(factor, allowed)
        if levels is None or tuple(levels[:len(wanted)]) != wanted or \
                not set(levels) <= set(allowed) or len(set(levels)) != len(levels):
            more = [x for x in allowed if x not in wanted]
            raise ExperimentError(f"{where}: protocol {protocol.name} needs the factor "
                                  f"{factor} = {list(wanted)}"
                                  + (f", then any of {more}" if more else ""))


# the transfer protocol's task B: the documented class pair of each data set
# Documented default class pairs (positive, negative). Fashion-MNIST: the textbook's
# Pullover (2) vs T-shirt/top (0). MNIST and digits: 3 vs 5, a classic pair of look-alikes.
DEFAULT_PAIRS: dict[str, tuple[int, int]] = {
    "fashion-mnist": (2, 0), "mnist": (3, 5), "digits": (3, 5), "synthetic": (3, 5)}


FALLBACK_PAIR = (1, 0)  # any other data set


def pair_label(pos: int, neg: int) -> str:
    return f"{pos}v{neg}"
