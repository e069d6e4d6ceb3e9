"""The evaluator spread_across ("less sensitive to a factor"): per seed, the spread of a metric
over a factor's levels, arm a minus arm b, on constructed tables with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnnbench.analysis.evaluators import EVALUATORS
from dnnbench.analysis.outcomes import MissingData
from dnnbench.definition.claims import ClaimsError, parse_check
from dnnbench.results.resultset import ResultSet

SCALES = (0.01, 0.1, 1.0, 10.0, 100.0)
P = {"column": "final_eval_accuracy", "compare": {"column": "norm", "a": "batch", "b": "none"},
     "across": "init_scale", "expect": "lower"}


def table(acc: dict[str, list[float]], seeds=range(8), noise=0.01, seed=0,
          diverged: set | None = None) -> ResultSet:
    """One run per (norm, init scale, seed): ``acc[norm][i]`` the mean accuracy at SCALES[i],
    plus per-run noise; ``diverged``: (norm, scale, seed) runs that diverged (NaN accuracy)."""
    rng = np.random.default_rng(seed)
    rows = []
    for norm, means in acc.items():
        for scale, m in zip(SCALES, means, strict=True):
            for s in seeds:
                gone = (norm, scale, s) in (diverged or set())
                rows.append({"arm": f"init_scale={scale},norm={norm}", "norm": norm,
                             "init_scale": scale, "seed": s, "diverged": gone,
                             "final_eval_accuracy": np.nan if gone else float(np.clip(
                                 m + noise * rng.standard_normal(), 0, 1))})
    return ResultSet("bn-init-scale", "digits", pd.DataFrame(rows))


SPREAD = EVALUATORS["spread_across"].fn
FLAT, PEAKED = [0.95, 0.96, 0.97, 0.96, 0.93], [0.11, 0.60, 0.95, 0.40, 0.10]


def test_a_flat_arm_against_a_peaked_one_is_supported_with_the_known_range():
    out = SPREAD(table({"batch": FLAT, "none": PEAKED}), P)
    assert out.verdict == "supported" and out.n == 8
    # per seed: range with BN ~0.04, without ~0.85: the difference is ~ -0.81
    assert out.high < 0 and out.low < -0.75 and out.effect == pytest.approx(-0.81, abs=0.03)
    assert "range of final_eval_accuracy over init_scale (5 levels)" in out.evidence
    assert "batch: 0.01: 0.95" in out.evidence  # the per-level means of both arms


def test_the_reverse_is_contradicted_and_equal_spreads_are_inconclusive():
    assert SPREAD(table({"batch": PEAKED, "none": FLAT}), P).verdict == "contradicted"
    same = SPREAD(table({"batch": PEAKED, "none": PEAKED}, noise=0.03, seed=3), P)
    assert same.verdict == "inconclusive" and same.low < 0 < same.high
    # the sample standard deviation instead of the range: the same verdicts
    std = SPREAD(table({"batch": FLAT, "none": PEAKED}), {**P, "statistic": "std"})
    assert std.verdict == "supported" and -0.45 < std.effect < -0.25
    # fewer than 5 seeds: never more than inconclusive
    few = SPREAD(table({"batch": FLAT, "none": PEAKED}, seeds=range(3)), P)
    assert few.verdict == "inconclusive" and "too few" in few.evidence


def test_a_diverged_run_counts_as_accuracy_0_not_as_missing():
    """Without BN the runs at scale 100 diverge (NaN accuracy): they count as 0, so the range
    without BN is ~0.6, above BN's ~0.45 (supported); dropped, it would be ~0.1 and the claim
    would come out the other way."""
    gone = {("none", 100.0, s) for s in range(8)}
    half = [0.5, 0.55, 0.6, 0.55, 0.5]
    out = SPREAD(table({"batch": [0.5, 0.55, 0.95, 0.55, 0.5], "none": half},
                       diverged=gone), P)
    assert out.verdict == "supported" and out.n == 8
    assert out.effect == pytest.approx(0.45 - 0.6, abs=0.03)
    assert "diverged: 0 of 40 vs 8 of 40 runs" in out.evidence
    # a run missing (not diverged) leaves its pair out: n counts the pairs used
    runs = table({"batch": FLAT, "none": PEAKED}).runs
    runs = runs[~((runs["norm"] == "none") & (runs["init_scale"] == 1.0) & (runs["seed"] == 0))]
    out = SPREAD(ResultSet("bn-init-scale", "digits", runs), P)
    assert out.n == 7 and "1 pair(s) without every level left out" in out.evidence


def test_an_infinite_loss_spread_is_decided_by_the_sign_test():
    rs = table({"batch": FLAT, "none": PEAKED})
    runs = rs.runs.assign(final_eval_loss=1.0 - rs.runs["final_eval_accuracy"])
    runs.loc[(runs["norm"] == "none") & (runs["init_scale"] == 100.0), "diverged"] = True
    out = SPREAD(ResultSet("bn-init-scale", "digits", runs),
                 {**P, "column": "final_eval_loss"})
    assert out.verdict == "supported" and "sign test" in out.evidence


def test_missing_levels_columns_and_bad_parameters():
    rs = table({"batch": FLAT, "none": PEAKED})
    one_level = ResultSet("x", "digits", rs.runs[rs.runs["init_scale"] == 1.0])
    with pytest.raises(MissingData, match="two or more levels of init_scale"):
        SPREAD(one_level, P)
    with pytest.raises(MissingData, match="no column 'depth'"):
        SPREAD(rs, {**P, "across": "depth"})
    with pytest.raises(MissingData, match="no runs with norm=layer"):
        SPREAD(rs, {**P, "compare": {"column": "norm", "a": "layer", "b": "none"}})
    ok = parse_check({"evaluator": "spread_across", **P}, "claims[0].check[0]")
    assert EVALUATORS["spread_across"].columns(ok.params) == {
        "final_eval_accuracy", "norm", "init_scale"}
    with pytest.raises(ClaimsError, match="needs 'across'"):
        parse_check({"evaluator": "spread_across", **{k: v for k, v in P.items()
                                                       if k != "across"}}, "c")
    with pytest.raises(ClaimsError, match="statistic: one of range, std"):
        parse_check({"evaluator": "spread_across", **P, "statistic": "iqr"}, "c")
    with pytest.raises(ClaimsError, match="expect: one of lower, higher"):
        parse_check({"evaluator": "spread_across", **P, "expect": "fewer"}, "c")
