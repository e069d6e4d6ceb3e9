"""The statistics of the regression gate: a stored baseline against a fresh current run.

Baseline and current are *independent* samples of seeds (the current run must use seeds the
baseline did not, otherwise it would be trivially identical), so nothing here is paired.
For every arm two metrics are compared:

**Steps to target** (primary, hardware-independent).  Effect: ratio of Kaplan-Meier medians,
current / baseline (``dnnbench.stats.km_median``), with a 95% percentile bootstrap interval
that resamples the two samples independently (descriptive only; the decision does not use it).
Decision: a one-sided test with a minimum effect ``r0`` (``max_steps_ratio``, default 1.15):

    H0: current steps <= r0 x baseline steps     vs     H1: current steps > r0 x baseline steps

tested with a one-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``, normal
approximation with tie and continuity correction) of the current steps against the baseline
steps multiplied by ``r0`` (a scale shift: under a scale family H0 is exactly "ratio <= r0").
Censoring: a run that never reached the target (or diverged) counts as +inf, i.e. it ranks
tied-worst with every other censored run; nothing is imputed.  All runs of a profile share
the same budget, which lies beyond every reached step, so "worse than any reached run" is
the true order.  A regression needs both ``p < alpha`` (default 0.01) *and* a point ratio
above ``r0`` ("median steps rise by more than 15% with p < 0.01").  An improvement is the
mirror image (ratio < 1 / r0, test against baseline / r0).

**Final quality** (test accuracy at the end of the budget).  Per sample: mean with a Student-t
interval (``dnnbench.stats.mean_ci``).  Effect: difference of means,
current - baseline, with a 95% bootstrap interval (``scipy.stats.bootstrap``, independent
samples).  Decision: one-sided Mann-Whitney of the current accuracies against the baseline
accuracies minus ``d0`` (``max_accuracy_drop``, default 0.01 = 1 point), H0: drop <= d0;
diverged runs count as -inf (tied-worst).  A regression needs ``p < alpha`` and a mean drop
larger than ``d0``; improvements mirror it.

Why the minimum effect: with a null of "ratio <= 1" every tiny real or random shift would
eventually fail the gate; testing against 1.15 makes the false-alarm rate at an unchanged
code far below ``alpha`` while a 30% slowdown is still detected with the profile's seed
counts (see ``benchmarks/gate.py``).

Wall time (step time) is compared as a plain ratio and reported as advisory only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from dnnbench.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    km_median,
    mean_ci,
    resampled_km_medians,
    steps_of_runs,
)
from dnnbench.stats.flags import flag

REQUIRED_COLUMNS = ("arm", "seed", "reached", "steps_to_target", "max_steps", "diverged",
                    "final_test_accuracy", "step_ms")
STEP_COLUMNS = ("reached", "steps_to_target", "max_steps")  # not needed with steps=False
VERDICTS = ("ok", "regression", "improvement")


class IncompatibleRuns(ValueError):
    """Baseline and current tables cannot be compared (different arms, overlapping seeds...)."""


BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def validate_runs(df: pd.DataFrame, name: str, steps: bool = True) -> None:
    """IncompatibleRuns (one line) unless ``df`` is a usable runs table: the required columns,
    at least one row, true/false flags, integer seeds, a positive budget, a number of steps for
    every reached run, an accuracy in [0, 1] for every run that did not diverge, and numbers
    (or nothing) as step times.  A damaged column must never read as "not reached" or as a
    missing accuracy: that would turn into an improvement or switch the accuracy gate off.
    ``steps=False``: a table without steps to target (only the accuracy is compared)."""
    columns = [c for c in REQUIRED_COLUMNS if steps or c not in STEP_COLUMNS]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise IncompatibleRuns(f"{name} runs lack columns: {', '.join(missing)}")
    if df.empty:
        raise IncompatibleRuns(f"{name} runs table has no rows")

    def bad(col: str, ok: pd.Series, what: str) -> None:
        if not ok.all():
            value = df.loc[~ok, col].iloc[0]
            raise IncompatibleRuns(f"{name} runs: column {col!r} needs {what}, found "
                                   f"{value!r} in {int((~ok).sum())} row(s)")

    flags = {}
    for col in ("reached", "diverged") if steps else ("diverged",):
        text = df[col].astype(str).str.strip().str.lower()
        bad(col, text.isin(BOOL_TEXT), "true or false")
        flags[col] = text.map(BOOL_TEXT).astype(bool)
    num = {c: pd.to_numeric(df[c], errors="coerce") for c in columns
           if c in ("seed", "steps_to_target", "max_steps", "final_test_accuracy", "step_ms")}
    bad("seed", num["seed"].notna() & (num["seed"] % 1 == 0), "integer seeds")
    bad("final_test_accuracy", num["final_test_accuracy"].between(0, 1) | flags["diverged"],
        "an accuracy in [0, 1] for every run that did not diverge")
    bad("step_ms", num["step_ms"].notna() | df["step_ms"].isna(), "numbers")
    if steps:
        bad("max_steps", num["max_steps"] > 0, "a positive step budget")
        bad("steps_to_target", num["steps_to_target"].notna() | ~flags["reached"],
            "a number of steps for every reached run")
        bad("steps_to_target", num["steps_to_target"].notna() | df["steps_to_target"].isna(),
            "numbers")


@dataclass(frozen=True)
class Thresholds:
    max_steps_ratio: float = 1.15  # fail only if median steps rise by more than this factor
    max_accuracy_drop: float = 0.01  # ... or final accuracy falls by more than this (1 point)
    alpha: float = 0.01  # with a one-sided p-value below this
    confidence: float = 0.95  # level of the descriptive intervals


@dataclass(frozen=True)
class MetricCheck:
    """One arm, one metric (``steps`` or ``accuracy``), baseline against current.

    baseline/current: KM median steps (with its interval) or mean accuracy (with its
    interval); effect: ratio current / baseline (steps) or difference current - baseline
    (accuracy) with a bootstrap interval [low, high]; p_regression, p_improvement: one-sided
    p-values against the minimum effect (the gate's tests); verdict: "ok", "regression" or
    "improvement"; p_difference: two-sided Mann-Whitney p-value of *any* difference (no
    minimum effect; descriptive, not gated).
    """

    arm: str
    metric: str
    baseline: float
    baseline_low: float
    baseline_high: float
    current: float
    current_low: float
    current_high: float
    n_baseline: int
    n_current: int
    reached_baseline: int
    reached_current: int
    effect: float
    low: float
    high: float
    p_regression: float
    p_improvement: float
    verdict: str
    p_difference: float = math.nan

    @property
    def p_gate(self) -> float:
        """The gate's one-sided p-value in the direction the data moved in: "worse (better) by
        more than the minimum effect".  It is near 1 whenever the change lies well inside the
        tolerance, as with an unchanged code; ``p_difference`` tells whether there is any
        difference at all."""
        worse = self.effect > 1 if self.metric == "steps" else self.effect < 0
        return self.p_regression if worse or math.isnan(self.effect) else self.p_improvement


@dataclass(frozen=True)
class WallCheck:
    """Advisory: steady-state time per training step, in ms.

    ``*_step_ms`` is one step of all ``n_*`` seeds vmapped together (as measured);
    ``ratio`` = (current_step_ms / n_current) / (baseline_step_ms / n_baseline): a plain
    ratio when the baseline metadata holds a timing at the check's seed count (then
    ``n_baseline == n_current``), else the cost per seed.  It depends on the machine and
    its load, hence advisory only.
    """

    arm: str
    baseline_step_ms: float
    current_step_ms: float
    n_baseline: int
    n_current: int
    ratio: float


@dataclass
class CheckReport:
    thresholds: Thresholds
    metrics: list[MetricCheck]
    wall: list[WallCheck] = field(default_factory=list)
    n_baseline_seeds: int = 0
    n_current_seeds: int = 0

    @property
    def regressions(self) -> list[MetricCheck]:
        return [m for m in self.metrics if m.verdict == "regression"]

    @property
    def improvements(self) -> list[MetricCheck]:
        return [m for m in self.metrics if m.verdict == "improvement"]

    @property
    def passed(self) -> bool:
        return not self.regressions

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {"passed": self.passed, "thresholds": asdict(self.thresholds),
                "n_baseline_seeds": self.n_baseline_seeds,
                "n_current_seeds": self.n_current_seeds,
                "metrics": [{**asdict(m), "p_gate": m.p_gate} for m in self.metrics],
                "wall_advisory": [asdict(w) for w in self.wall]}


# ------------------------------------------------------------------------------- helpers

def _diverged(df: pd.DataFrame) -> np.ndarray:
    return flag(df["diverged"])


def _ranked(times: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Steps for ranking: censored runs are +inf (tied-worst), never an imputed number."""
    return np.where(reached, times, np.inf)


