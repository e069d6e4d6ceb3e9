"""Censoring-aware summaries of steps-to-target.

A run either reached the target (``reached[i]`` true, at step ``times[i]``) or was
*censored*: it had not reached it by step ``censor_at[i]`` (the budget, or the last step
observed), so all we know is that its time is larger than ``censor_at[i]``.  Nothing here
imputes infinity or the budget as if it were a measurement.

- ``kaplan_meier``: product-limit estimate of S(s) = fraction of runs that have NOT
  reached the target by step s.  Runs censored at an event step count as at risk there.
- ``km_median``: smallest event step with S(s) <= 0.5 (NaN = "not reached" when S never
  drops that low).  Its interval is the Brookmeyer-Crowley style inversion of the pointwise
  Greenwood band, as in R's ``survfit``: low = first step where the lower band is <= 0.5,
  high = first step where the upper band is <= 0.5 (NaN = unbounded, "> budget").
  The band uses the log-log transform by default (``conf_type="log"`` and ``"plain"`` are
  available).  Note: when S is exactly 0.5 on an interval we keep the smallest step,
  where recent R versions take the midpoint.
- ``paired_censored_comparison``: seed-paired comparison of two arms (see its docstring).
- ``steps_of_runs``: the (times, reached, censor_at) triple of a table of runs in the common
  result vocabulary (``steps_to_target``, ``reached``, ``diverged``, ``max_steps``,
  ``steps_done``): the one place that decides how a run is censored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .flags import flag
from .intervals import DEFAULT_RESAMPLES, DEFAULT_SEED
from .verdicts import MIN_SEEDS_FOR_VERDICT, TOO_FEW_SEEDS, verdict_from_interval

CONF_TYPES = ("bootstrap", "log-log", "log", "plain")
STEP_LABELS = ("fewer steps", "more steps", "no clear difference")


@dataclass(frozen=True, eq=False)
class KMCurve:
    """Kaplan-Meier step function.

    times: distinct steps at which some run reached the target (ascending);
    survival: S just after each of those steps (fraction of runs not yet reached);
    n_at_risk, n_events: runs at risk / reaching the target at each step;
    n: runs; n_reached: runs that reached the target.  S = 1 before ``times[0]`` and is
    held at its last value after the last step (where it is really unknown).
    """

    times: np.ndarray
    survival: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    n: int
    n_reached: int

    def survival_at(self, steps) -> np.ndarray | float:
        """S(s): estimated fraction of runs that have not reached the target by step s."""
        idx = np.searchsorted(self.times, np.asarray(steps, dtype=float), side="right")
        out = np.concatenate(([1.0], self.survival))[idx]
        return float(out) if np.ndim(out) == 0 else out

    def fraction_reached(self, steps) -> np.ndarray | float:
        """1 - S(s): estimated fraction of runs that reached the target by step s."""
        return 1.0 - self.survival_at(steps)


@dataclass(frozen=True)
class CensoredSummary:
    """KM median steps-to-target.

    median: NaN when not reached (S never <= 0.5); low, high: confidence interval, NaN
    meaning unbounded / undefined (high NaN = "> budget"); n: runs; n_reached: runs that
    reached the target.
    """

    median: float
    low: float
    high: float
    n: int
    n_reached: int


@dataclass(frozen=True)
class CensoredComparison:
    """Seed-paired comparison of steps-to-target, arm a relative to arm b.

    ratio: KM median of a / KM median of b (NaN if either median is not reached, or b's
    median is 0);
    low, high: paired-bootstrap percentile interval of the ratio (low 0.0 = unbounded
    below, high NaN = unbounded above; both NaN when the ratio is NaN); p_value: two-sided sign test over the decided pairs;
    n: pairs; n_pairs_a_faster, n_pairs_b_faster: pairs decided for a / for b;
    n_ties: pairs with equal times or undecidable because of censoring;
    verdict: "fewer steps" / "more steps" / "no clear difference" (for a), or
    ``TOO_FEW_SEEDS`` below ``MIN_SEEDS_FOR_VERDICT`` pairs;
    n_resamples_undefined: bootstrap resamples in which a median was not reached.
    """

    ratio: float
    low: float
    high: float
    p_value: float
    n: int
    n_pairs_a_faster: int
    n_pairs_b_faster: int
    n_ties: int
    verdict: str
    n_resamples_undefined: int = 0


def steps_of_runs(df) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, reached, censor_at) of the runs of a table (a pandas DataFrame with
    ``steps_to_target``, ``reached``, and ``max_steps`` or ``steps_done``; ``diverged`` when
    it has it). A run that did not reach the target, or diverged, is censored at its budget
    (``max_steps``; where it stopped, if later), wherever it stopped: a run that diverged or
    was stopped early has failed for good and stays among the runs at risk of every step of
    the budget (censoring it where it stopped would drop it from the Kaplan-Meier risk set
    and make its arm look faster). Nothing is imputed: an unreached run's time is NaN.
    Flags may be booleans or their text (a CSV read back)."""
    import pandas as pd

    times = pd.to_numeric(df["steps_to_target"], errors="coerce").to_numpy(float)
    reached = flag(df["reached"]) & ~np.isnan(times)
    if "diverged" in df:
        reached &= ~flag(df["diverged"])
    budgets = [pd.to_numeric(df[c], errors="coerce").to_numpy(float)
               for c in ("max_steps", "steps_done") if c in df]
    censor_at = np.fmax.reduce(budgets) if len(budgets) > 1 else budgets[0]
    return np.where(reached, times, np.nan), reached, censor_at


