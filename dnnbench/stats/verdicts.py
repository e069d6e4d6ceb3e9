"""Turning intervals into words and strings.

Convention shared by all helpers: a NaN bound means "unbounded on that side" (for
example the upper limit of a median that is never reached: "> budget").
"""

from __future__ import annotations

import math

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

    A NaN estimate prints as ``missing``; a NaN low beside a known estimate as "unbounded"
    (a ratio whose resamples reach 0), else as ``missing``; a NaN high (with a known low) as
    ``unbounded`` (pass e.g. ``unbounded="> budget"``).  When both bounds are
    NaN only the estimate is printed.
    """

    def num(v: float, nan_text: str) -> str:
        return nan_text if math.isnan(v) else fmt.format(v)

    head = num(est, missing)
    if math.isnan(low) and math.isnan(high):
        return head
    low_text = "unbounded" if math.isnan(low) and not math.isnan(est) else num(low, missing)
    return f"{head} [{low_text}, {num(high, unbounded)}]"
