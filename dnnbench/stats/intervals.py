"""Means, paired differences and paired ratios with confidence intervals.

Conventions:

- NaN values (or pairs where either side is NaN) are dropped; ``n`` counts what was used.
- Bootstrap intervals use ``scipy.stats.bootstrap`` with ``n_resamples=2000`` and a fixed
  seed (``seed=0``) so that every summary is reproducible.  ``method="bca"`` (default) is
  the bias-corrected and accelerated interval; ``"percentile"`` the plain percentile
  interval; ``"t"`` the classical Student-t interval ``mean +/- t_{n-1} * sd / sqrt(n)``.
- Degenerate inputs never raise and never give NaN: with ``n == 1`` or all values equal the
  interval collapses to the point (``low == high == estimate``), since the data show no
  spread.  If BCa cannot be computed (scipy returns NaN, e.g. for a very small or
  lopsided sample) the percentile interval is used instead.  Only ``n == 0`` gives NaN.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 2000
METHODS = ("bca", "percentile", "t")
# scipy >= 1.15 takes `rng`, older versions `random_state`.
_RNG_KW = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval.

    estimate: the point estimate; low, high: interval bounds; n: observations used.
    With n == 1 the interval has zero width but carries no evidence: check ``n``.
    """

    estimate: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedComparison:
    """Paired comparison of arm a against arm b (differences ``a - b``).

    mean_diff: mean of the differences; low, high: its confidence interval;
    p_value: paired test (Wilcoxon signed-rank or paired t); n: number of pairs used;
    frac_a_better: fraction of pairs with a > b (strictly);
    effect_size: Cohen's dz = mean(d) / sd(d) (ddof=1); 0.0 when all differences are zero,
    +/-inf when the differences are constant and non-zero (or n == 1 and d != 0).
    """

    mean_diff: float
    low: float
    high: float
    p_value: float
    n: int
    frac_a_better: float
    effect_size: float


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired inputs differ in length: {a.size} vs {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def mean_ci(
    values,
    confidence: float = 0.95,
    method: str = "bca",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Mean of ``values`` (NaN dropped) with a ``confidence`` interval.

    ``method``: "bca" or "percentile" (``scipy.stats.bootstrap``, ``n_resamples``
    resamples, fixed ``seed``) or "t" (Student-t interval, ``scipy.stats.t.interval``).
    n == 0 gives NaN everywhere; n == 1 or constant values give a zero-width interval.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    est = float(np.mean(x))
    if n == 1 or np.ptp(x) == 0:
        return Interval(est, est, est, n)
    if method == "t":
        low, high = stats.t.interval(confidence, n - 1, loc=est, scale=stats.sem(x))
        return Interval(est, float(low), float(high), n)
    low, high = _bootstrap(x, confidence, method, n_resamples, seed)
    if method == "bca" and not (np.isfinite(low) and np.isfinite(high)):
        low, high = _bootstrap(x, confidence, "percentile", n_resamples, seed)
    return Interval(est, low, high, n)


def _bootstrap(x, confidence, method, n_resamples, seed) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning; handled by the caller
        res = stats.bootstrap(
            (x,),
            np.mean,
            confidence_level=confidence,
            method="BCa" if method == "bca" else "percentile",
            n_resamples=n_resamples,
            **{_RNG_KW: np.random.default_rng(seed)},
        )
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def paired_difference(
    a,
    b,
    confidence: float = 0.95,
    test: str = "wilcoxon",
    alternative: str = "two-sided",
    method: str = "bca",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedComparison:
    """Compare paired samples ``a`` and ``b`` (index i = same seed) through ``d = a - b``.

    The interval is ``mean_ci(d, confidence, method)``.  The p-value comes from
    ``scipy.stats.wilcoxon(d, alternative=...)`` (default, zero differences handled by
    scipy's "wilcox" rule) or ``scipy.stats.ttest_rel(a, b, alternative=...)``
    (``test="t"``).  ``alternative`` refers to a relative to b ("greater": a > b).
    Degenerate cases: all differences zero -> p = 1.0; paired t with n == 1 -> p = 1.0;
    paired t with constant non-zero differences -> p = 0.0 in the direction of the
    difference (1.0 against it).  n == 0 gives NaN.
    """
    if test not in ("wilcoxon", "t"):
        raise ValueError(f"test must be 'wilcoxon' or 't', got {test!r}")
    a, b = _paired(a, b)
    d = a - b
    n = int(d.size)
    if n == 0:
        return PairedComparison(math.nan, math.nan, math.nan, math.nan, 0, math.nan, math.nan)
    ci = mean_ci(d, confidence, method, n_resamples, seed)
    sd = float(np.std(d, ddof=1)) if n > 1 else 0.0
    mean = ci.estimate
    if sd > 0:
        dz = mean / sd
    else:
        dz = 0.0 if mean == 0 else math.copysign(math.inf, mean)

    if np.all(d == 0):
        p = 1.0
    elif test == "wilcoxon":
        p = float(stats.wilcoxon(d, alternative=alternative).pvalue)
    elif n == 1:
        p = 1.0
    elif sd == 0:
        toward = {"two-sided": True, "greater": mean > 0, "less": mean < 0}[alternative]
        p = 0.0 if toward else 1.0
    else:
        p = float(stats.ttest_rel(a, b, alternative=alternative).pvalue)
    frac = float(np.mean(d > 0))
    return PairedComparison(mean, ci.low, ci.high, p, n, frac, dz)


def paired_log_ratio(
    a,
    b,
    confidence: float = 0.95,
    method: str = "bca",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Geometric mean of the per-pair ratios ``a_i / b_i`` with a confidence interval.

    Computed on the log scale: ``exp(mean_ci(log(a / b)))``, so estimate, low and high are
    ratios.  Pairs with a NaN or a non-positive value (log undefined) are dropped and not
    counted in ``n``.  Exact constant ratios give a zero-width interval at that ratio.
    """
    a, b = _paired(a, b)
    keep = (a > 0) & (b > 0)
    r = mean_ci(np.log(a[keep] / b[keep]), confidence, method, n_resamples, seed)
    return Interval(*(float(np.exp(v)) for v in (r.estimate, r.low, r.high)), r.n)