def _observed(times, reached, censor_at) -> tuple[np.ndarray, np.ndarray]:
    """Observed step per run (reach step, or censoring step) and the event flag."""
    reached = np.asarray(reached, dtype=bool).ravel()
    times = np.asarray(times, dtype=float).ravel()
    censor = np.broadcast_to(np.asarray(censor_at, dtype=float), reached.shape)
    if times.shape != reached.shape:
        raise ValueError(f"times and reached differ in length: {times.size} vs {reached.size}")
    obs = np.where(reached, times, censor)
    if np.isnan(obs).any():
        raise ValueError("missing step: NaN time for a reached run or NaN censor_at")
    return obs, reached


def _km(obs: np.ndarray, event: np.ndarray):
    """Event steps, survival, at-risk and event counts of the product-limit estimator."""
    t, d = np.unique(obs[event], return_counts=True)
    r = obs.size - np.searchsorted(np.sort(obs), t, side="left")  # runs with obs >= t
    return t, np.cumprod(1.0 - d / r), r.astype(float), d.astype(float)


def kaplan_meier(times, reached, censor_at) -> KMCurve:
    """Kaplan-Meier curve of the fraction of runs that have not yet reached the target."""
    obs, event = _observed(times, reached, censor_at)
    t, s, r, d = _km(obs, event)
    return KMCurve(t, s, r.astype(int), d.astype(int), int(obs.size), int(event.sum()))


def _first_at_or_below(t: np.ndarray, curve: np.ndarray, level: float = 0.5) -> float:
    hit = np.flatnonzero(curve <= level + 1e-12)
    return float(t[hit[0]]) if hit.size else math.nan


def _median(obs: np.ndarray, event: np.ndarray) -> float:
    t, s, _, _ = _km(obs, event)
    return _first_at_or_below(t, s)


