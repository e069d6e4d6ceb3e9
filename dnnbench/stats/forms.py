"""Claim forms: the test that matches what a claim says, with its verdict.

A claim about one comparison is decided on a *sample* of per-seed paired values of a quantity
(differences ``a - b``, or log ratios ``log(a / b)`` shown as ratios), through one of these
forms:

- ``superiority``: the quantity lies on the claimed side of the null (0, or a ratio of 1);
- ``non-inferiority``: it is not worse than the null by more than ``margin`` (one-sided test
  against ``null - margin``, or ``null + margin`` when lower is better);
- ``equivalence``: it lies within ``null +- margin`` (two one-sided tests, TOST);
- ``bounds``: an arm's own mean lies within ``[low, high]`` (TOST against the two bounds) or,
  for ``outside``, beyond one of them;
- ``trend``: a monotone trend over an ordered factor, seeds as blocks (Page's L test on
  the whole table, one test across every level); its effect is the mean over seeds of
  Spearman's rank correlation between level order and value.

Every test is one-sided at ``ALPHA`` = 2.5% on each side, so a single comparison is decided
exactly when its two-sided 95% interval excludes the null (or lies within the margins): a
*Student-t* interval and test of the paired values (honest with five seeds, where a bootstrap
interval is too narrow), or, for a resampled statistic (medians of censored steps), the
percentile interval of its resamples and their one-sided fractions (test inversion).

A claim over several comparisons (arms, pairs of a ranking) declares its *quantifier*:
``every`` tests each comparison and adjusts the k one-sided p-values with Holm's step-down
procedure (supported when Holm rejects every comparison's null, contradicted when it rejects
the opposite side for some comparison); ``pooled`` makes one test of the per-seed mean over
the comparisons. The verdicts are ``AS_EXPECTED``, ``OPPOSITE``, ``UNCLEAR``; a sample of
fewer than ``MIN_SEEDS_FOR_VERDICT`` pairs is always unclear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .verdicts import MIN_SEEDS_FOR_VERDICT

ALPHA = 0.025  # each one-sided test; two-sided 95% intervals
CONFIDENCE = 1 - 2 * ALPHA
AS_EXPECTED, OPPOSITE, UNCLEAR = LABELS = ("as expected", "opposite", "unclear")
FORMS = ("superiority", "non-inferiority", "equivalence", "bounds", "trend")
QUANTIFIERS = ("every", "pooled")


# ------------------------------------------------------------------------------ samples

@dataclass(frozen=True)
class Sample:
    """Per-seed paired values of a quantity (NaN dropped); ``ratio``: they are log ratios,
    shown (estimate, bounds, margins) on the ratio scale."""

    values: np.ndarray
    ratio: bool = False

    def __post_init__(self):
        v = np.asarray(self.values, dtype=float).ravel()
        object.__setattr__(self, "values", v[np.isfinite(v)])

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def estimate(self) -> float:
        return float(np.mean(self.values)) if self.n else math.nan

    def p_greater(self, null: float) -> float:
        """One-sided p-value of "the mean exceeds ``null``" (Student t; constant values:
        0 when they all exceed it, 1 otherwise)."""
        return _t_p(self.values, null, "greater")

    def p_less(self, null: float) -> float:
        return _t_p(self.values, null, "less")

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        if self.n == 0:
            return math.nan, math.nan
        m = self.estimate
        if self.n == 1 or np.ptp(self.values) == 0:
            return m, m
        low, high = stats.t.interval(confidence, self.n - 1, loc=m, scale=stats.sem(self.values))
        return float(low), float(high)


def _t_p(x: np.ndarray, null: float, alternative: str) -> float:
    if x.size == 0:
        return math.nan
    if x.size == 1 or np.ptp(x) == 0:
        toward = x[0] > null if alternative == "greater" else x[0] < null
        return 0.0 if toward else 1.0
    return float(stats.ttest_1samp(x, null, alternative=alternative).pvalue)


@dataclass(frozen=True)
class Resampled(Sample):
    """A statistic known through its resamples (``resamples``: the statistic in each, on the
    log scale for a ratio; +-inf where it is unbounded, e.g. a median not reached) and its
    point ``point``; ``values`` are unused beyond their count ``n_pairs``."""

    point: float = math.nan
    resamples: np.ndarray = field(default_factory=lambda: np.empty(0))
    n_pairs: int = 0

    @property
    def n(self) -> int:
        return self.n_pairs

    @property
    def estimate(self) -> float:
        return self.point

    # a resample where the statistic is undefined (NaN: neither median reached) counts
    # against the claim on either side, and widens the interval to both ends
    def p_greater(self, null: float) -> float:
        r = self.resamples
        return float((1 + np.sum(~(r > null))) / (1 + r.size)) if r.size else math.nan

    def p_less(self, null: float) -> float:
        r = self.resamples
        return float((1 + np.sum(~(r < null))) / (1 + r.size)) if r.size else math.nan

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        r = self.resamples
        if r.size == 0:
            return math.nan, math.nan
        a = (1 - confidence) / 2
        low = float(np.quantile(np.where(np.isnan(r), -np.inf, r), a, method="lower"))
        high = float(np.quantile(np.where(np.isnan(r), np.inf, r), 1 - a, method="higher"))
        return low, high


# ---------------------------------------------------------------------------- decisions

@dataclass(frozen=True)
class Decision:
    """One comparison decided: ``p_for`` / ``p_against`` the one-sided p-values of the claimed
    side and of its opposite (before any adjustment); estimate and 95% interval on the shown
    scale; ``text`` the effect in words."""

    verdict: str
    p_for: float
    p_against: float
    estimate: float
    low: float
    high: float
    n: int
    text: str = ""


def _shown(s: Sample, x: float) -> float:
    """``x`` on the shown scale; an infinite bound (a median not reached in some resamples)
    is NaN: unbounded, never a ratio of 0 or a difference of -inf."""
    if not math.isfinite(x):
        return math.nan
    return math.exp(x) if s.ratio else x


def _on_scale(s: Sample, x: float) -> float:
    """A null or a bound given on the shown scale, on the sample's scale (log for ratios)."""
    return math.log(x) if s.ratio else x


