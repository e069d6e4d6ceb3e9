"""The claims of an experiment file checked against its result table (the summary's
paired comparisons: every compared arm against the reference, or the arm it names; rankings,
bounds, per-layer metrics; a search's claims): one row per claim with its verdict."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.analysis import search
from dnnbench.analysis.summary import (
    compare,
    level_key,
    metric_values,
    reference_arm,
    with_layer_metrics,
)
from dnnbench.definition.claims import (
    BOUND_EXPECTATIONS,
    CONTRADICTED,
    EXPECTATIONS,
    INCONCLUSIVE,
    MARGIN_EXPECTATIONS,
    NOT_TESTED,
    RANKING,
    SUPPORTED,
)
from dnnbench.definition.experiment import (
    Experiment,
)
from dnnbench.definition.settings import lower_is_better
from dnnbench.stats import (
    MIN_SEEDS_FOR_VERDICT,
    mean_ci,
    verdict_from_interval,
)
from dnnbench.stats.censored import STEP_LABELS


def check_claims(exp: Experiment, runs: pd.DataFrame,
                 layers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each claim of the file against the data: supported when every compared arm points the
    expected way with an interval that excludes no difference, contradicted when any points
    the other way, inconclusive otherwise; "not tested" when no arm of the run matches (a
    --quick run without the claim's levels). An arm is compared with the reference, with the
    claim's ``against`` arm (the best of its levels, by the mean of the metric), or, with
    ``versus``, its metric with its own other metric. Expect ``same``: as expected when the
    difference's interval lies within +-margin, opposite when it lies outside; ``not-lower``:
    as expected when its lower bound is above -margin, opposite when its upper bound is
    below. Claims with evaluator checks are left to `dnnbench claims`
    (:func:`dnnbench.analysis.checker.packaged_claims`).

    Claims on the per-layer diagnostics (``layers``; metric ``layers.<column>``), with
    bounds (expect within/outside: each arm's mean over seeds with its 95% interval against
    [low, high]; statistic range: the smallest and the largest layer's intervals) and rankings
    (every pair of the ranked levels, same other levels, paired by seed; the effects list the
    pairs decided as expected and the other way): see :func:`_diagnostic_claim`."""
    runs = with_layer_metrics(exp, runs, layers)
    factors = list(exp.factors)
    keys = level_key(runs, factors)
    rows = []
    for claim in exp.claims:
        if claim.checks:  # an evaluator claim: `dnnbench claims` checks it on its results
            continue
        if claim.test != "arms":  # a claim about a search

            rows.append({"id": claim.id, "claim": claim.text,
                         **search.check_claim(exp.search, claim, runs)})
            continue
        if claim.diagnostic:
            rows.append(_claim_row(claim, *_diagnostic_claim(exp, claim, runs)))
            continue
        kind, better = EXPECTATIONS[claim.expect]
        verdicts, effects = [], []
        for arm, g in _claim_arms(claim, runs, factors):
            levels = {f: g[f].iloc[0] for f in factors}
            if claim.versus:
                other = g.assign(**{claim.metric: g[claim.versus], "arm": claim.versus})
            else:
                ref = (_against(exp, claim, levels, runs, keys) if claim.against
                       else reference_arm(exp, levels))
                if ref is None:
                    continue
                other = runs[keys == "|".join(str(ref[f]) for f in factors)]
            c = compare(g.sort_values("seed"), other.sort_values("seed"), claim.metric)
            if not c or (kind != "steps" and "diff" not in c):
                continue
            name = arm if not claim.versus else f"{arm} ({claim.metric} - {claim.versus})"
            if kind == "steps":
                low, high, est, null = c["ratio_low"], c["ratio_high"], c["steps_ratio"], 1.0
                effects.append(f"{name}: x{est:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(est)
                               else f"{name}: a median not reached (reached "
                                    f"{int(g['reached'].sum())}/{len(g)} vs "
                                    f"{int(other['reached'].sum())}/{len(other)})")
            else:
                low, high, est, null = c["diff_low"], c["diff_high"], c["diff"], 0.0
                against = "" if claim.versus or not claim.against else f" vs {c['reference']}"
                effects.append(f"{name}{against}: {est:+.4f} [{low:+.4f}, {high:+.4f}]")
            if kind == "steps" and not math.isfinite(est):
                # a median not reached: the comparison's own verdict (its log-rank fallback)
                side = {STEP_LABELS[0]: "lower", STEP_LABELS[1]: "higher"}.get(
                    c["steps_verdict"])
                verdicts.append(CLAIM_LABELS[2] if side is None else
                                CLAIM_LABELS[0] if side == better else CLAIM_LABELS[1])
                continue
            n = len(set(g["seed"]) & set(other["seed"]))
            verdicts.append(margin_verdict(low, high, better, claim.margin, n)
                            if better in MARGIN_EXPECTATIONS else
                            verdict_from_interval(low, high, better=better, null=null, n=n,
                                                  labels=CLAIM_LABELS))
        rows.append(_claim_row(claim, verdicts, effects))
    return pd.DataFrame(rows, columns=["id", "claim", "verdict", "arms", "effects"])


