import math

import numpy as np
import pytest
from scipy import stats

from dnnbench.stats import (
    format_interval,
    kaplan_meier,
    km_median,
    mean_ci,
    paired_censored_comparison,
    paired_difference,
    paired_log_ratio,
    verdict_from_interval,
)

DATA = [2.0, 4.0, 4.0, 5.0, 7.0, 9.0, 10.0, 15.0]

# R survival's `aml` data (Miller 1981): time, 1 = relapse observed.
AML_MAINTAINED = ([9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161], [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])
AML_NONMAINTAINED = ([5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45], [1] * 5 + [0] + [1] * 6)


def _km_args(times, events):
    t = np.array(times, dtype=float)
    reached = np.array(events, dtype=bool)
    return np.where(reached, t, np.nan), reached, t


# ---- mean_ci -------------------------------------------------------------------------


def test_mean_ci_t_matches_hand_computation():
    x = np.array(DATA)
    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
    ci = mean_ci(DATA + [math.nan], method="t")
    assert ci.n == 8
    assert ci.estimate == pytest.approx(7.0)
    assert ci.low == pytest.approx(7.0 - half, rel=1e-12)
    assert ci.high == pytest.approx(7.0 + half, rel=1e-12)


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_mean_ci_bootstrap_matches_scipy_with_fixed_seed(method):
    ref = stats.bootstrap(
        (np.array(DATA),),
        np.mean,
        n_resamples=2000,
        rng=np.random.default_rng(0),
        method="BCa" if method == "bca" else "percentile",
    ).confidence_interval
    ci = mean_ci(DATA, method=method)
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high))
    assert ci.low < 7.0 < ci.high
    assert mean_ci(DATA, method=method) == ci  # reproducible


@pytest.mark.parametrize("method", ["bca", "percentile", "t"])
@pytest.mark.parametrize("values", [[3.5], [2.0, 2.0, 2.0, 2.0], [1.0, math.nan]])
def test_mean_ci_degenerate_is_the_point(method, values):
    ci = mean_ci(values, method=method)
    assert ci.low == ci.estimate == ci.high == np.nanmean(values)


def test_mean_ci_two_values_is_finite():
    ci = mean_ci([1.0, 2.0])
    assert ci.n == 2 and 1.0 <= ci.low <= 1.5 <= ci.high <= 2.0


def test_mean_ci_empty_is_nan():
    ci = mean_ci([math.nan])
    assert ci.n == 0 and math.isnan(ci.estimate)


# ---- paired_difference / paired_log_ratio -------------------------------------------


def test_paired_difference_wilcoxon_and_fraction():
    a = np.array([0.91, 0.88, 0.95, 0.90, 0.93, 0.89, 0.94, 0.87, math.nan])
    b = np.array([0.90, 0.85, 0.90, 0.91, 0.88, 0.86, 0.90, 0.80, 0.5])
    r = paired_difference(a, b)
    d = a[:-1] - b[:-1]
    assert r.n == 8
    assert r.p_value == stats.wilcoxon(d).pvalue
    assert r.frac_a_better == pytest.approx(7 / 8)
    assert r.mean_diff == pytest.approx(d.mean())
    assert r.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert r.low < r.mean_diff < r.high
    greater = paired_difference(a, b, alternative="greater")
    assert greater.p_value == stats.wilcoxon(d, alternative="greater").pvalue
    assert greater.p_value < r.p_value


def test_paired_difference_t_test():
    a, b = np.array(DATA), np.array(DATA[::-1]) * 0.9
    r = paired_difference(a, b, test="t")
    assert r.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)


@pytest.mark.parametrize("test", ["wilcoxon", "t"])
def test_paired_difference_degenerate(test):
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], test=test)
    assert (same.mean_diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (same.frac_a_better, same.effect_size) == (0.0, 0.0)
    one = paired_difference([2.0], [1.0], test=test)
    assert (one.low, one.high, one.p_value, one.frac_a_better) == (1.0, 1.0, 1.0, 1.0)
    shift = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], test=test)
    assert shift.effect_size == math.inf and shift.low == shift.high == 1.0
    assert not math.isnan(shift.p_value)


def test_paired_log_ratio_constant_ratio():
    r = paired_log_ratio([200.0, 400.0, 300.0, math.nan], [100.0, 200.0, 150.0, 10.0])
    assert r.n == 3
    assert r.estimate == pytest.approx(2.0) and r.low == pytest.approx(2.0)
    assert r.high == pytest.approx(2.0)


def test_paired_log_ratio_is_geometric_mean():
    a, b = np.array([1.0, 4.0, 2.0, 3.0]), np.array([2.0, 1.0, 2.0, 1.0])
    r = paired_log_ratio(a, b)
    assert r.estimate == pytest.approx(np.exp(np.mean(np.log(a / b))))
    assert r.low < r.estimate < r.high


