"""The claims of an experiment file checked against its result table: each claim's
comparisons (every compared arm against the reference or the arm it names, paired by seed;
the pairs of a ranking; the groups of a trend; each arm against bounds) decided by the claim's
form (:mod:`dnnbench.stats.forms`: superiority, non-inferiority, equivalence, bounds, trend)
and, over several comparisons, its quantifier (every, Holm-corrected; or pooled); a search's
claims (:mod:`dnnbench.analysis.search`): one row per claim with its verdict.

Divergence is an outcome, never missing data: a diverged run counts as accuracy 0 in an
accuracy claim, is censored at its budget in a steps claim, and lies outside any bounds when
its value is missing; the effects say how many runs diverged. Choices among arms (the best of
a claim's levels) are made on the eval split (validation by default), never on test metrics.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.analysis import search
from dnnbench.analysis.summary import level_key, metric_values, reference_arm, with_layer_metrics
from dnnbench.definition.claims import (
    BOUND_EXPECTATIONS,
    CONTRADICTED,
    EXPECTATIONS,
    INCONCLUSIVE,
    NOT_TESTED,
    RANKING,
    SUPPORTED,
    TREND,
)
from dnnbench.definition.experiment import Experiment
from dnnbench.definition.settings import lower_is_better
from dnnbench.stats import forms, km_median, steps_of_runs
from dnnbench.stats.censored import logrank_sides, resampled_log_ratio
from dnnbench.stats.flags import flag

VERDICT_OF = {forms.AS_EXPECTED: SUPPORTED, forms.OPPOSITE: CONTRADICTED,
              forms.UNCLEAR: INCONCLUSIVE}
COLUMNS = ["id", "claim", "verdict", "arms", "effects", "effect", "low", "high", "n"]
# the side a comparison of each expectation must come out on
BETTER = {"not-lower": "higher", "not-higher": "lower", "same": "higher"}


@dataclass(frozen=True)
class Comparison:
    """One comparison of a claim: its decision, its paired per-seed values (None when only
    resampled medians or a log-rank test decide it) and a note (runs that diverged)."""

    name: str
    decision: forms.Decision
    per_seed: pd.Series | None = None
    note: str = ""

    @property
    def text(self) -> str:
        return f"{self.name}: {self.decision.text}" + (f"; {self.note}" if self.note else "")


def check_claims(exp: Experiment, runs: pd.DataFrame,
                 layers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each claim of the file against the data (see the module docstring): supported,
    contradicted or inconclusive as its form and quantifier decide; "not tested" when no arm
    of the run matches (a --quick run without the claim's levels). Claims with evaluator
    checks are left to `dnnbench claims` (:func:`dnnbench.analysis.checker.packaged_claims`).
    Columns: id, claim, verdict, arms (comparisons), effects (the words), effect, low, high
    (the one comparison's, or the pooled one's; NaN over several), n (the fewest pairs)."""
    runs = with_layer_metrics(exp, runs, layers)
    rows = []
    for claim in exp.claims:
        if claim.checks:  # an evaluator claim: `dnnbench claims` checks it on its results
            continue
        if claim.test != "arms":  # a claim about a search
            rows.append({"id": claim.id, "claim": claim.text,
                         **search.check_claim(exp.search, claim, runs)})
            continue
        absent = absent_metrics(claim, runs)
        if absent:  # e.g. a metric measured since these results were made
            rows.append({"id": claim.id, "claim": claim.text, "verdict": NOT_TESTED,
                         "arms": 0, "effect": math.nan, "low": math.nan, "high": math.nan,
                         "n": 0, "effects": f"the runs have no {absent[0]} (results of an "
                                            "earlier design: run it again)"})
            continue
        rows.append(_row(claim, _comparisons(exp, claim, runs)))
    return pd.DataFrame(rows, columns=COLUMNS)


DERIVED_METRICS = ("divergence_rate",)  # computed from the runs' columns (diverged)


def absent_metrics(claim, runs: pd.DataFrame) -> list[str]:
    """The metrics a claim reads (metric, versus) that are no column of ``runs`` (per-layer
    metrics and those derived from other columns aside)."""
    return [m for m in (claim.metric, claim.versus)
            if m and not m.startswith("layers.") and m not in DERIVED_METRICS
            and m not in runs.columns]


