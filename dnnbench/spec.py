"""Run specifications: frozen, hashable, keyword-only dataclasses that fully describe one arm.

A ``RunSpec`` is closed over by ``jit`` (never traced); its stable hash names the run in
caches and CSVs. Everything that changes the numbers of a run belongs here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

TAPERED_WIDTHS = (500, 400, 300, 200, 100, 50, 25)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSpec:
    # model
    widths: tuple[int, ...]
    activation: str = "relu"
    init: str = "he-normal"
    head_init: str = "glorot-uniform"
    norm: str = "none"  # "none" | "batch"
    norm_position: str = "before"  # "before" | "after" the activation
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_logits: bool = False
    dropout: float = 0.0
    loss: str = "softmax"  # "softmax" (n_out classes) | "sigmoid" (one unit, binary)
    # optimization
    optimizer: str = "adam"
    learning_rate: float = 0.01
    schedule: str = "constant"
    clip_norm: float = 0.0  # global-norm gradient clipping; 0 = off
    batch_size: int = 500
    # budget and evaluation
    max_steps: int = 3000
    eval_every: int = 10
    eval_split: str = "test"  # split evaluated during training
    target: float = 0.90  # accuracy on eval_split; <= 0 disables early stopping
    stop_at_target: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def n_evals(self) -> int:
        return self.max_steps // self.eval_every

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d

    @property
    def hash(self) -> str:
        """Stable 12-hex-digit hash of all fields (independent of Python's hash seed)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)


def widths_str(widths: tuple[int, ...]) -> str:
    return "-".join(str(w) for w in widths)