def _fast_km_medians(obs: np.ndarray, event: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """KM medians of many resamples at once when every censoring step lies at or beyond every
    reach step (the budget case): then the KM curve is the plain empirical one and its median
    is the ceil(n/2)-th smallest step, or "not reached" (NaN) if that one is censored.
    Returns None when that condition does not hold (the caller then loops)."""
    if event.any() and (~event).any() and obs[~event].min() < obs[event].max():
        return None
    n = idx.shape[1]
    vals = np.sort(np.where(event, obs, np.inf)[idx], axis=1)[:, math.ceil(n / 2) - 1]
    return np.where(np.isinf(vals), np.nan, vals)


def resampled_km_medians(times, reached, censor, idx: np.ndarray) -> np.ndarray:
    """KM median steps of each resample ``idx[k]`` (rows of run indices); NaN = not reached."""
    obs, event = _observed(times, reached, censor)
    fast = _fast_km_medians(obs, event, idx)
    if fast is not None:
        return fast
    return np.array([_median(obs[i], event[i]) for i in idx])


def _bootstrap_median_ci(obs, event, confidence, n_resamples, seed) -> tuple[float, float]:
    """Percentile interval of the KM median over resampled runs; a resample whose median is
    not reached counts as +inf (so an upper limit in that tail is unbounded: NaN)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, obs.size, size=(n_resamples, obs.size))
    med = resampled_km_medians(obs, event, obs, idx)
    med = np.where(np.isnan(med), np.inf, med)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(med, [alpha, 1 - alpha], method="inverted_cdf")
    return (float(low) if np.isfinite(low) else math.nan,
            float(high) if np.isfinite(high) else math.nan)


def km_median(
    times, reached, censor_at, confidence: float = 0.95, conf_type: str = "bootstrap",
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
) -> CensoredSummary:
    """Kaplan-Meier median steps-to-target with a confidence interval.

    ``conf_type="bootstrap"`` (default): percentile interval of the KM median over runs
    resampled with replacement (fixed ``seed``); resamples whose median is not reached count
    as beyond the budget, so the upper limit is NaN ("> budget") when more than the tail
    fraction of them do. Unlike the Greenwood band it stays bounded when every run reached.

    The other types are Brookmeyer-Crowley style intervals: the pointwise band for S uses Greenwood's variance ``v = sum d / (r (r - d))`` with the
    transform ``conf_type``: "log-log" (default) ``S ** exp(+/- z sqrt(v) / log S)``;
    "log" ``S * exp(-/+ z sqrt(v))``; "plain" ``S -/+ z S sqrt(v)``.  Bounds are clipped to
    [0, 1].  Where S = 0 the band is [0, 1] (R reports NA there), so a curve that falls
    straight to 0 has an unbounded upper limit: e.g. every run reaching at step 100
    gives median 100 with interval [100, NaN].  See the module docstring for the inversion.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    obs, event = _observed(times, reached, censor_at)
    n, n_reached = int(obs.size), int(event.sum())
    if n_reached == 0:
        return CensoredSummary(math.nan, math.nan, math.nan, n, 0)
    t, s, r, d = _km(obs, event)
    if conf_type == "bootstrap":
        low, high = _bootstrap_median_ci(obs, event, confidence, n_resamples, seed)
        return CensoredSummary(_first_at_or_below(t, s), low, high, n, n_reached)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.cumsum(d / (r * (r - d))))  # sd of log S (inf once S hits 0)
        if conf_type == "log-log":
            lower = s ** np.exp(-z * se / np.log(s))
            upper = s ** np.exp(z * se / np.log(s))
        elif conf_type == "log":
            lower, upper = s * np.exp(-z * se), s * np.exp(z * se)
        else:
            lower, upper = s - z * s * se, s + z * s * se
    # Where S = 0 (every run still at risk reached) the variance is infinite: the lower
    # band is 0 and the upper band unknown (1), so the upper limit stays unbounded there.
    lower = np.where(s > 0, np.clip(np.nan_to_num(lower, nan=0.0), 0, 1), 0.0)
    upper = np.where(s > 0, np.clip(np.nan_to_num(upper, nan=1.0), 0, 1), 1.0)
    return CensoredSummary(
        _first_at_or_below(t, s),
        _first_at_or_below(t, lower),
        _first_at_or_below(t, upper),
        n,
        n_reached,
    )


def _logrank(oa, ea, ob, eb, alternative: str = "two-sided") -> float:
    """Log-rank p-value of two censored samples (scipy's ``alternative``: "greater", a's rate
    of reaching the target is higher, a reaches it sooner; "less", later); 1.0 when nothing
    reached."""
    if not (ea.any() or eb.any()):
        return 1.0
    data = [stats.CensoredData(uncensored=o[e], right=o[~e]) for o, e in ((oa, ea), (ob, eb))]
    p = stats.logrank(*data, alternative=alternative).pvalue
    return float(p) if np.isfinite(p) else 1.0


def logrank_sides(times_a, reached_a, censor_a, times_b, reached_b, censor_b
                  ) -> tuple[float, float]:
    """One-sided log-rank p-values (a reaches the target sooner, a reaches it later): the
    evidence when a median is not reached and no ratio of medians exists."""
    oa, ea = _observed(times_a, reached_a, censor_a)
    ob, eb = _observed(times_b, reached_b, censor_b)
    return _logrank(oa, ea, ob, eb, "greater"), _logrank(oa, ea, ob, eb, "less")