def _claim_row(claim, verdicts: list[str], effects: list[str]) -> dict[str, Any]:
    if not verdicts:
        verdict = NOT_TESTED
        effects = ["no arm of this run matches the claim"]
    elif "opposite" in verdicts:
        verdict = CONTRADICTED
    elif all(v == "as expected" for v in verdicts):
        verdict = SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return {"id": claim.id, "claim": claim.text, "verdict": verdict, "arms": len(verdicts),
            "effects": "; ".join(effects)}


def _diagnostic_claim(exp: Experiment, claim, runs: pd.DataFrame):
    """(verdicts, effects) of a ranking, a bounds claim, or a layers.* claim against the
    reference (or its own ``against`` arm)."""
    if claim.expect == RANKING:
        return _ranking(exp, claim, runs)
    if claim.expect in BOUND_EXPECTATIONS:
        return _bounded(exp, claim, runs)
    return _against_reference(exp, claim, runs)


def _matching(exp: Experiment, claim, runs: pd.DataFrame, skip: Sequence[str] = ()):
    """(arm, its rows, its levels) of the arms that the claim's compare and where select
    (factors in ``skip`` not checked against compare)."""
    for arm, g in runs.groupby("arm", sort=False):
        levels = {f: g[f].iloc[0] for f in exp.factors}
        if any(str(levels[f]) != str(v) for f, v in claim.compare.items() if f not in skip):
            continue
        if any(str(levels[f]) not in {str(x) for x in vs} for f, vs in claim.where.items()):
            continue
        yield arm, g.sort_values("seed"), levels


def _rows_of(exp: Experiment, runs: pd.DataFrame, levels: dict) -> pd.DataFrame:
    keys = level_key(runs, list(exp.factors))
    return runs[keys == "|".join(str(levels[f]) for f in exp.factors)].sort_values("seed")


def _pair(a: pd.DataFrame, b: pd.DataFrame, claim, better: str) -> tuple[str, str] | None:
    """(verdict, effect text) of arm ``a`` against arm ``b`` on the claim's metric, ``better``
    the direction that supports the claim."""
    steps = claim.metric == "steps_to_target"
    c = compare(a, b, claim.column)
    if not c or (not steps and "diff_low" not in c):
        return None
    if steps:  # the comparison's verdict: its log-rank fallback decides unreached medians
        low, high, est = c["ratio_low"], c["ratio_high"], c["steps_ratio"]
        effect = (f"x{est:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(est) else
                  f"a median not reached ({c['steps_verdict']})")
        way = {"fewer steps": "lower", "more steps": "higher"}.get(c["steps_verdict"])
        verdict = CLAIM_LABELS[2] if way is None else CLAIM_LABELS[0] if way == better \
            else CLAIM_LABELS[1]
        return verdict, effect
    low, high, est = c["diff_low"], c["diff_high"], c["diff"]
    n = len(set(a["seed"]) & set(b["seed"]))
    return (verdict_from_interval(low, high, better=better, null=0.0, n=n, labels=CLAIM_LABELS),
            f"{est:+.4g} [{low:+.4g}, {high:+.4g}]")


def _against_reference(exp: Experiment, claim, runs: pd.DataFrame):
    better = EXPECTATIONS[claim.expect][1]
    verdicts, effects = [], []
    for arm, g, levels in _matching(exp, claim, runs):
        ref = {**levels, **exp.reference, **claim.against}
        if ref == levels:
            continue
        pair = _pair(g, _rows_of(exp, runs, ref), claim, better)
        if pair is None:
            continue
        verdicts.append(pair[0])
        effects.append(f"{arm}: {pair[1]}")
    return verdicts, effects


def _ranking(exp: Experiment, claim, runs: pd.DataFrame):
    """Every ordered pair of the ranked levels within each combination of the other levels."""
    factor, order = claim.rank
    better = "lower" if claim.metric == "steps_to_target" else "higher"
    verdicts, decided, other_way = [], [], []
    groups: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
    for arm, g, levels in _matching(exp, claim, runs, skip=(factor,)):
        rest = "|".join(str(levels[f]) for f in exp.factors if f != factor)
        groups.setdefault(rest, {})[str(levels[factor])] = (arm, g)
    for members in groups.values():
        ranked = [str(x) for x in order if str(x) in members]
        for i, hi in enumerate(ranked):
            for lo in ranked[i + 1:]:
                pair = _pair(members[hi][1], members[lo][1], claim, better)
                if pair is None:
                    continue
                verdicts.append(pair[0])
                text = f"{hi} > {lo}: {pair[1]}"
                if pair[0] == "as expected":
                    decided.append(text)
                elif pair[0] == "opposite":
                    other_way.append(text)
    effects = [(f"{len(decided)} of {len(verdicts)} pairs decided as expected, "
                f"{len(other_way)} the other way")] if verdicts else []
    effects += [f"as expected: {t}" for t in decided] + [f"other way: {t}" for t in other_way]
    return verdicts, effects