def decide(p_for: float, p_against: float, n: int) -> str:
    """The verdict of one comparison from its one-sided p-values (unclear below
    MIN_SEEDS_FOR_VERDICT pairs or without p-values)."""
    if n < MIN_SEEDS_FOR_VERDICT or math.isnan(p_for) or math.isnan(p_against):
        return UNCLEAR
    return AS_EXPECTED if p_for < ALPHA else OPPOSITE if p_against < ALPHA else UNCLEAR


def _decision(s: Sample, p_for: float, p_against: float, what: str) -> Decision:
    low, high = s.interval()
    est, low, high = (_shown(s, v) for v in (s.estimate, low, high))
    fmt = "x{:.3g}" if s.ratio else _difference_format(est, low, high)

    def show(v):
        return "unbounded" if math.isnan(v) else fmt.format(v)
    text = (f"{show(est)} [{show(low)}, {show(high)}] (test: {what}; n={s.n})"
            if s.n else f"no pairs ({what})")
    return Decision(decide(p_for, p_against, s.n), p_for, p_against, est, low, high, s.n, text)


def _difference_format(*values: float) -> str:
    """One format for an estimate and its bounds: decimals that show the interval's width to
    two significant digits (at most 6); large numbers in the general format."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or max(abs(v) for v in finite) >= 1e4:
        return "{:+.4g}"
    width = max(finite) - min(finite)
    decimals = 2 if width == 0 else min(6, max(0, 1 - math.floor(math.log10(width))))
    return f"{{:+.{decimals}f}}"


def superiority(s: Sample, better: str, null: float | None = None) -> Decision:
    """``better`` ("higher" / "lower"): the quantity lies above / below ``null`` (default: 0,
    or a ratio of 1)."""
    z = _on_scale(s, 1.0 if s.ratio else 0.0) if null is None else _on_scale(s, null)
    up, down = s.p_greater(z), s.p_less(z)
    p_for, p_against = (up, down) if better == "higher" else (down, up)
    return _decision(s, p_for, p_against, f"{better} than {_shown(s, z):g}")


def non_inferiority(s: Sample, better: str, margin: float) -> Decision:
    """Not worse than no difference by more than ``margin`` (a ratio: by a factor
    ``1 + margin``): higher is better -> the mean exceeds ``-margin``; supported when that
    one-sided test rejects, contradicted when the mean lies significantly below it."""
    if s.ratio:
        edge = math.log1p(margin) * (-1 if better == "higher" else 1)
    else:
        edge = -margin if better == "higher" else margin
    up, down = s.p_greater(edge), s.p_less(edge)
    p_for, p_against = (up, down) if better == "higher" else (down, up)
    return _decision(s, p_for, p_against, f"non-inferiority, margin {margin:g}")


def equivalence(s: Sample, margin: float) -> Decision:
    """Within ``+-margin`` of no difference (a ratio: within a factor ``1 + margin``): two
    one-sided tests (supported when both reject, i.e. the 95% interval lies inside the
    margins); contradicted when the mean lies significantly outside them."""
    edge = math.log1p(margin) if s.ratio else margin
    p_for = max(s.p_greater(-edge), s.p_less(edge))
    p_against = min(s.p_less(-edge), s.p_greater(edge))
    return _decision(s, p_for, p_against, f"equivalence (TOST), margin {margin:g}")


def sign(differences: np.ndarray, better: str,
         why: str = "a diverged run counts as the worst value") -> Decision:
    """Superiority by the one-sided sign test (exact binomial) of the pairs on the claimed
    side against those on the other; ties (equal values, or inf - inf) are left out, as in
    any sign test. For paired differences that are infinite (a diverged run's loss counts as
    the worst value, +inf, not as missing data) and for paired 0/1 outcomes (divergence: then
    it is McNemar's exact test, on the discordant pairs). Its estimate is the median
    difference (NaN when infinite: no finite effect to show)."""
    d = np.asarray(differences, dtype=float)
    up, down = int((d > 0).sum()), int((d < 0).sum())
    n = up + down  # the pairs that differ; the others are ties
    wins, losses = (up, down) if better == "higher" else (down, up)
    if n:
        p_for = stats.binomtest(wins, n, 0.5, alternative="greater").pvalue
        p_against = stats.binomtest(losses, n, 0.5, alternative="greater").pvalue
    else:
        p_for = p_against = 1.0
    med = float(np.median(d[~np.isnan(d)])) if (~np.isnan(d)).any() else math.nan
    est = med if math.isfinite(med) else math.nan
    text = (f"{better} in {wins} of {len(d)} pairs, the other way in {losses}, "
            f"{len(d) - n} tied (sign test: {why}; n={len(d)})")
    return Decision(decide(p_for, p_against, len(d)), p_for, p_against, est, math.nan,
                    math.nan, len(d), text)


def bounds(s: Sample, low: float, high: float, inside: bool = True,
           upper: Sample | None = None) -> Decision:
    """The mean of the values (one arm's own, not a difference; a ratio sample: the geometric
    mean, the bounds on the shown scale, > 0) within ``[low, high]``
    (``inside``; TOST against the bounds: supported when both one-sided tests reject) or
    outside it (supported when it lies significantly beyond either bound). With ``upper``,
    ``s`` is the lowest of several quantities (e.g. layers) and ``upper`` the highest."""
    top = s if upper is None else upper
    lo, hi = _on_scale(s, low), _on_scale(s, high)
    if s.n and top.n and np.ptp(s.values) == 0 and np.ptp(top.values) == 0:
        # values without spread (e.g. no dead unit in any seed): the bounds are inclusive
        inside_ = lo <= s.values[0] and top.values[0] <= hi
        p_in, p_out = (0.0, 1.0) if inside_ else (1.0, 0.0)
    else:
        p_in = max(s.p_greater(lo), top.p_less(hi))
        p_out = min(s.p_less(lo), top.p_greater(hi))
    p_for, p_against = (p_in, p_out) if inside else (p_out, p_in)
    what = (f"{'geometric mean ' if s.ratio else ''}{'within' if inside else 'outside'} "
            f"[{low:g}, {high:g}]")
    return _decision(s, p_for, p_against, what)


def trend(table: np.ndarray, increasing: bool = True,
          levels: Sequence[str] = ()) -> Decision:
    """A monotone trend across the columns of ``table`` (seeds x ordered levels; rows with a
    NaN left out): Page's L test (``scipy.stats.page_trend_test``) for the claimed direction
    and for the opposite; the effect is the mean over seeds of Spearman's rho between level
    order and value (+1: perfectly increasing), with its t interval."""
    t = np.asarray(table, dtype=float)
    t = t[np.all(np.isfinite(t), axis=1)] if t.ndim == 2 else np.empty((0, 0))
    n, k = t.shape if t.ndim == 2 else (0, 0)
    what = f"Page's trend test over {k} levels" + (f" ({' < '.join(levels)})" if levels else "")
    if n < 2 or k < 3:
        return Decision(UNCLEAR, math.nan, math.nan, math.nan, math.nan, math.nan, n,
                        f"too few seeds or levels for a trend ({what}, n={n})")
    up = float(stats.page_trend_test(t).pvalue)
    down = float(stats.page_trend_test(t[:, ::-1]).pvalue)
    order = np.arange(k)
    rho = np.array([_spearman(order, row) for row in t])
    rs = Sample(rho if increasing else -rho)
    p_for, p_against = (up, down) if increasing else (down, up)
    low, high = rs.interval()
    low, high = max(low, -1.0), min(high, 1.0)  # (a t interval of a correlation: clipped)
    text = (f"Spearman rho {'' if increasing else '(decreasing) '}{rs.estimate:+.3f} "
            f"[{low:+.3f}, {high:+.3f}] ({what}, L p={p_for:.3g}, n={n})")
    return Decision(decide(p_for, p_against, n), p_for, p_against, rs.estimate, low, high, n,
                    text)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


# --------------------------------------------------------------------------- quantifiers

def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down procedure: which of the nulls behind ``pvalues`` are rejected at
    family-wise level ``alpha`` (NaN p-values are never rejected and count in the family)."""
    p = np.asarray(pvalues, dtype=float)
    k = p.size
    rejected = [False] * k
    for rank, i in enumerate(np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")):
        if not p[i] <= alpha / (k - rank):
            break
        rejected[i] = True
    return rejected


@dataclass(frozen=True)
class Combined:
    """The verdict of a claim over several comparisons and the words that say how."""

    verdict: str
    text: str
    n: int  # the fewest pairs behind a comparison
    decisions: tuple[Decision, ...] = ()


def every(decisions: Sequence[Decision]) -> Combined:
    """Every comparison as claimed: Holm over the k claimed-side p-values (supported when all
    are rejected) and over the k opposite-side ones (contradicted when any is rejected)."""
    ds = list(decisions)
    if not ds:
        return Combined(UNCLEAR, "no comparison", 0)
    n = min(d.n for d in ds)
    if n < MIN_SEEDS_FOR_VERDICT:
        return Combined(UNCLEAR, f"too few seeds for a verdict (n={n})", n, tuple(ds))
    yes = holm([d.p_for for d in ds])
    no = holm([d.p_against for d in ds])
    verdict = AS_EXPECTED if all(yes) else OPPOSITE if any(no) else UNCLEAR
    text = (f"Holm over {len(ds)}: {sum(yes)} of {len(ds)} as claimed, {sum(no)} the other "
            "way" if len(ds) > 1 else "one comparison")
    return Combined(verdict, text, n, tuple(ds))


def pooled(rows: Sequence[np.ndarray], decide, ratio: bool = False) -> Combined:
    """One test of the comparisons pooled: ``rows`` are their paired values over the same
    seeds (column j: seed j; a seed with a NaN in any row is left out); per seed, the mean
    over the comparisons, decided by ``decide`` (a form applied to a :class:`Sample`)."""
    if not len(rows):
        return Combined(UNCLEAR, "no comparison", 0)
    table = np.vstack([np.asarray(r, dtype=float) for r in rows])
    table = table[:, np.all(np.isfinite(table), axis=0)]
    d = decide(Sample(table.mean(axis=0), ratio=ratio))
    return Combined(d.verdict, f"pooled over {len(rows)} comparisons: {d.text}", d.n, (d,))


# --------------------------------------------------------------------- across groups

@dataclass(frozen=True)
class Heterogeneity:
    """A paired effect across groups (e.g. class pairs), one random-effects model (DerSimonian
    and Laird): ``mean`` over groups with its interval, the between-group standard deviation
    ``tau``, Cochran's Q test of heterogeneity (``p_q``), and the 95% prediction interval of a
    new group's effect (Higgins, Thompson & Spiegelhalter 2009)."""

    mean: float
    mean_low: float
    mean_high: float
    tau: float
    p_q: float
    predict_low: float
    predict_high: float
    groups: int


def heterogeneity(groups: Sequence[np.ndarray], confidence: float = CONFIDENCE
                  ) -> Heterogeneity:
    """The random-effects summary of per-group samples of a paired effect (each group's values
    over its seeds; groups with fewer than 2 values left out)."""
    gs = [np.asarray(g, dtype=float) for g in groups]
    gs = [g[np.isfinite(g)] for g in gs]
    gs = [g for g in gs if g.size >= 2]
    k = len(gs)
    if k < 3:
        nan = math.nan
        return Heterogeneity(nan, nan, nan, nan, nan, nan, nan, k)
    m = np.array([g.mean() for g in gs])
    # a group whose seeds agree exactly still has the resolution of its values: a floor
    floor = max(1e-12, float(np.median([g.var(ddof=1) for g in gs])) * 1e-6)
    v = np.array([max(g.var(ddof=1), floor) / g.size for g in gs])
    w = 1 / v
    fixed = np.sum(w * m) / np.sum(w)
    q = float(np.sum(w * (m - fixed) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w ** 2) / np.sum(w)))
    ws = 1 / (v + tau2)
    mu = float(np.sum(ws * m) / np.sum(ws))
    se = math.sqrt(1 / np.sum(ws))
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    t = stats.t.ppf(1 - (1 - confidence) / 2, k - 2)
    half = t * math.sqrt(tau2 + se ** 2)
    return Heterogeneity(mu, mu - z * se, mu + z * se, math.sqrt(tau2),
                         float(stats.chi2.sf(q, k - 1)), mu - half, mu + half, k)


def not_consistently_positive(h: Heterogeneity) -> str:
    """The verdict of "the effect is not consistently positive across groups", one test:
    as expected when the groups differ (Cochran's Q, p < 0.05) and a new group's effect may be
    <= 0 (the prediction interval reaches 0 or below); opposite when the prediction interval
    lies above 0 (every group's effect expected positive); unclear otherwise."""
    if h.groups < 3 or math.isnan(h.p_q):
        return UNCLEAR
    if h.predict_low > 0:
        return OPPOSITE
    return AS_EXPECTED if h.p_q < 2 * ALPHA and h.predict_low <= 0 else UNCLEAR
