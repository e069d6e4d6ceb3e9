"""Turning intervals into words, strings and star ratings.

Convention shared by all helpers: a NaN bound means "unbounded on that side" (for
example the upper limit of a median that is never reached: "> budget").
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LABELS = ("better", "worse", "no clear difference")

# The fewest paired seeds from which a comparison may conclude. With n seeds, a percentile
# bootstrap excludes the null as soon as every seed points the same way (and step counts,
# measured at evaluations every few steps, often give every seed the same ratio: an interval
# of zero width); when the arms do not differ, that happens by chance with probability
# 2 / 2^n: 50% with 2 seeds, 25% with 3, 12.5% with 4, 6.25% with 5.
MIN_SEEDS_FOR_VERDICT = 5
# The verdict of every comparison with fewer paired seeds than that, whatever its interval.
TOO_FEW_SEEDS = "too few seeds for a verdict"


def _bounds(low: float, high: float) -> tuple[float, float]:
    low = -math.inf if math.isnan(low) else low
    high = math.inf if math.isnan(high) else high
    return low, high


def verdict_from_interval(
    low: float,
    high: float,
    better: str = "higher",
    null: float = 0.0,
    labels: tuple[str, str, str] = DEFAULT_LABELS,
    n: int | None = None,
) -> str:
    """Verdict for an interval of a difference (``null=0``) or a ratio (``null=1``).

    Returns ``labels[0]`` when the whole interval lies strictly on the better side of
    ``null`` (above it if ``better="higher"``, below it if ``better="lower"``),
    ``labels[1]`` when it lies strictly on the other side, and ``labels[2]`` ("no clear
    difference") when it contains or touches ``null``; :data:`TOO_FEW_SEEDS` when ``n`` (the
    paired seeds behind the interval, if given) is below ``MIN_SEEDS_FOR_VERDICT``.  NaN bounds
    count as unbounded.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if n is not None and n < MIN_SEEDS_FOR_VERDICT:
        return TOO_FEW_SEEDS
    low, high = _bounds(low, high)
    if low > null:
        return labels[0] if better == "higher" else labels[1]
    if high < null:
        return labels[1] if better == "higher" else labels[0]
    return labels[2]


def format_interval(
    est: float,
    low: float,
    high: float,
    fmt: str = "{:.1f}",
    missing: str = "n/a",
    unbounded: str = "∞",
) -> str:
    """Format as ``"12.3 [10.1, 14.0]"``.

    A NaN estimate prints as ``missing``; a NaN low as ``missing``; a NaN high (with a
    known low) as ``unbounded`` (pass e.g. ``unbounded="> budget"``).  When both bounds are
    NaN only the estimate is printed.
    """

    def num(v: float, nan_text: str) -> str:
        return nan_text if math.isnan(v) else fmt.format(v)

    head = num(est, missing)
    if math.isnan(low) and math.isnan(high):
        return head
    return f"{head} [{num(low, missing)}, {num(high, unbounded)}]"


def star_ratings(estimates, lows, highs, higher_is_better: bool, n_stars: int = 3) -> list[int]:
    """Measured star rating (1..n_stars) of each arm from its estimate and interval.

    Rule: the best estimate gets ``n_stars``, and so does every arm whose interval overlaps
    the interval of a best arm (statistically tied; NaN bounds are unbounded).  Every other
    arm is placed by ``frac = |estimate - best| / |worst - best|`` (worst = the worst
    finite estimate): ``max(1, ceil((1 - frac) * (n_stars - 1)))`` stars, i.e. for three
    stars: 2 if it is less than halfway from the best to the worst, else 1.  An arm with a
    NaN estimate (e.g. target never reached) gets 1 star.
    """
    if n_stars < 2:
        raise ValueError("n_stars must be at least 2")
    est = np.asarray(estimates, dtype=float)
    lo = np.where(np.isnan(lows), -np.inf, np.asarray(lows, dtype=float))
    hi = np.where(np.isnan(highs), np.inf, np.asarray(highs, dtype=float))
    if not (est.shape == lo.shape == hi.shape):
        raise ValueError("estimates, lows and highs must have the same length")
    finite = ~np.isnan(est)
    if not finite.any():
        return [1] * est.size
    sign = 1.0 if higher_is_better else -1.0
    best = np.max(sign * est[finite]) * sign
    worst = np.min(sign * est[finite]) * sign
    best_arms = np.flatnonzero(finite & (est == best))
    stars = []
    for i in range(est.size):
        if not finite[i]:
            stars.append(1)
        elif est[i] == best or any(lo[i] <= hi[j] and lo[j] <= hi[i] for j in best_arms):
            stars.append(n_stars)
        else:
            frac = abs(est[i] - best) / abs(worst - best)
            stars.append(max(1, math.ceil((1 - frac) * (n_stars - 1))))
    return stars