def resampled_log_ratio(times_a, reached_a, censor_a, times_b, reached_b, censor_b,
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
                        ) -> tuple[float, np.ndarray]:
    """log(KM median a / KM median b) and its value in ``n_resamples`` paired bootstrap
    resamples of the seeds (+inf where a's median is not reached, -inf where b's is not, NaN
    where neither is). The point is NaN when a median is not reached."""
    oa, ea = _observed(times_a, reached_a, censor_a)
    ob, eb = _observed(times_b, reached_b, censor_b)
    if oa.shape != ob.shape:
        raise ValueError(f"arms differ in number of seeds: {oa.size} vs {ob.size}")
    n = oa.size
    ma, mb = (_median(oa, ea), _median(ob, eb)) if n else (math.nan, math.nan)
    if not (ma > 0 and mb > 0):  # NaN (not reached) compares False
        return math.nan, np.empty(0)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    ra = resampled_km_medians(oa, ea, oa, idx)
    rb = resampled_km_medians(ob, eb, ob, idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.log(np.where(np.isnan(ra), np.inf, ra)) - np.log(
            np.where(np.isnan(rb), np.inf, rb))
    return math.log(ma / mb), boot


def paired_censored_comparison(
    times_a,
    reached_a,
    censor_a,
    times_b,
    reached_b,
    censor_b,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> CensoredComparison:
    """Compare steps-to-target of arms a and b, paired by seed (index i = same seed).

    Pairs (Gehan-style): both reached -> the smaller step wins (equal = tie); one reached at
    step t and the other censored at c >= t -> the one that reached wins; otherwise (both
    censored, or censored before the other's step) the pair is undecided and counted in
    ``n_ties``.  p-value: two-sided sign test (``scipy.stats.binomtest``) on the decided
    pairs, 1.0 when none is decided.

    ratio: KM median a / KM median b.  Interval: percentile interval of the ratio over
    ``n_resamples`` paired bootstrap resamples of seed indices (fixed ``seed``).  In a
    resample where a's median is not reached the ratio ranks as +inf, where b's is not
    reached as 0, where neither is reached as +inf for the upper and 0 for the lower
    bound (conservative).  A bound that lands there is NaN: unbounded below (never the
    impossible ratio 0) or above.  Such resamples are
    counted in ``n_resamples_undefined``.  If a point median is not reached, ratio, low and
    high are NaN.

    Verdict rule: with a defined ratio, "fewer steps" if high < 1, "more steps" if
    low > 1, else "no clear difference" (``verdict_from_interval``, NaN = unbounded).
    With an undefined ratio (a median not reached, e.g. plain SGD never reaching the target),
    fall back on the log-rank test of the two arms (``scipy.stats.logrank``, unpaired, so it
    can decide with 5 seeds where the sign test cannot go below p = 0.0625): p_logrank <
    1 - confidence decides for the arm that won more pairs, else "no clear difference".  Fewer
    than ``MIN_SEEDS_FOR_VERDICT`` (5) pairs always give ``TOO_FEW_SEEDS``: their bootstrap
    interval can exclude 1 (even with zero width) on an agreement of the seeds that chance
    alone produces often (see ``verdicts.MIN_SEEDS_FOR_VERDICT``).
    """
    oa, ea = _observed(times_a, reached_a, censor_a)
    ob, eb = _observed(times_b, reached_b, censor_b)
    if oa.shape != ob.shape:
        raise ValueError(f"arms differ in number of seeds: {oa.size} vs {ob.size}")
    n = int(oa.size)
    a_wins = (ea & eb & (oa < ob)) | (ea & ~eb & (oa <= ob))
    b_wins = (ea & eb & (ob < oa)) | (eb & ~ea & (ob <= oa))
    n_a, n_b = int(a_wins.sum()), int(b_wins.sum())
    n_decided = n_a + n_b
    p = float(stats.binomtest(n_a, n_decided, 0.5).pvalue) if n_decided else 1.0

    ratio = low = high = math.nan
    n_undef = 0
    if n > 0:
        ma, mb = _median(oa, ea), _median(ob, eb)
        ratio = ma / mb if mb > 0 and not math.isnan(ma) else math.nan  # NaN > 0 is False
        if not math.isnan(ratio):
            idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
            ra = np.array([_median(oa[i], ea[i]) for i in idx])
            rb = np.array([_median(ob[i], eb[i]) for i in idx])
            with np.errstate(divide="ignore", invalid="ignore"):
                boot = ra / rb
            undef_a, undef_b = np.isnan(ra), np.isnan(rb)
            n_undef = int(np.sum(undef_a | undef_b))
            boot[undef_a & ~undef_b] = math.inf
            boot[undef_b & ~undef_a] = 0.0
            both = np.isnan(boot)  # neither median reached (or 0 / 0)
            alpha = 1 - confidence
            low = float(np.quantile(np.where(both, 0.0, boot), alpha / 2, method="lower"))
            high = float(
                np.quantile(np.where(both, math.inf, boot), 1 - alpha / 2, method="higher")
            )
            high = math.nan if math.isinf(high) else high
            low = math.nan if low == 0.0 else low  # unbounded below: never a ratio of 0

    if n < MIN_SEEDS_FOR_VERDICT:
        verdict = TOO_FEW_SEEDS
    elif not math.isnan(ratio):
        verdict = verdict_from_interval(low, high, better="lower", null=1.0, labels=STEP_LABELS)
    elif _logrank(oa, ea, ob, eb) < 1 - confidence and n_a != n_b:
        verdict = STEP_LABELS[0] if n_a > n_b else STEP_LABELS[1]
    else:
        verdict = STEP_LABELS[2]
    return CensoredComparison(ratio, low, high, p, n, n_a, n_b, n - n_decided, verdict, n_undef)