def _comparisons(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    if claim.expect == RANKING:
        return _ranking(exp, claim, runs)
    if claim.expect in TREND:
        return _trend(exp, claim, runs)
    if claim.expect in BOUND_EXPECTATIONS:
        return _bounded(exp, claim, runs)
    if claim.layer_metric is not None:
        return _against_reference(exp, claim, runs)
    return _plain(exp, claim, runs)


def _row(claim, comparisons: list[Comparison]) -> dict[str, Any]:
    base = {"id": claim.id, "claim": claim.text}
    if not comparisons:
        return base | {"verdict": NOT_TESTED, "arms": 0, "effect": math.nan, "low": math.nan,
                       "high": math.nan, "n": 0,
                       "effects": "no arm of this run matches the claim"}
    pooled = claim.quantifier == "pooled" and len(comparisons) > 1
    if pooled:
        if any(c.per_seed is None for c in comparisons):
            raise ValueError(f"claim {claim.id}: a pooled test needs per-seed values in every "
                             "comparison (a median not reached has none)")
        table = pd.concat([c.per_seed for c in comparisons], axis=1)
        ratio = claim.metric == "steps_to_target"
        combined = forms.pooled([table[c].to_numpy() for c in table], lambda s: _decide(
            claim, s), ratio=ratio)
    else:
        combined = forms.every([c.decision for c in comparisons])
    one = combined.decisions[0] if (pooled or len(comparisons) == 1) and         combined.decisions else None
    how = _form_words(claim) + (f", {claim.quantifier}" if len(comparisons) > 1 else "")
    effects = [f"{how}: {combined.text}"] + [c.text for c in comparisons]
    return base | {"verdict": VERDICT_OF[combined.verdict], "arms": len(comparisons),
                   "effects": "; ".join(effects),
                   "effect": one.estimate if one else math.nan,
                   "low": one.low if one else math.nan, "high": one.high if one else math.nan,
                   "n": combined.n}


def _form_words(claim) -> str:
    words = claim.form
    if claim.form in ("equivalence", "non-inferiority"):
        words += f" (margin {claim.margin:g})"
    return f"{words} on {claim.column}"


def _decide(claim, s: forms.Sample) -> forms.Decision:
    """The claim's form applied to the paired values of one comparison."""
    better = _better(claim)
    if claim.form == "equivalence":
        return forms.equivalence(s, claim.margin)
    if claim.form == "non-inferiority":
        return forms.non_inferiority(s, better, claim.margin)
    return forms.superiority(s, better)


def _better(claim) -> str:
    if claim.expect in (RANKING, *TREND, *BOUND_EXPECTATIONS):
        return "lower" if lower_is_better(claim.metric) else "higher"
    return BETTER.get(claim.expect, EXPECTATIONS[claim.expect][1])


# ------------------------------------------------------------------------ the comparisons

def claim_values(g: pd.DataFrame, column: str) -> np.ndarray:
    """A column's per-run values for a claim: a diverged run is a failure, not missing data:
    accuracy 0, and a loss of +inf, the worst value (compared by the sign test,
    :func:`compare_pair`); other metrics of a diverged run stay as measured (NaN)."""
    values = metric_values(g, column)
    if "diverged" in g:
        diverged = flag(g["diverged"])
        if "accuracy" in column:
            values = np.where(diverged, 0.0, values)
        elif column.endswith(("_loss", "_nll")):
            values = np.where(diverged, math.inf, values)
    return values


def _diverged_note(a: pd.DataFrame, b: pd.DataFrame | None = None) -> str:
    ka = int(flag(a["diverged"]).sum()) if "diverged" in a else 0
    kb = int(flag(b["diverged"]).sum()) if b is not None and "diverged" in b else 0
    if not ka and not kb:
        return ""
    return (f"{ka} of {len(a)} runs diverged" if b is None else
            f"diverged: {ka} of {len(a)} vs {kb} of {len(b)}")


def compare_pair(a: pd.DataFrame, b: pd.DataFrame, claim, name: str,
                 other_column: str | None = None) -> Comparison | None:
    """Arm ``a`` against arm ``b`` (or, with ``other_column``, ``a``'s claim column against
    its own other column) on the claim's column, paired by their common seeds."""
    common = sorted(set(a["seed"]) & set(b["seed"]))
    if not common:
        return None
    a = a.set_index("seed").loc[common].reset_index()
    b = b.set_index("seed").loc[common].reset_index()
    note = _diverged_note(a, None if other_column else b)
    if claim.column == "steps_to_target":
        return _steps_pair(a, b, claim, name, note, common)
    x = claim_values(a, claim.column)
    y = claim_values(a if other_column else b, other_column or claim.column)
    with np.errstate(invalid="ignore"):
        d = pd.Series(x - y, index=common)
    if claim.column == "divergence_rate":  # paired 0/1 outcomes: McNemar's exact test
        if claim.form != "superiority":
            return Comparison(name, forms.Decision(
                forms.UNCLEAR, math.nan, math.nan, math.nan, math.nan, math.nan, len(common),
                f"{claim.form} is not defined for divergence (paired 0/1 outcomes)"), d, note)
        decision = forms.sign(d.to_numpy(), _better(claim),
                              "McNemar's exact test on the pairs where one run diverged")
        return Comparison(name, dataclasses.replace(decision, estimate=float(d.mean())), d,
                          note)
    if np.isinf(x).any() or np.isinf(y).any():  # a diverged run's loss: no mean, the signs
        if claim.form != "superiority":
            return Comparison(name, forms.Decision(
                forms.UNCLEAR, math.nan, math.nan, math.nan, math.nan, math.nan, len(common),
                f"{claim.form} needs finite values; a run diverged"), None, note)
        return Comparison(name, forms.sign(d.to_numpy(), _better(claim)), None, note)
    return Comparison(name, _decide(claim, forms.Sample(d.to_numpy())), d, note)


def _steps_pair(a, b, claim, name, note, common) -> Comparison:
    """Steps to target: every run reached -> the paired log ratio of steps (a t test);
    otherwise the ratio of Kaplan-Meier medians (runs that did not reach the target, diverged
    ones included, censored at their budget) through its paired bootstrap, or, when a median
    is not reached, the one-sided log-rank tests."""
    sa, sb = steps_of_runs(a), steps_of_runs(b)
    coarse = coarse_grid(a, b, sa, sb)
    if coarse:
        return Comparison(name, forms.Decision(forms.UNCLEAR, math.nan, math.nan, math.nan,
                                               math.nan, math.nan, len(common), coarse),
                          None, note)
    if sa[1].all() and sb[1].all():
        d = pd.Series(np.log(sa[0] / sb[0]), index=common)
        return Comparison(name, _decide(claim, forms.Sample(d.to_numpy(), ratio=True)), d,
                          note)
    point, boot = resampled_log_ratio(*sa, *sb)
    reached = f"reached {int(sa[1].sum())}/{len(a)} vs {int(sb[1].sum())}/{len(b)}"
    note = f"{reached}{'; ' + note if note else ''}"
    if math.isfinite(point):
        s = forms.Resampled(np.empty(0), ratio=True, point=point, resamples=boot,
                            n_pairs=len(common))
        return Comparison(name, _decide(claim, s), None, note)
    sooner, later = logrank_sides(*sa, *sb)
    if claim.form != "superiority":  # no ratio of medians to hold against a margin
        p_for = p_against = math.nan
    else:
        p_for, p_against = (sooner, later) if _better(claim) == "lower" else (later, sooner)
    verdict = forms.decide(p_for, p_against, len(common))
    text = (f"a median not reached; one-sided log-rank p={p_for:.3g} for, "
            f"{p_against:.3g} against (n={len(common)})")
    return Comparison(name, forms.Decision(verdict, p_for, p_against, math.nan, math.nan,
                                           math.nan, len(common), text), None, note)


# steps to target are measured on the evaluation grid: a comparison needs an evaluation every
# <= 1/GRID_RESOLUTION of the reference arm's median steps (the arm compared with)
GRID_RESOLUTION = 10


def coarse_grid(a: pd.DataFrame, b: pd.DataFrame, sa=None, sb=None) -> str:
    """Why the evaluation grid is too coarse to compare the arms' steps ("" when it is not):
    when both Kaplan-Meier medians are reached, the reference's (``b``'s) must span
    GRID_RESOLUTION evaluations of the grid (a median not reached: the comparison is whether
    an arm reaches at all, which any grid tells)."""
    if "eval_every" not in a or "eval_every" not in b:
        return ""
    sa = steps_of_runs(a) if sa is None else sa
    sb = steps_of_runs(b) if sb is None else sb
    medians = [km_median(*s).median for s in (sa, sb)]
    if not all(math.isfinite(m) for m in medians):
        return ""
    grid = float(max(pd.to_numeric(a["eval_every"]).max(), pd.to_numeric(b["eval_every"]).max()))
    if medians[1] >= GRID_RESOLUTION * grid:
        return ""
    return (f"evaluation grid too coarse: every {grid:g} steps against the reference's median "
            f"of {medians[1]:g} steps (needs an evaluation every <= 1/{GRID_RESOLUTION} of it)")


def _plain(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    factors = list(exp.factors)
    keys = level_key(runs, factors)
    out = []
    for arm, g in _claim_arms(claim, runs, factors):
        levels = {f: g[f].iloc[0] for f in factors}
        if claim.versus:
            c = compare_pair(g, g, claim, f"{arm} ({claim.metric} - {claim.versus})",
                             other_column=claim.versus)
        else:
            ref = (_against(exp, claim, levels, runs, keys) if claim.against
                   else reference_arm(exp, levels))
            if ref is None:
                continue
            other = runs[keys == "|".join(str(ref[f]) for f in factors)]
            if other.empty:
                continue
            name = arm if not claim.against else f"{arm} vs {other['arm'].iloc[0]}"
            c = compare_pair(g, other, claim, name)
        if c is not None:
            out.append(c)
    return out


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


def _against_reference(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    out = []
    for arm, g, levels in _matching(exp, claim, runs):
        ref = {**levels, **exp.reference, **claim.against}
        if ref == levels:
            continue
        c = compare_pair(g, _rows_of(exp, runs, ref), claim, arm)
        if c is not None:
            out.append(c)
    return out


def _grouped(exp: Experiment, claim, runs: pd.DataFrame, factor: str
             ) -> dict[str, dict[str, tuple[str, pd.DataFrame]]]:
    """The matching arms by the combination of their other levels, then by ``factor``'s."""
    groups: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
    for arm, g, levels in _matching(exp, claim, runs, skip=(factor,)):
        rest = ",".join(f"{f}={levels[f]}" for f in exp.factors if f != factor)
        groups.setdefault(rest, {})[str(levels[factor])] = (arm, g)
    return groups


def _ranking(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    """Every ordered pair of the ranked levels within each combination of the other levels
    (the better-ranked level of each pair claimed better)."""
    factor, order = claim.rank
    out = []
    for members in _grouped(exp, claim, runs, factor).values():
        ranked = [str(x) for x in order if str(x) in members]
        for i, hi in enumerate(ranked):
            for lo in ranked[i + 1:]:
                c = compare_pair(members[hi][1], members[lo][1], claim, f"{hi} > {lo}")
                if c is not None:
                    out.append(c)
    return out


def _trend(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    """One trend test per combination of the other levels: seeds x the ordered levels. With
    ``against``, the trend of the paired difference: at each level, the arm's value minus
    that of the arm with the same levels but ``against``'s (e.g. a gain over a reference
    that shrinks as a factor grows); a level without that arm is left out."""
    factor, order = claim.order
    out = []
    for rest, members in _grouped(exp, claim, runs, factor).items():
        levels = [str(x) for x in order if str(x) in members]
        if claim.against:
            others = {lv: _rows_of(exp, runs, {**{f: members[lv][1][f].iloc[0]
                                                  for f in exp.factors}, **claim.against})
                      for lv in levels}
            levels = [lv for lv in levels if not others[lv].empty]
        if len(levels) < 3:
            continue
        frames = [members[lv][1] for lv in levels]
        if claim.against:
            frames += [others[lv] for lv in levels]
        seeds = sorted(set.intersection(*(set(f["seed"]) for f in frames)))
        table = np.column_stack([claim_values(f.set_index("seed").loc[seeds].reset_index(),
                                              claim.column) for f in frames])
        if claim.against:  # the arms' values minus their against arms', per seed
            table = table[:, :len(levels)] - table[:, len(levels):]
        d = forms.trend(table, increasing=claim.expect == "increasing", levels=levels)
        diverged = sum(int(flag(f["diverged"]).sum()) for f in frames if "diverged" in f)
        note = f"{diverged} of {sum(len(f) for f in frames)} runs diverged" if diverged else ""
        name = rest or factor
        if claim.against:
            name += " minus " + ",".join(f"{k}={v}" for k, v in claim.against.items())
        out.append(Comparison(name, d, None, note))
    return out


def _bounded(exp: Experiment, claim, runs: pd.DataFrame) -> list[Comparison]:
    """Each selected arm's mean over seeds against the claim's bounds (statistic range: the
    smallest layer against the low bound, the largest against the high one). A run that
    diverged before its value could be measured lies outside any bounds."""
    low_b, high_b = claim.bounds
    inside = claim.expect == "within"
    columns = ([f"{claim.column}.min", f"{claim.column}.max"] if claim.statistic == "range"
               and claim.layer_metric is not None else [claim.column])
    out = []
    for arm, g, _ in _matching(exp, claim, runs):
        if any(c not in g for c in columns):
            continue
        values = [metric_values(g, c) for c in columns]
        lost = np.isnan(values[0]) & (flag(g["diverged"]) if "diverged" in g else False)
        if lost.any():
            k = int(lost.sum())
            d = forms.Decision(forms.UNCLEAR if len(g) < forms.MIN_SEEDS_FOR_VERDICT else
                               forms.OPPOSITE if inside else forms.AS_EXPECTED,
                               1.0 if inside else 0.0, 0.0 if inside else 1.0, math.nan,
                               math.nan, math.nan, len(g),
                               f"{k} of {len(g)} runs diverged: unbounded, outside "
                               f"[{low_b:g}, {high_b:g}]")
            out.append(Comparison(arm, d))
            continue
        # a positive scale (a std, a ratio) against positive bounds: on the log scale (its
        # geometric mean), where an interval cannot reach below 0
        log = low_b > 0 and all(np.all(v[np.isfinite(v)] > 0) for v in values)
        samples = [forms.Sample(np.log(v) if log else v, ratio=log) for v in values]
        if samples[0].n == 0:
            continue
        d = forms.bounds(samples[0], low_b, high_b, inside, upper=samples[-1])
        if len(samples) > 1:
            hi = forms.bounds(samples[-1], low_b, high_b, inside)
            d = forms.Decision(d.verdict, d.p_for, d.p_against, d.estimate, d.low, d.high, d.n,
                               f"{d.text.rsplit(' (', 1)[0]} to {hi.text}")
        out.append(Comparison(arm, d, None, _diverged_note(g)))
    return out


# ------------------------------------------------------------------ choices among levels

def selection_column(metric: str, runs: pd.DataFrame) -> str:
    """The column that chooses the best of several levels for a claim on ``metric``: the
    eval split's counterpart of a test metric (validation by default), never the test one."""
    column = {"final_test_accuracy": "final_eval_accuracy",
              "final_test_loss": "final_eval_loss",
              "mc_test_accuracy": "final_eval_accuracy"}.get(metric, metric)
    return column if column in runs or column == "divergence_rate" else metric


def _best(candidates: list[tuple[Any, pd.DataFrame]], metric: str):
    """The candidate whose rows have the best mean of the selection column (a diverged run
    counts as accuracy 0); None when none has a finite mean."""
    best, best_mean = None, -math.inf
    for key, rows in candidates:
        column = selection_column(metric, rows)
        sign = -1.0 if lower_is_better(column) else 1.0
        values = claim_values(rows, column) if len(rows) else np.array([math.nan])
        mean = sign * np.nanmean(values) if np.isfinite(values).any() else math.nan
        if math.isfinite(mean) and mean > best_mean:
            best, best_mean = key, mean
    return best


def _claim_arms(claim, runs: pd.DataFrame, factors) -> list[tuple[str, pd.DataFrame]]:
    """The arms a claim is about: their levels match its compare and where levels; where
    compare gives a factor several levels, only the best arm (on the eval split)."""
    def matches(levels, given):
        return all(str(levels[f]) in {str(x) for x in (v if isinstance(v, tuple) else [v])}
                   for f, v in given.items())
    arms = [(arm, g) for arm, g in runs.groupby("arm", sort=False)
            if matches({f: g[f].iloc[0] for f in factors}, {**claim.compare, **claim.where})]
    if arms and any(isinstance(v, tuple) for v in claim.compare.values()):
        best = _best([((arm, g), g) for arm, g in arms], claim.metric)
        arms = [best] if best is not None else []
    return arms


def _against(exp: Experiment, claim, levels: dict, runs: pd.DataFrame, keys: pd.Series):
    """The levels of the arm that a claim's ``against`` names for an arm of ``levels``; a
    factor given several levels takes the one whose arm is best on the eval split."""
    fixed = {k: v for k, v in claim.against.items() if not isinstance(v, tuple)}
    choices_ = [k for k, v in claim.against.items() if isinstance(v, tuple)]
    candidates = [{**levels, **fixed, **dict(zip(choices_, combo, strict=True))}
                  for combo in itertools.product(*(claim.against[k] for k in choices_))]
    rows = [(tuple(cand.items()), runs[keys == "|".join(str(cand[f]) for f in exp.factors)])
            for cand in candidates if cand != levels]
    best = _best(rows, claim.metric)
    return dict(best) if best is not None else None