# ---- Kaplan-Meier --------------------------------------------------------------------


def test_kaplan_meier_hand_computed():
    # steps 1..5; runs 2 and 4 censored (not reached by steps 2 and 4).
    times = [1, math.nan, 3, math.nan, 5]
    reached = [True, False, True, False, True]
    curve = kaplan_meier(times, reached, [10, 2, 10, 4, 10])
    assert list(curve.times) == [1, 3, 5]
    assert list(curve.n_at_risk) == [5, 3, 1]
    # S(1) = 4/5; S(3) = 4/5 * 2/3; S(5) = 0.
    np.testing.assert_allclose(curve.survival, [0.8, 8 / 15, 0.0])
    np.testing.assert_allclose(curve.survival_at([0, 1, 2.5, 4, 6]), [1, 0.8, 0.8, 8 / 15, 0])
    assert curve.fraction_reached(3) == pytest.approx(7 / 15)
    assert (curve.n, curve.n_reached) == (5, 3)


def test_kaplan_meier_censored_at_event_step_is_at_risk():
    curve = kaplan_meier([2, math.nan], [True, False], 2)
    assert list(curve.n_at_risk) == [2] and curve.survival[0] == pytest.approx(0.5)


def test_km_median_without_censoring_is_km_rule():
    assert km_median([30, 10, 50, 20, 40], [True] * 5, 100).median == 30.0
    # even n: smallest step with S <= 0.5 (the lower middle value)
    even = km_median([10, 20, 30, 40], [True] * 4, 100)
    assert even.median == 20.0 and even.n_reached == 4
    assert even.low <= 20.0 and (math.isnan(even.high) or even.high >= 20.0)


def test_km_median_matches_r_survfit_log_interval():
    # R: survfit(Surv(time, status) ~ x, aml) -> 31 (18, NA) and 23 (8, NA)
    m = km_median(*_km_args(*AML_MAINTAINED), conf_type="log")
    assert (m.median, m.low, math.isnan(m.high), m.n, m.n_reached) == (31, 18, True, 11, 7)
    nm = km_median(*_km_args(*AML_NONMAINTAINED), conf_type="log")
    assert (nm.median, nm.low, math.isnan(nm.high)) == (23, 8, True)


def test_km_median_log_log_interval_hand_computed():
    # Nonmaintained arm: S(30) = 0.292 -> upper band 0.561; S(33) = 0.194 -> 0.461.
    nm = km_median(*_km_args(*AML_NONMAINTAINED), conf_type="log-log")
    assert (nm.median, nm.low, nm.high) == (23, 5, 33)


def test_km_median_not_reached():
    r = km_median([100, 200, math.nan, math.nan, math.nan], [True, True, False, False, False], 500)
    assert math.isnan(r.median) and math.isnan(r.high)
    assert (r.n, r.n_reached) == (5, 2)
    none = km_median([math.nan] * 3, [False] * 3, 500)
    assert math.isnan(none.median) and none.n_reached == 0


def test_km_median_all_equal_greenwood_is_bounded_below_only():
    r = km_median([100.0] * 5, [True] * 5, 500, conf_type="log-log")
    assert (r.median, r.low) == (100.0, 100.0) and math.isnan(r.high)


def test_km_median_bootstrap_interval():
    r = km_median([100.0] * 5, [True] * 5, 500)  # default: bootstrap over runs
    assert (r.median, r.low, r.high) == (100.0, 100.0, 100.0)
    r = km_median([10, 20, 30, 40, 50, 60, 70, 80, 90], [True] * 9, 500)
    assert r.median == 50 and 20 <= r.low < 50 < r.high <= 80
    # most runs censored: the upper limit is beyond the budget (NaN), never the budget itself
    r = km_median([10, 20, 30, math.nan, math.nan], [True, True, True, False, False], 500)
    assert r.median == 30 and math.isnan(r.high)
    # reproducible (fixed seed)
    assert km_median([10, 20, 35, 40], [True] * 4, 100) == km_median([10, 20, 35, 40], [True] * 4, 100)


# ---- paired_censored_comparison ------------------------------------------------------


def _arm(times, budget=1000.0):
    t = np.asarray(times, dtype=float)
    return np.where(t <= budget, t, np.nan), t <= budget, budget


def test_censored_comparison_clearly_faster():
    r = paired_censored_comparison(*_arm([100] * 10), *_arm([200] * 10))
    assert r.ratio == 0.5 and r.high < 1.0
    assert (r.n, r.n_pairs_a_faster, r.n_pairs_b_faster, r.n_ties) == (10, 10, 0, 0)
    assert r.p_value == pytest.approx(stats.binomtest(10, 10).pvalue)
    assert r.verdict == "fewer steps"
    one = paired_censored_comparison(*_arm([100]), *_arm([200]))
    assert one.ratio == 0.5 and one.verdict == "too few seeds for a verdict"
    slower = paired_censored_comparison(*_arm([200] * 10), *_arm([100] * 10))
    assert slower.verdict == "more steps" and slower.ratio == 2.0