def _bounded(exp: Experiment, claim, runs: pd.DataFrame):
    """Each selected arm's mean (95% interval over seeds) against the claim's bounds."""
    low_b, high_b = claim.bounds
    verdicts, effects = [], []
    columns = ([f"{claim.column}.min", f"{claim.column}.max"] if claim.statistic == "range"
               and claim.layer_metric is not None else [claim.column])
    for arm, g, _ in _matching(exp, claim, runs):
        if any(c not in g for c in columns):
            continue
        cis = [mean_ci(g[c].astype(float).to_numpy()) for c in columns]
        if any(math.isnan(ci.estimate) for ci in cis):
            continue
        lo, hi = cis[0], cis[-1]  # the smallest and the largest layer (or the one value)
        inside = lo.low >= low_b and hi.high <= high_b
        outside = lo.high < low_b or hi.low > high_b
        n = int(g[columns[0]].notna().sum())
        if n < MIN_SEEDS_FOR_VERDICT:
            v = "unclear"
        elif claim.expect == "within":
            v = "as expected" if inside else "opposite" if outside else "unclear"
        else:
            v = "as expected" if outside else "opposite" if inside else "unclear"
        verdicts.append(v)
        shown = " to ".join(f"{ci.estimate:.4g} [{ci.low:.4g}, {ci.high:.4g}]" for ci in cis)
        effects.append(f"{arm}: {shown}")
    return verdicts, effects


CLAIM_LABELS = ("as expected", "opposite", "unclear")


def margin_verdict(low: float, high: float, expect: str, margin: float, n: int) -> str:
    """The verdict (CLAIM_LABELS) on a difference's interval for expect ``same`` (within
    +-margin: as expected; entirely outside: opposite) or ``not-lower`` (above -margin: as
    expected; entirely below it: opposite); unclear with too few seeds or NaN bounds."""
    if n < MIN_SEEDS_FOR_VERDICT or not (math.isfinite(low) and math.isfinite(high)):
        return CLAIM_LABELS[2]
    if expect == "same":
        inside, outside = -margin < low and high < margin, low > margin or high < -margin
    else:
        inside, outside = low > -margin, high < -margin
    return CLAIM_LABELS[0] if inside else CLAIM_LABELS[1] if outside else CLAIM_LABELS[2]


def _claim_arms(claim, runs: pd.DataFrame, factors) -> list[tuple[str, pd.DataFrame]]:
    """The arms a claim is about: their levels match its compare and where levels; where
    compare gives a factor several levels, only the best arm (mean of the metric)."""
    def matches(levels, given):
        return all(str(levels[f]) in {str(x) for x in (v if isinstance(v, tuple) else [v])}
                   for f, v in given.items())
    arms = [(arm, g) for arm, g in runs.groupby("arm", sort=False)
            if matches({f: g[f].iloc[0] for f in factors}, {**claim.compare, **claim.where})]
    if arms and any(isinstance(v, tuple) for v in claim.compare.values()):
        sign = -1.0 if lower_is_better(claim.metric) else 1.0
        arms = [max(arms, key=lambda a: np.nan_to_num(
            sign * metric_values(a[1], claim.metric).mean(), nan=-np.inf))]
    return arms


def _against(exp: Experiment, claim, levels: dict, runs: pd.DataFrame, keys: pd.Series):
    """The levels of the arm that a claim's ``against`` names for an arm of ``levels``; a
    factor given several levels takes the one whose arm has the best mean of the metric."""
    fixed = {k: v for k, v in claim.against.items() if not isinstance(v, tuple)}
    choices_ = [k for k, v in claim.against.items() if isinstance(v, tuple)]
    candidates = [{**levels, **fixed, **dict(zip(choices_, combo, strict=True))}
                  for combo in itertools.product(*(claim.against[k] for k in choices_))]
    sign = -1.0 if lower_is_better(claim.metric) else 1.0
    best, best_mean = None, -math.inf
    for cand in candidates:
        if cand == levels:
            continue
        rows = runs[keys == "|".join(str(cand[f]) for f in exp.factors)]
        mean = sign * metric_values(rows, claim.metric).mean() if len(rows) else math.nan
        if math.isfinite(mean) and mean > best_mean:
            best, best_mean = cand, mean
    return best
