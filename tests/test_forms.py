"""Claim forms (dnnbench.stats.forms) on constructed data whose answer is known: for each form
a case it must support, one it must call inconclusive and one it must call contradicted; the
quantifiers (every with Holm, pooled); and the same forms reached through experiment files'
claims, divergence counted as an outcome."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnnbench.analysis.claims import check_claims
from dnnbench.definition import experiment as definition
from dnnbench.definition.claims import FORM_OF
from dnnbench.stats import forms
from dnnbench.stats.forms import AS_EXPECTED, OPPOSITE, UNCLEAR, Sample

NOISE = np.array([-0.002, 0.001, 0.0, 0.002, -0.001])  # mean 0, sd ~0.0016


def s(mean, noise=NOISE, ratio=False):
    return Sample(mean + noise, ratio=ratio)


@pytest.mark.parametrize("mean, better, verdict", [
    (0.02, "higher", AS_EXPECTED),     # far above 0
    (0.0005, "higher", UNCLEAR),       # within the noise
    (-0.02, "higher", OPPOSITE),       # far below
    (-0.02, "lower", AS_EXPECTED),
])
def test_superiority(mean, better, verdict):
    assert forms.superiority(s(mean), better).verdict == verdict


def test_superiority_of_a_ratio_is_decided_on_the_log_scale_and_shown_as_a_ratio():
    d = forms.superiority(s(math.log(0.5), NOISE, ratio=True), "lower")
    assert d.verdict == AS_EXPECTED and d.estimate == pytest.approx(0.5, rel=1e-6)
    assert 0 < d.low < 0.5 < d.high < 1  # never a ratio bound of 0
    assert d.text.startswith("x0.5 [")


@pytest.mark.parametrize("mean, verdict", [
    (0.0, AS_EXPECTED),       # interval well inside +-0.01
    (0.009, UNCLEAR),         # straddles the upper margin
    (0.03, OPPOSITE),         # entirely beyond it
    (-0.03, OPPOSITE),
])
def test_equivalence_is_two_one_sided_tests(mean, verdict):
    d = forms.equivalence(s(mean), margin=0.01)
    assert d.verdict == verdict, d
    assert "equivalence (TOST), margin 0.01" in d.text


def test_equivalence_with_too_much_noise_is_inconclusive_not_supported():
    # mean 0 but a spread so wide that the interval crosses both margins
    assert forms.equivalence(Sample([0.05, -0.05, 0.04, -0.04, 0.0]), 0.01).verdict == UNCLEAR


@pytest.mark.parametrize("mean, better, verdict", [
    (-0.005, "higher", AS_EXPECTED),   # worse, but by less than the margin 0.01
    (-0.01, "higher", UNCLEAR),        # at the margin
    (-0.03, "higher", OPPOSITE),       # worse by more than the margin
    (0.005, "lower", AS_EXPECTED),     # lower is better: higher by less than the margin
    (0.03, "lower", OPPOSITE),
])
def test_non_inferiority(mean, better, verdict):
    assert forms.non_inferiority(s(mean), better, margin=0.01).verdict == verdict


@pytest.mark.parametrize("mean, inside, verdict", [
    (1.0, True, AS_EXPECTED), (1.19, True, UNCLEAR), (2.0, True, OPPOSITE),
    (2.0, False, AS_EXPECTED), (1.0, False, OPPOSITE), (1.2, False, UNCLEAR),
])
def test_bounds(mean, inside, verdict):
    assert forms.bounds(s(mean, NOISE * 10), 0.8, 1.2, inside).verdict == verdict


def test_bounds_over_layers_use_the_lowest_and_the_highest():
    low, high = s(0.9, NOISE), s(3.0, NOISE)  # one layer far above the upper bound
    assert forms.bounds(low, 0.8, 1.25, True, upper=high).verdict == OPPOSITE
    assert forms.bounds(low, 0.8, 1.25, True, upper=s(1.1)).verdict == AS_EXPECTED


TREND = np.array([[0.05, 0.30, 0.80, 0.97], [0.06, 0.40, 0.70, 0.95], [0.05, 0.20, 0.80, 0.96],
                  [0.06, 0.35, 0.79, 0.99], [0.04, 0.30, 0.75, 0.97]])


def test_trend_one_test_across_every_level():
    assert forms.trend(TREND, increasing=True).verdict == AS_EXPECTED
    assert forms.trend(TREND, increasing=False).verdict == OPPOSITE
    # one reversal between two neighbouring levels does not overturn a clear trend
    bumpy = TREND.copy()
    bumpy[:, [0, 1]] = bumpy[:, [1, 0]] * [1, 0.5]
    d = forms.trend(bumpy, increasing=True)
    assert d.verdict == AS_EXPECTED and d.estimate < 1
    flat = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [2, 1, 4, 3], [3, 4, 1, 2], [2.5, 2.5, 2.5, 2.5]])
    assert forms.trend(flat, increasing=True).verdict == UNCLEAR
    assert forms.trend(TREND[:3]).verdict == UNCLEAR  # 3 seeds: too few for a verdict
    assert "Page's trend test over 4 levels" in forms.trend(TREND).text


def test_holm_step_down():
    assert forms.holm([0.01, 0.02, 0.03], alpha=0.025) == [False, False, False]
    assert forms.holm([0.001, 0.01, 0.02], alpha=0.025) == [True, True, True]
    assert forms.holm([0.001, 0.5, 0.01], alpha=0.025) == [True, False, True]
    assert forms.holm([math.nan, 0.001], alpha=0.025) == [False, True]


def test_every_needs_every_comparison_and_one_reversal_contradicts():
    yes, maybe, no = (forms.superiority(s(m), "higher") for m in (0.02, 0.0005, -0.02))
    assert forms.every([yes, yes]).verdict == AS_EXPECTED
    assert forms.every([yes, maybe]).verdict == UNCLEAR
    assert forms.every([yes, no]).verdict == OPPOSITE
    assert "Holm over 2: 1 of 2 as claimed, 0 the other way" in forms.every([yes, maybe]).text
    # Holm: a p-value that passes alone fails among several
    weak = forms.Decision(AS_EXPECTED, 0.02, 0.98, 0.1, 0.0, 0.2, 5)
    assert forms.every([weak]).verdict == AS_EXPECTED
    assert forms.every([weak, weak, weak]).verdict == UNCLEAR


def test_pooled_is_one_test_of_the_mean_over_comparisons():
    # each arm alone is unclear; pooled over seeds, the mean effect is clear
    rows = [0.004 + np.array([0.003, -0.002, 0.004, 0.0, 0.001]),
            0.004 + np.array([-0.002, 0.004, -0.001, 0.003, 0.002])]
    each = [forms.superiority(Sample(r), "higher") for r in rows]
    pooled = forms.pooled(rows, lambda x: forms.superiority(x, "higher"))
    assert pooled.verdict == AS_EXPECTED and pooled.n == 5
    assert "pooled over 2 comparisons" in pooled.text
    assert forms.every(each).verdict in (UNCLEAR, AS_EXPECTED)
    opposite = forms.pooled([-r for r in rows], lambda x: forms.superiority(x, "higher"))
    assert opposite.verdict == OPPOSITE


def test_resampled_statistics_decide_by_their_resamples_and_count_undefined_ones_against():
    boot = np.log(np.r_[np.full(990, 0.5), np.full(10, np.inf)])  # 1% unbounded above
    r = forms.Resampled(np.empty(0), ratio=True, point=math.log(0.5), resamples=boot,
                        n_pairs=5)
    assert forms.superiority(r, "lower").verdict == AS_EXPECTED
    undefined = np.r_[np.full(950, math.log(0.5)), np.full(50, np.nan)]  # 5% neither reached
    r = forms.Resampled(np.empty(0), ratio=True, point=math.log(0.5), resamples=undefined,
                        n_pairs=5)
    d = forms.superiority(r, "lower")
    assert d.verdict == UNCLEAR and math.isnan(d.high)  # unbounded, never claimed
    assert "unbounded" in d.text


def test_every_expectation_has_a_form():
    from dnnbench.definition.claims import BOUND_EXPECTATIONS, EXPECTATIONS, RANKING, TREND
    assert set(FORM_OF) == {*EXPECTATIONS, *BOUND_EXPECTATIONS, RANKING, *TREND}
    assert set(FORM_OF.values()) <= set(forms.FORMS)


# ------------------------------------------------------------------- through claims

EXP = {"name": "forms", "base": {"depth": 1, "width": 8, "max_steps": 100, "eval_every": 10},
       "factors": {"lr": {str(v): {"learning_rate": v} for v in (0.001, 0.01, 0.1, 1.0)}},
       "reference": {"lr": "0.01"}}


def _runs(acc: dict[str, float], diverged=(), dead=None) -> pd.DataFrame:
    rows = []
    for i, (lr, a) in enumerate(acc.items()):
        noise = np.roll(NOISE, i)  # each arm its own noise: the differences vary by seed
        for seed in range(5):
            gone = (lr, seed) in diverged
            rows.append({"arm": f"lr={lr}", "lr": lr, "seed": seed, "reached": not gone,
                         "steps_to_target": None if gone else 50, "steps_done": 100,
                         "max_steps": 100, "diverged": gone,
                         "final_eval_accuracy": math.nan if gone else a + noise[seed],
                         "final_test_accuracy": math.nan if gone else a + noise[seed],
                         "final_eval_loss": math.nan if gone else 1 - a})
    return pd.DataFrame(rows)


def _check(claims, runs):
    exp = definition.parse({**EXP, "claims": claims}, "<test>")
    return check_claims(exp, runs).set_index("id")


def test_a_trend_claim_is_one_test_across_the_ordered_levels():
    claim = {"id": "t", "text": "accuracy rises with lr", "metric": "final_test_accuracy",
             "expect": "increasing", "order": {"lr": ["0.001", "0.01", "0.1", "1.0"]}}
    rising = _runs({"0.001": 0.5, "0.01": 0.6, "0.1": 0.58, "1.0": 0.9})  # one reversal
    out = _check([claim], rising)
    assert out.loc["t", "verdict"] == "supported"
    assert "trend on final_test_accuracy" in out.loc["t", "effects"]
    falling = _runs({"0.001": 0.9, "0.01": 0.8, "0.1": 0.7, "1.0": 0.6})
    assert _check([claim], falling).loc["t", "verdict"] == "contradicted"
    flat = _runs(dict.fromkeys(("0.001", "0.01", "0.1", "1.0"), 0.8))
    assert _check([claim], flat).loc["t", "verdict"] == "inconclusive"


def test_equivalence_and_non_inferiority_claims_name_their_margin():
    same = {"id": "same", "text": "t", "compare": {"lr": "0.1"}, "metric": "final_test_accuracy",
            "expect": "same", "margin": 0.01}
    ni = {"id": "ni", "text": "t", "compare": {"lr": "0.1"}, "metric": "final_test_accuracy",
          "expect": "not-lower", "margin": 0.01}
    out = _check([same, ni], _runs({"0.01": 0.9, "0.1": 0.9005, "0.001": 0.5, "1.0": 0.5}))
    assert (out["verdict"] == "supported").all()
    assert "equivalence (margin 0.01)" in out.loc["same", "effects"]
    assert "non-inferiority (margin 0.01)" in out.loc["ni", "effects"]
    out = _check([same, ni], _runs({"0.01": 0.9, "0.1": 0.85, "0.001": 0.5, "1.0": 0.5}))
    assert (out["verdict"] == "contradicted").all()
    out = _check([same], _runs({"0.01": 0.9, "0.1": 0.909, "0.001": 0.5, "1.0": 0.5}))
    assert out.loc["same", "verdict"] == "inconclusive"  # straddles the margin


def test_quantifier_every_and_pooled_over_arms():
    claim = {"id": "q", "text": "t", "where": {"lr": ["0.1", "1.0"]},
             "metric": "final_test_accuracy", "expect": "higher"}
    runs = _runs({"0.01": 0.8, "0.1": 0.9, "1.0": 0.79, "0.001": 0.5})
    out = _check([claim], runs)
    assert out.loc["q", "verdict"] == "contradicted"  # every arm: lr 1.0 is worse
    assert "Holm over 2" in out.loc["q", "effects"] and out.loc["q", "arms"] == 2
    out = _check([{**claim, "quantifier": "pooled"}], runs)
    assert out.loc["q", "verdict"] == "supported"  # their mean: +0.045
    assert "pooled over 2 comparisons" in out.loc["q", "effects"]
    with pytest.raises(definition.ExperimentError, match="quantifier: unknown 'some'"):
        _check([{**claim, "quantifier": "some"}], runs)


def test_diverged_runs_count_as_failures_not_as_missing_pairs():
    claim = {"id": "d", "text": "lr 0.01 beats lr 1", "compare": {"lr": "1.0"},
             "metric": "final_test_accuracy", "expect": "lower"}
    # lr 1.0 diverged in 3 of 5 seeds: those count as accuracy 0, so n stays 5
    runs = _runs({"0.01": 0.9, "1.0": 0.5, "0.1": 0.9, "0.001": 0.9},
                 diverged={("1.0", 0), ("1.0", 1), ("1.0", 2)})
    out = _check([claim], runs)
    assert out.loc["d", "n"] == 5 and out.loc["d", "verdict"] == "supported"
    assert "diverged: 3 of 5 vs 0 of 5" in out.loc["d", "effects"]
    # every run diverged: still a verdict (all failed), never "not tested" / "not run"
    every = _runs({"0.01": 0.9, "1.0": 0.85, "0.1": 0.9, "0.001": 0.9},
                  diverged={("1.0", i) for i in range(5)})
    out = _check([claim], every)
    assert out.loc["d", "verdict"] == "supported" and "5 of 5 vs 0 of 5" in out.loc["d",
                                                                                   "effects"]


def test_the_best_of_several_levels_is_chosen_on_the_eval_split_not_on_test():
    claim = {"id": "b", "text": "t", "compare": {"lr": ["0.1", "1.0"]},
             "metric": "final_test_accuracy", "expect": "higher"}
    runs = _runs({"0.01": 0.8, "0.1": 0.9, "1.0": 0.85, "0.001": 0.5})
    # on test, 1.0 would look best; on validation 0.1 is best: the claim compares 0.1
    runs.loc[runs["lr"] == "1.0", "final_test_accuracy"] = 0.95
    out = _check([claim], runs)
    assert "lr=0.1" in out.loc["b", "effects"] and "lr=1.0" not in out.loc["b", "effects"]


def test_steps_on_a_grid_too_coarse_for_the_medians_are_not_compared():
    claim = {"id": "s", "text": "t", "compare": {"lr": "0.1"}, "metric": "steps_to_target",
             "expect": "fewer"}

    def runs(grid):  # lr 0.1 reaches in 2 evaluations, the reference in 4, every seed
        out = _runs({"0.01": 0.9, "0.1": 0.9, "0.001": 0.9, "1.0": 0.9})
        out["eval_every"] = grid
        out["steps_to_target"] = np.where(out["lr"] == "0.1", 2 * grid, 4 * grid)
        out["max_steps"] = out["steps_done"] = 100 * grid
        return out
    coarse = _check([claim], runs(10)).loc["s"]
    assert coarse["verdict"] == "inconclusive"
    assert "evaluation grid too coarse: every 10 steps against the reference's median of 40" \
        in coarse["effects"]
    # the same ratio measured with 10 evaluations within the reference's median is decided
    fine = runs(10)
    fine["eval_every"] = 4
    assert _check([claim], fine).loc["s", "verdict"] == "supported"


def test_not_consistently_positive_is_one_random_effects_test_across_groups():
    rng = np.random.default_rng(0)
    consistent = [5 + rng.normal(0, 1, 20) for _ in range(12)]
    varying = [m + rng.normal(0, 1, 20) for m in np.linspace(-5, 10, 12)]
    noisy = [0.5 + rng.normal(0, 8, 20) for _ in range(12)]  # no real differences
    verdicts = [forms.not_consistently_positive(forms.heterogeneity(g))
                for g in (consistent, varying, noisy)]
    assert verdicts == [OPPOSITE, AS_EXPECTED, UNCLEAR]
    h = forms.heterogeneity(varying)
    assert h.tau > 3 and h.p_q < 1e-6 and h.predict_low < 0 < h.predict_high
    assert forms.heterogeneity(consistent[:2]).groups == 2  # too few: no verdict
    assert forms.not_consistently_positive(forms.heterogeneity(consistent[:2])) == UNCLEAR


def test_bounds_are_inclusive_for_values_without_spread():
    zero = Sample(np.zeros(5))  # e.g. no dead unit in any seed
    assert forms.bounds(zero, 0.0, 0.05).verdict == AS_EXPECTED
    assert forms.bounds(zero, 0.0, 0.05, inside=False).verdict == OPPOSITE
    assert forms.bounds(Sample(np.full(5, 0.2)), 0.0, 0.05).verdict == OPPOSITE


def test_a_loss_claim_counts_a_diverged_run_as_the_worst_value_not_as_missing():
    """A diverged run's loss is +inf (worst), so no pair is dropped: the pairs are compared
    by their signs (an exact sign test; both sides diverged: a tie)."""
    claim = {"id": "l", "text": "lr 1.0 ends with a higher loss", "compare": {"lr": "1.0"},
             "metric": "final_eval_loss", "expect": "higher"}

    def runs(n_seeds, gone_ref=()):  # lr 1.0 diverges in every seed; 0.01 in gone_ref
        rows = []
        for lr in ("0.01", "1.0"):
            for seed in range(n_seeds):
                gone = lr == "1.0" or seed in gone_ref
                rows.append({"arm": f"lr={lr}", "lr": lr, "seed": seed, "diverged": gone,
                             "final_eval_loss": math.nan if gone else 0.3 + 0.01 * seed})
        return pd.DataFrame(rows)

    out = _check([claim], runs(8)).loc["l"]
    assert out["verdict"] == "supported" and out["n"] == 8
    assert "higher in 8 of 8 pairs, the other way in 0, 0 tied" in out["effects"]
    assert "sign test" in out["effects"]
    # 5 pairs cannot decide a sign test at 2.5% (1/32 > 0.025): inconclusive, n stays 5
    five = _check([claim], runs(5)).loc["l"]
    assert five["verdict"] == "inconclusive" and five["n"] == 5
    # both sides diverged in 3 seeds: ties, left out of the sign test (5 of 5 that differ:
    # p = 1/32 > 0.025, so not enough; the n stays the 8 pairs)
    tied = _check([claim], runs(8, gone_ref=(0, 1, 2))).loc["l"]
    assert "3 tied" in tied["effects"] and tied["n"] == 8
    assert tied["verdict"] == "inconclusive"
    # the claim's opposite side: lr 0.01 never worse than the diverged lr 1.0
    lower = {**claim, "id": "m", "expect": "lower"}
    assert _check([lower], runs(8)).loc["m", "verdict"] == "contradicted"
    # 7 of 8 pairs: one-sided p = 9/256 = 0.035 > 0.025; 8 of 8: 1/256
    assert forms.sign(np.array([np.inf] * 6 + [-0.1, 0.2]), "higher").verdict == UNCLEAR
    # divergence as paired 0/1 outcomes: McNemar's exact test on the discordant pairs
    assert forms.sign(np.array([-1.0] * 5), "lower").p_for == 1 / 32  # 5 seeds: not enough
    assert forms.sign(np.array([-1.0] * 10), "lower").verdict == AS_EXPECTED
    s = forms.sign(np.array([np.inf] * 6 + [0.1, 0.2]), "higher")
    assert s.verdict == AS_EXPECTED and s.p_for == 1 / 256 and math.isnan(s.low)


def test_the_summary_table_has_a_diverged_cell_for_every_arm_when_one_diverged():
    """(A default-configs run printed a traceback: the "diverged" column held text for the
    arms that diverged and NaN for the others.)"""
    from dnnbench.analysis.summary import summarize
    from dnnbench.report.generic import summary_cells

    exp = definition.parse({**EXP, "show": ["final_test_accuracy"]}, "<test>")
    runs = _runs({"0.001": 0.5, "0.01": 0.6, "0.1": 0.7, "1.0": 0.1},
                 diverged={("1.0", 0), ("1.0", 3)}).assign(step_ms=1.0, compile_s=1.0)
    cells = summary_cells(exp, summarize(exp, runs))
    assert list(cells["diverged"]) == ["0/5", "0/5", "0/5", "2/5"]
    assert cells.map(lambda v: isinstance(v, str)).all().all()