def _mwu(x: np.ndarray, y: np.ndarray, alternative: str) -> float:
    """Mann-Whitney U p-value of x against y (1.0 when undefined, e.g. all tied)."""
    if x.size == 0 or y.size == 0:
        return 1.0
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        p = sps.mannwhitneyu(x, y, alternative=alternative, method="asymptotic").pvalue
    return 1.0 if not np.isfinite(p) else float(p)


def _ratio(a: float, b: float) -> float:
    """a / b for medians, NaN meaning "not reached": inf if only a is NaN, 0 if only b."""
    if math.isnan(a) and math.isnan(b):
        return math.nan
    if math.isnan(a):
        return math.inf
    if math.isnan(b):
        return 0.0
    return a / b if b > 0 else math.inf


def _boot_ratio(base, cur, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """Percentile interval of the KM median ratio, resampling both samples independently."""
    if n_resamples <= 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    nb, nc = base[0].size, cur[0].size
    mb = resampled_km_medians(*base, rng.integers(0, nb, size=(n_resamples, nb)))
    mc = resampled_km_medians(*cur, rng.integers(0, nc, size=(n_resamples, nc)))
    r = np.array([_ratio(a, b) for a, b in zip(mc, mb, strict=True)])
    alpha = 1 - confidence
    lo = float(np.quantile(np.where(np.isnan(r), 0.0, r), alpha / 2, method="lower"))
    hi = float(np.quantile(np.where(np.isnan(r), np.inf, r), 1 - alpha / 2, method="higher"))
    return lo, (math.nan if math.isinf(hi) else hi)


def _boot_diff(base: np.ndarray, cur: np.ndarray, confidence: float, n_resamples: int,
               seed: int) -> tuple[float, float]:
    """Percentile interval of mean(cur) - mean(base), independent resampling (scipy)."""
    if n_resamples <= 0 or base.size < 2 or cur.size < 2:
        return math.nan, math.nan
    if np.ptp(base) == 0 and np.ptp(cur) == 0:
        d = float(cur.mean() - base.mean())
        return d, d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((cur, base), lambda c, b, axis=-1: c.mean(axis) - b.mean(axis),
                            confidence_level=confidence, method="percentile",
                            n_resamples=n_resamples, vectorized=True,
                            rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# ------------------------------------------------------------------------------ the tests

def compare_steps(arm: str, base: pd.DataFrame, cur: pd.DataFrame, th: Thresholds, *,
                  n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> MetricCheck:
    b, c = steps_of_runs(base), steps_of_runs(cur)
    kb, kc = km_median(*b, confidence=th.confidence), km_median(*c, confidence=th.confidence)
    ratio = _ratio(kc.median, kb.median)
    low, high = _boot_ratio(b, c, th.confidence, n_resamples, seed)
    rb, rc = _ranked(b[0], b[1]), _ranked(c[0], c[1])
    r0 = th.max_steps_ratio
    p_reg = _mwu(rc, rb * r0, "greater")
    p_imp = _mwu(rc, rb / r0, "less")
    verdict = "ok"
    if not math.isnan(ratio) and ratio > r0 and p_reg < th.alpha:
        verdict = "regression"
    elif not math.isnan(ratio) and ratio < 1 / r0 and p_imp < th.alpha:
        verdict = "improvement"
    return MetricCheck(arm, "steps", kb.median, kb.low, kb.high, kc.median, kc.low, kc.high,
                       kb.n, kc.n, kb.n_reached, kc.n_reached, ratio, low, high,
                       p_reg, p_imp, verdict, _mwu(rc, rb, "two-sided"))


def compare_accuracy(arm: str, base: pd.DataFrame, cur: pd.DataFrame, th: Thresholds, *,
                     n_resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> MetricCheck:
    def values(df):
        acc = pd.to_numeric(df["final_test_accuracy"], errors="coerce").to_numpy(float)
        return np.where(_diverged(df), np.nan, acc)

    ab, ac = values(base), values(cur)
    fb, fc = ab[~np.isnan(ab)], ac[~np.isnan(ac)]
    mb = float(fb.mean()) if fb.size else math.nan
    mc = float(fc.mean()) if fc.size else math.nan
    diff = mc - mb
    low, high = _boot_diff(fb, fc, th.confidence, n_resamples, seed)
    cb, cc = mean_ci(fb, th.confidence, method="t"), mean_ci(fc, th.confidence, method="t")
    d0 = th.max_accuracy_drop
    rb, rc = np.nan_to_num(ab, nan=-np.inf), np.nan_to_num(ac, nan=-np.inf)
    p_reg = _mwu(rc, rb - d0, "less")
    p_imp = _mwu(rc, rb + d0, "greater")
    verdict = "ok"
    if (math.isnan(diff) or diff < -d0) and p_reg < th.alpha:
        verdict = "regression"
    elif not math.isnan(diff) and diff > d0 and p_imp < th.alpha:
        verdict = "improvement"
    return MetricCheck(arm, "accuracy", mb, cb.low, cb.high, mc, cc.low, cc.high, int(ab.size),
                       int(ac.size), int(fb.size), int(fc.size), diff, low, high, p_reg, p_imp,
                       verdict, _mwu(rc, rb, "two-sided"))


def compare_runs(baseline: pd.DataFrame, current: pd.DataFrame,
                 thresholds: Thresholds | None = None, *, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, baseline_wall: dict | None = None,
                 fresh_seeds: bool = True, names: tuple[str, str] = ("baseline", "current"),
                 steps: bool = True) -> CheckReport:
    """Compare two runs tables (one row per arm and seed) arm by arm.

    Raises IncompatibleRuns when a table is unusable (:func:`validate_runs`), the arms differ,
    or (``fresh_seeds``, the check's rule) a seed appears in both tables.  Two stored runs
    of the same seeds (``dnnbench compare``) are compared as independent samples all the
    same: conservative, since pairing could only narrow the intervals.  ``names`` name the two
    tables in messages; ``steps=False`` compares the final accuracy only (tables without steps
    to target, such as the transfer experiment's).  ``n_resamples=0`` skips the
    descriptive bootstrap intervals (the verdicts do not depend on them).
    ``baseline_wall`` (``{"seeds": n, "step_ms": {arm: ms}}``, stored in the baseline
    metadata) is the baseline's step time measured with the check run's number of vmapped
    seeds; when the current run has that many seeds the advisory wall-time ratio compares
    like with like, otherwise it compares the cost per seed.
    """
    th = thresholds or Thresholds()
    nb, nc = names
    validate_runs(baseline, nb, steps)
    validate_runs(current, nc, steps)
    arms_b, arms_c = list(dict.fromkeys(baseline["arm"])), list(dict.fromkeys(current["arm"]))
    if set(arms_b) != set(arms_c):
        only_b = sorted(set(arms_b) - set(arms_c))
        only_c = sorted(set(arms_c) - set(arms_b))
        raise IncompatibleRuns(f"{nb} and {nc} have different arms (only in {nb}: "
                               f"{only_b or '-'}; only in {nc}: {only_c or '-'})")
    shared = set(baseline["seed"].astype(int)) & set(current["seed"].astype(int))
    if shared and fresh_seeds:
        raise IncompatibleRuns(f"{len(shared)} seeds appear in both baseline and current (e.g. "
                               f"{min(shared)}); the current run must use fresh seeds")
    report = CheckReport(th, [], n_baseline_seeds=baseline.groupby("arm").size().max(),
                         n_current_seeds=current.groupby("arm").size().max())
    for arm in arms_b:
        b, c = baseline[baseline["arm"] == arm], current[current["arm"] == arm]
        if steps:
            report.metrics.append(compare_steps(arm, b, c, th, n_resamples=n_resamples,
                                                seed=seed))
        report.metrics.append(compare_accuracy(arm, b, c, th, n_resamples=n_resamples,
                                               seed=seed))
        sb = float(pd.to_numeric(b["step_ms"], errors="coerce").median())
        sc = float(pd.to_numeric(c["step_ms"], errors="coerce").median())
        nb = len(b)
        same = (baseline_wall or {}).get("step_ms", {}).get(arm)
        if same is not None and int(baseline_wall.get("seeds", -1)) == len(c):
            sb, nb = float(same), len(c)
        ratio = (sc / len(c)) / (sb / nb) if sb > 0 else math.nan
        report.wall.append(WallCheck(arm, sb, sc, nb, len(c), ratio))
    return report