def test_censored_comparison_needs_five_seeds_for_a_verdict():
    # every seed halves its steps: a zero-width interval at 0.5, whatever the number of seeds;
    # with 2-4 seeds that agreement is too likely by chance (2 / 2^n) to carry a verdict
    for n in (2, 3, 4):
        r = paired_censored_comparison(*_arm([10] * n), *_arm([20] * n))
        assert (r.ratio, r.low, r.high) == (0.5, 0.5, 0.5)
        assert r.verdict == "too few seeds for a verdict", n
    assert paired_censored_comparison(*_arm([10] * 5), *_arm([20] * 5)).verdict == "fewer steps"


def test_censored_comparison_identical_arms():
    t = [120, 90, 150, 100, 130, 110, 95, 140]
    r = paired_censored_comparison(*_arm(t), *_arm(t))
    assert r.ratio == 1.0 and r.low == r.high == 1.0
    assert r.n_ties == 8 and r.p_value == 1.0
    assert r.verdict == "no clear difference"


def test_censored_comparison_b_never_reaches():
    r = paired_censored_comparison(
        *_arm([100, 150, 120, 130, 110, 140, 160, 90]), *_arm([2000] * 8)
    )
    assert r.n_pairs_a_faster == 8 and r.n_pairs_b_faster == 0 and r.n_ties == 0
    assert math.isnan(r.ratio) and math.isnan(r.low) and math.isnan(r.high)
    assert r.p_value == pytest.approx(2 * 0.5**8)
    assert r.verdict == "fewer steps"  # sign-test fallback


def test_censored_comparison_undecidable_pairs_are_ties():
    # pair 0: a censored at 50 before b reached at 80 -> undecided; pair 1: both censored.
    r = paired_censored_comparison(
        [math.nan, math.nan, 10],
        [False, False, True],
        [50, 100, 100],
        [80, math.nan, 20],
        [True, False, True],
        [100, 100, 100],
    )
    assert (r.n_pairs_a_faster, r.n_pairs_b_faster, r.n_ties) == (1, 0, 2)
    assert r.verdict == "too few seeds for a verdict"  # 3 pairs


def test_censored_comparison_partly_censored_counts_undefined_resamples():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(5.0, 0.3, 12), rng.lognormal(5.3, 0.3, 12)
    r = paired_censored_comparison(*_arm(a, 200.0), *_arm(b, 200.0))
    assert 0 < r.ratio < 1 and r.n_resamples_undefined > 0
    assert (math.isnan(r.low) or r.low <= r.ratio) and (math.isnan(r.high) or r.high >= r.ratio)
    assert r.low != 0.0  # a resampled ratio never gets the impossible lower bound 0


# ---- verdicts, formatting ---------------------------------------------------------


def test_verdict_from_interval():
    assert verdict_from_interval(0.1, 0.5) == "better"
    assert verdict_from_interval(-0.5, -0.1) == "worse"
    assert verdict_from_interval(-0.1, 0.5) == "no clear difference"
    assert verdict_from_interval(0.0, 0.5) == "no clear difference"
    labels = ("fewer steps", "more steps", "no clear difference")
    assert verdict_from_interval(0.6, 0.9, "lower", 1.0, labels) == "fewer steps"
    assert verdict_from_interval(1.2, math.nan, "lower", 1.0, labels) == "more steps"
    assert verdict_from_interval(0.6, math.nan, "lower", 1.0, labels) == "no clear difference"
    assert verdict_from_interval(0.1, 0.5, n=5) == "better"
    assert verdict_from_interval(0.1, 0.5, n=4) == "too few seeds for a verdict"


def test_format_interval():
    assert format_interval(12.34, 10.06, 14.0) == "12.3 [10.1, 14.0]"
    assert format_interval(500, 300, math.nan, "{:.0f}", unbounded="> budget") == (
        "500 [300, > budget]"
    )
    assert format_interval(math.nan, math.nan, math.nan) == "n/a"


def test_censored_comparison_never_reaching_reference_decides_by_logrank():
    # a reaches at step 1718 in all 5 seeds; b never reaches within 17180 steps
    a = _arm([1718.0] * 5, budget=17180.0)
    b = _arm([math.inf] * 5, budget=17180.0)
    r = paired_censored_comparison(*a, *b)
    assert math.isnan(r.ratio)  # b's median is not reached: no ratio
    assert r.p_value == pytest.approx(2 * 0.5**5)  # the sign test alone could not decide
    assert r.verdict == "fewer steps"
    one_seed_less = paired_censored_comparison(*_arm([1718.0] * 2, 17180.0),
                                               *_arm([math.inf] * 2, 17180.0))
    assert one_seed_less.verdict == "too few seeds for a verdict"  # 2 pairs
