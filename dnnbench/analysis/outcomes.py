"""What checking a claim gives: an :class:`Outcome` (verdict, effect with its interval, n,
evidence) per check, a :class:`ClaimResult` per (claim, data set), and the rows of
``claims.csv``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dnnbench.definition.claims import CONTRADICTED, INCONCLUSIVE, NOT_RUN, SUPPORTED, Claim

LABELS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)  # for verdict_from_interval
CSV_COLUMNS = ["claim_id", "claim", "experiment", "verdict", "effect", "low", "high", "n",
               "effect_text", "evidence", "files", "command"]


class MissingData(Exception):
    """The results lack what a check needs: the claim is reported as "not run"."""


@dataclass(frozen=True)
class Outcome:
    """What an evaluator returns: verdict, effect with its interval, n, evidence text."""

    verdict: str
    effect: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    evidence: str = ""
    effect_note: str = ""  # the effect in words when no number states it (a median not reached)

    @property
    def effect_text(self) -> str:
        """The effect as shown in tables: ``est [low, high]`` rounded, or the note."""
        if self.effect_note or self.verdict == NOT_RUN:
            return self.effect_note
        return ci(self.effect, self.low, self.high)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    dataset: str | None
    outcome: Outcome
    files: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return self.outcome.verdict

    def row(self) -> dict[str, Any]:
        o = self.outcome
        prefix = f"[{self.dataset}] " if self.dataset else ""
        return {"claim_id": self.claim.id, "claim": self.claim.text,
                "experiment": self.claim.experiment, "verdict": o.verdict, "effect": o.effect,
                "low": o.low, "high": o.high, "n": o.n, "effect_text": o.effect_text,
                "evidence": prefix + o.evidence,
                "files": ";".join(self.files), "command": self.claim.command}


def fmt(x: float, spec: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return spec.format(x)


def interval_spec(*values: float) -> str:
    """A format for an estimate and its bounds: at least 2 decimals, more when the interval is
    narrower, so that its width shows two significant digits (at most 6 decimals)."""
    finite = [v for v in values if isinstance(v, float | int) and math.isfinite(v)]
    width = max(finite) - min(finite) if len(finite) > 1 else 0.0
    decimals = 2 if width <= 0 else min(6, max(2, 1 - math.floor(math.log10(width))))
    return f"{{:.{decimals}f}}"


def ci(est, low, high, spec=None) -> str:
    """``est [low, high]``; a NaN bound beside a known one is unbounded (∞ above, "unbounded"
    below: a ratio's lower bound is never the impossible 0)."""
    spec = spec or interval_spec(est, low, high)
    hi = "∞" if math.isnan(high) and not math.isnan(low) else fmt(high, spec)
    lo = "unbounded" if math.isnan(low) and not math.isnan(high) else fmt(low, spec)
    return f"{fmt(est, spec)} [{lo}, {hi}]"


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    return pd.DataFrame([r.row() for r in results], columns=CSV_COLUMNS)
