"""The evaluators of executable claims: textbook folklore checked against the result CSVs.

A *claim* has an ``id``, its ``text``, the ``experiment`` whose results test it, the
``command`` that produces those results, and one or more checks: a named *evaluator* from
:data:`EVALUATORS` with its parameters (row filters, columns, thresholds).  The packaged
claims live in the experiment files they belong to (``[[claims]]`` tables with ``results``,
``command`` and ``[[claims.check]]``: :func:`packaged_claims`); a user's claims file
(``dnnbench claims --claims FILE``) holds ``[[claim]]`` tables::

    [[claim]]
    id = "my-1"                      # a packaged id replaces that claim
    text = "..."
    experiment = "depth-sweep"       # the result set: <experiment>-<dataset>-runs.csv
    command = "dnnbench depth-sweep --seeds 5"
    [[claim.check]]
    evaluator = "paired_ratio"       # see `dnnbench claims --list-evaluators`
    where = { activation = "relu" }  # column = value | [values] | { min = x, max = y }
    compare = { column = "bn", a = "on", b = "off" }   # the two arms a vs b
    pair_on = ["depth"]              # pairing keys; expect, null, margin, ...: per evaluator

Each evaluator computes an effect, its interval and n with :mod:`dnnbench.stats` and returns
a verdict:

- ``supported``: the interval lies entirely on the side the claim predicts;
- ``contradicted``: it lies entirely on the other side;
- ``inconclusive``: it spans the null (or the margin) -- "no clear difference" -- or it rests
  on fewer than ``min_n`` (default :data:`MIN_N` = 5) seeds or pairs;
- ``not run``: the data the claim needs are missing; the row names the command to run.

A claim with several checks is supported when all are, contradicted when any is, otherwise
inconclusive (and "not run" when any lacks data).  The effect, interval and n reported for
such a claim are those of its deciding check (the first contradicted one, else the first
inconclusive one, else the first).

Censoring: steps-to-target of runs that never reached the target are handled by the
censoring-aware functions (Kaplan-Meier medians, ``paired_censored_comparison``); they are
never imputed.  Results are read from every ``<experiment>-<dataset>-runs.csv`` under the
results folder (recursively, hidden folders skipped; files of the same experiment and data
set are combined, e.g. a ReLU and a sigmoid depth sweep kept in two folders), and each claim
is evaluated once per data set that has its experiment's results.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnbench.analysis.claims import check_claims, claim_values, coarse_grid
from dnnbench.analysis.outcomes import LABELS, MissingData, Outcome, ci, fmt
from dnnbench.definition import experiment as files
from dnnbench.definition.claims import (
    CONTRADICTED,
    EVALUATOR_PARAMS,
    INCONCLUSIVE,
    NOT_TESTED,
    SUPPORTED,
)
from dnnbench.definition.protocols import DEFAULT_PAIRS, pair_label
from dnnbench.results.resultset import ResultSet
from dnnbench.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    forms,
    km_median,
    paired_censored_comparison,
    paired_difference,
    paired_log_ratio,
    resampled_km_medians,
    steps_of_runs,
    verdict_from_interval,
)
from dnnbench.stats.flags import flag

STEPS_COLUMNS = ("seed", "reached", "steps_to_target", "max_steps")


@dataclass(frozen=True)
class Evaluator:
    fn: Callable[[ResultSet, dict], Outcome]
    params: frozenset  # allowed parameter names
    columns: Callable[[dict], set]  # columns the check reads, given its parameters
    doc: str


def _is_true(series: pd.Series) -> pd.Series:
    return pd.Series(flag(series), index=series.index)


def _match(series: pd.Series, value) -> pd.Series:
    """Rows of ``series`` matching a filter value: scalar, list (any of), {min=, max=}."""
    if isinstance(value, dict):
        num = pd.to_numeric(series, errors="coerce")
        ok = pd.Series(True, index=series.index)
        if "min" in value:
            ok &= num >= value["min"]
        if "max" in value:
            ok &= num <= value["max"]
        return ok
    if isinstance(value, list):
        ok = pd.Series(False, index=series.index)
        for v in value:
            ok |= _match(series, v)
        return ok
    if isinstance(value, bool):
        return _is_true(series) == value
    if isinstance(value, int | float):
        num = pd.to_numeric(series, errors="coerce")
        return pd.Series(np.isclose(num.to_numpy(float), float(value), rtol=1e-9, atol=0),
                         index=series.index)
    return series.astype(str) == str(value)


def _default_pair(rs: ResultSet) -> str:
    """The class pair of a transfer run: the only one present, else the transfer experiment's
    documented default pair for this data set (if it was run)."""
    pairs = list(pd.unique(rs.runs["pair"].astype(str)))
    if len(pairs) == 1:
        return pairs[0]
    try:
        pos, neg = DEFAULT_PAIRS[rs.dataset]
        label = pair_label(pos, neg)
    except (ImportError, KeyError):
        label = None
    if label in pairs:
        return label
    raise MissingData(f"{len(pairs)} class pairs and none is the default pair of "
                      f"{rs.dataset!r}; give the pair in the claim's where table")


SPECIAL = {("pair", "default"): _default_pair}


def select(rs: ResultSet, where: dict | None) -> pd.DataFrame:
    """Rows of ``rs`` matching every ``where`` filter (column -> value / list / range)."""
    df = rs.runs
    for col, value in (where or {}).items():
        if col not in df.columns:
            raise MissingData(f"no column {col!r}")
        resolver = SPECIAL.get((col, value)) if isinstance(value, str) else None
        if resolver is not None:
            value = resolver(rs)
        df = df[_match(df[col], value)]
    return df


def _where_text(where: dict | None) -> str:
    def one(k, v):
        if isinstance(v, dict):
            return " and ".join(f"{k}{op}{v[key]}" for key, op in (("min", ">="), ("max", "<="))
                                if key in v)
        return f"{k}={v}"
    return ", ".join(one(k, v) for k, v in (where or {}).items())


def time_triplet(df: pd.DataFrame):
    """Time to target in seconds: steps x step_ms; censored at budget x step_ms."""
    t, r, c = steps_of_runs(df)
    ms = pd.to_numeric(df["step_ms"], errors="coerce").to_numpy(float)
    if np.isnan(ms).any():
        raise MissingData("step_ms is missing (timing was off)")
    return t * ms / 1e3, r, c * ms / 1e3


def pair_up(a: pd.DataFrame, b: pd.DataFrame, on: list[str], what: str):
    """Rows of a and b paired on the ``on`` columns (inner join), in the same order."""
    for name, df in (("a", a), ("b", b)):
        if df.duplicated(on).any():
            raise ValueError(f"{what}: several runs per {'/'.join(on)} in one arm "
                             f"({name}); narrow the claim's where filter")
    keys = a[on].merge(b[on], on=on).sort_values(on)
    if keys.empty:
        raise MissingData(f"{what}: no runs to pair on {'/'.join(on)}")
    ia = a.set_index(on).loc[pd.MultiIndex.from_frame(keys) if len(on) > 1 else keys[on[0]]]
    ib = b.set_index(on).loc[pd.MultiIndex.from_frame(keys) if len(on) > 1 else keys[on[0]]]
    return ia.reset_index(), ib.reset_index()


MIN_N = 5  # fewer seeds (pairs) than this: never more than "inconclusive" (``min_n`` overrides)


def _enough(verdict: str, n: int, p: dict) -> tuple[str, str]:
    """Downgrade a verdict resting on fewer than ``min_n`` seeds/pairs to inconclusive: a
    bootstrap over a handful of values has (almost) no spread but carries no evidence. (The
    paired step comparison already says "no clear difference" below 5 pairs; the evidence
    line says why either way.)"""
    need = int(p.get("min_n", MIN_N))
    if n < need:
        return INCONCLUSIVE, f" [n={n} < {need}: too few for a verdict]"
    return verdict, ""


def _on_grid(verdict: str, a: pd.DataFrame, b: pd.DataFrame) -> tuple[str, str]:
    """The grid rule of the file claims (:func:`coarse_grid`) for a steps comparison of ``a``
    against the reference ``b``: inconclusive, and why, when the evaluation grid is too coarse
    for the reference's median steps."""
    why = coarse_grid(a, b)
    return (INCONCLUSIVE, f" [{why}]") if why else (verdict, "")


def _side(value_ok: bool, value_bad: bool) -> str:
    return SUPPORTED if value_ok else CONTRADICTED if value_bad else INCONCLUSIVE


def _step_verdict(cmp, expect: str) -> str:
    """Map a paired_censored_comparison verdict (for a vs b) to the claim's verdict."""
    good, bad = ("fewer steps", "more steps") if expect == "fewer" else ("more steps",
                                                                        "fewer steps")
    return _side(cmp.verdict == good, cmp.verdict == bad)


def _km_text(df: pd.DataFrame) -> str:
    s = km_median(*steps_of_runs(df))
    return f"{fmt(s.median, '{:.0f}')} ({s.n_reached}/{s.n})"


def _compare_text(cmp) -> str:
    return (f"{ci(cmp.ratio, cmp.low, cmp.high)}, sign test p={fmt(cmp.p_value, '{:.2g}')} "
            f"({cmp.n_pairs_a_faster} vs {cmp.n_pairs_b_faster} pairs, {cmp.n_ties} undecided)")


def _by_compare(df: pd.DataFrame, compare: dict, where: dict | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    col = compare["column"]
    if col not in df.columns:
        raise MissingData(f"no column {col!r}")
    a, b = df[_match(df[col], compare["a"])], df[_match(df[col], compare["b"])]
    for name, part in ((compare["a"], a), (compare["b"], b)):
        if part.empty:
            extra = f" and {_where_text(where)}" if where else ""
            raise MissingData(f"no runs with {col}={name}{extra}")
    return a, b


def _depth_ends(rs: ResultSet, p: dict):
    df = select(rs, p.get("where"))
    if "depth" not in df.columns or df.empty:
        raise MissingData(f"no runs with {_where_text(p.get('where'))}")
    depths = sorted(pd.unique(pd.to_numeric(df["depth"]).astype(int)))
    lo = int(p.get("from_depth", depths[0]))
    hi = int(p.get("to_depth", depths[-1]))
    if len(depths) < 2 or lo == hi or lo not in depths or hi not in depths:
        raise MissingData(f"needs runs at two depths (have {depths})")
    a = df[df["depth"].astype(int) == hi]
    b = df[df["depth"].astype(int) == lo]
    a, b = pair_up(a, b, list(p.get("pair_on", ["seed"])), "depth comparison")
    cmp = paired_censored_comparison(*steps_of_runs(a), *steps_of_runs(b))
    per_depth = "; ".join(f"{d}: {_km_text(df[df['depth'].astype(int) == d])}" for d in depths)
    return cmp, lo, hi, per_depth, (a, b)


def trend_with_depth(rs: ResultSet, p: dict) -> Outcome:
    """Steps to target grow with depth: paired (by seed) ratio of Kaplan-Meier median steps,
    deepest / shallowest depth (``to_depth`` / ``from_depth``), with its paired-bootstrap
    interval.  Supported if the interval lies above 1, contradicted if below."""
    cmp, lo, hi, per_depth, (a, b) = _depth_ends(rs, p)
    verdict, grid = _on_grid(_step_verdict(cmp, "more"), a, b)
    verdict, note = _enough(verdict, cmp.n, p)
    note = grid + note
    return Outcome(verdict, cmp.ratio, cmp.low, cmp.high, cmp.n,
                   f"median steps depth {hi} / depth {lo} = {_compare_text(cmp)}; KM median "
                   f"steps (reached/N) by depth: {per_depth}{note}")


def flat_with_depth(rs: ResultSet, p: dict) -> Outcome:
    """Steps to target stay nearly flat with depth: the paired deepest / shallowest ratio of
    median steps lies within [1/margin, margin] (default margin 1.5).  Supported if its whole
    interval is inside that band, contradicted if it lies entirely outside, else
    inconclusive."""
    m = float(p.get("margin", 1.5))
    cmp, lo, hi, per_depth, (a, b) = _depth_ends(rs, p)
    low = 0.0 if math.isnan(cmp.low) else cmp.low
    high = math.inf if math.isnan(cmp.high) else cmp.high
    if math.isnan(cmp.ratio):
        verdict = CONTRADICTED if cmp.verdict in ("fewer steps", "more steps") else INCONCLUSIVE
    else:
        verdict = _side(low >= 1 / m and high <= m, low > m or high < 1 / m)
    verdict, grid = _on_grid(verdict, a, b)
    verdict, note = _enough(verdict, cmp.n, p)
    note = grid + note
    return Outcome(verdict, cmp.ratio, cmp.low, cmp.high, cmp.n,
                   f"median steps depth {hi} / depth {lo} = {_compare_text(cmp)}, 'flat' band "
                   f"[{1 / m:.2f}, {m:.2f}]; KM median steps by depth: {per_depth}{note}")


def paired_ratio(rs: ResultSet, p: dict) -> Outcome:
    """Ratio a / b of a per-arm (or per-run) column, paired on ``pair_on`` (e.g. BN vs no-BN
    step time at each depth): geometric mean of the per-pair ratios with a bootstrap interval
    (``paired_log_ratio``, ``method`` "bca" or "t").  ``expect="higher"``: supported if the
    interval lies above ``null`` (default 1), contradicted if below; ``"lower"`` the reverse."""
    col, on = p["column"], list(p.get("pair_on", ["seed"]))
    a, b = _by_compare(select(rs, p.get("where")), p["compare"], p.get("where"))
    if p.get("aggregate", "first") == "first":  # one value per arm (e.g. step_ms)
        a = a.groupby(on, as_index=False)[col].first()
        b = b.groupby(on, as_index=False)[col].first()
    a, b = pair_up(a, b, on, col)
    r = paired_log_ratio(pd.to_numeric(a[col]), pd.to_numeric(b[col]),
                         method=p.get("method", "bca"))
    expect, null = p.get("expect", "higher"), float(p.get("null", 1.0))
    verdict = verdict_from_interval(r.low, r.high, better=expect, null=null, labels=LABELS)
    verdict, note = _enough(verdict, r.n, p)
    cmp = p["compare"]
    ratios = pd.to_numeric(a[col]).to_numpy(float) / pd.to_numeric(b[col]).to_numpy(float)
    per = ", ".join(f"{'/'.join(str(a[c].iloc[i]) for c in on)}: {ratios[i]:.2f}"
                    for i in range(len(a)))
    return Outcome(verdict, r.estimate, r.low, r.high, r.n,
                   f"{col} {cmp['column']}={cmp['a']} / {cmp['column']}={cmp['b']}: geometric "
                   f"mean ratio {ci(r.estimate, r.low, r.high)} over {r.n} pairs "
                   f"({'/'.join(on)}: {per}){note}")


def time_to_target_ratio(rs: ResultSet, p: dict) -> Outcome:
    """Total time to target (steps x step time) of a vs b, paired on ``pair_on`` (default
    activation/depth/seed, pooling the selected depths): ratio of Kaplan-Meier median times
    with a paired-bootstrap interval; runs that never reach the target are censored at
    budget x step time.  ``expect="lower"``: supported if the interval lies below 1."""
    on = list(p.get("pair_on", ["activation", "depth", "seed"]))
    a, b = _by_compare(select(rs, p.get("where")), p["compare"], p.get("where"))
    a, b = pair_up(a, b, on, "time to target")
    cmp = paired_censored_comparison(*time_triplet(a), *time_triplet(b))
    verdict = _step_verdict(cmp, "fewer" if p.get("expect", "lower") == "lower" else "more")
    verdict, grid = _on_grid(verdict, a, b)
    verdict, note = _enough(verdict, cmp.n, p)
    note = grid + note
    ka, kb = km_median(*time_triplet(a)), km_median(*time_triplet(b))
    c = p["compare"]
    return Outcome(verdict, cmp.ratio, cmp.low, cmp.high, cmp.n,
                   f"KM median time to target {c['column']}={c['a']}: {fmt(ka.median, '{:.3g}')}"
                   f" s vs {c['column']}={c['b']}: {fmt(kb.median, '{:.3g}')} s; ratio "
                   f"{_compare_text(cmp)}; pairs on {'/'.join(on)} "
                   f"({_where_text(p.get('where'))}){note}")


def interleaved_timing(rs: ResultSet, p: dict) -> Outcome:
    """A per-step cost of a vs b (``column``, default step_ms) from the interleaved timing
    rounds (``timing_rounds`` of the experiment file, :mod:`dnnbench.run.timing`): at each
    level of ``by`` (default depth), the rounds pair a with b (timed seconds apart) and the
    mean log ratio over the rounds gets a Student-t interval; the claim holds for every level
    (Holm across them: :func:`dnnbench.stats.forms.every`). ``expect="higher"``: supported
    when every level's ratio lies above 1, contradicted when some level's lies below."""
    if rs.timing is None or rs.timing.empty:
        raise MissingData("no interleaved timings: the run needs timing_rounds (its file's "
                          "key) > 0")
    col, by, cmp = p.get("column", "step_ms"), p.get("by", "depth"), p["compare"]
    runs = select(rs, p.get("where"))
    levels = runs.drop_duplicates("arm").set_index("arm")
    for c in (cmp["column"], by):
        if c not in levels.columns:
            raise MissingData(f"no column {c!r}")
    t = rs.timing[rs.timing["arm"].isin(levels.index)].copy()
    t[by], t["side"] = t["arm"].map(levels[by]), t["arm"].map(levels[cmp["column"]]).astype(str)
    decisions, words = [], []
    for level, g in t.groupby(by, sort=True):
        wide = g.pivot_table(index="round", columns="side", values=col, aggfunc="first")
        if str(cmp["a"]) not in wide or str(cmp["b"]) not in wide:
            continue
        log_ratio = np.log(wide[str(cmp["a"])] / wide[str(cmp["b"])]).to_numpy(float)
        d = forms.superiority(forms.Sample(log_ratio, ratio=True), p.get("expect", "higher"))
        decisions.append(d)
        words.append(f"{by} {level}: {d.text}")
    if not decisions:
        raise MissingData(f"no rounds time both {cmp['column']}={cmp['a']} and "
                          f"{cmp['column']}={cmp['b']} ({_where_text(p.get('where'))})")
    combined = forms.every(decisions)
    weakest = max(decisions, key=lambda d: d.p_for)
    verdict = {forms.AS_EXPECTED: SUPPORTED, forms.OPPOSITE: CONTRADICTED}.get(
        combined.verdict, INCONCLUSIVE)
    rounds = int(rs.timing["round"].nunique())
    return Outcome(verdict, weakest.estimate, weakest.low, weakest.high, combined.n,
                   f"{col} {cmp['column']}={cmp['a']} / {cmp['column']}={cmp['b']} over "
                   f"{rounds} interleaved timing rounds, every {by} ({combined.text}): "
                   + "; ".join(words) + f" ({_where_text(p.get('where'))})")


def _median_bounds(obs, event, censor, idx) -> tuple[np.ndarray, np.ndarray]:
    """Per resample, bounds on the KM median: [m, m] when reached, [budget, inf] when not."""
    med = resampled_km_medians(obs, event, censor, idx)
    budget = np.array([np.max(censor[i]) for i in idx])
    return np.where(np.isnan(med), budget, med), np.where(np.isnan(med), np.inf, med)


def frac_bounds(u_lo, u_hi, v_lo, v_hi) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of f = 1 - u / v over boxes [u_lo, u_hi] x [v_lo, v_hi] (v = log of the gap
    without BN, u = with BN).  f is undefined where v may be <= 0 (no gap to close)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corners = np.stack([u / v for u in (u_lo, u_hi) for v in (v_lo, v_hi)])
    bad = np.isnan(corners).any(axis=0) | (v_lo <= 0)
    f_lo = np.where(bad, -np.inf, 1 - corners.max(axis=0))
    f_hi = np.where(bad, np.inf, 1 - corners.min(axis=0))
    return f_lo, f_hi


def sigmoid_gap(rs: ResultSet, p: dict) -> Outcome:
    """Sigmoid vs ReLU at one depth (``depth``: an int or "deepest" common one), paired by
    seed across the four arms (activation x BN).  Gap without BN g0 = median steps sigmoid /
    ReLU; with BN g1 likewise; share of the (log) gap BN closes f = 1 - log g1 / log g0.
    Supported if g0's interval lies above ``much`` (default 1.5) AND f's lies above
    ``closes`` (0.5, "most of the gap"); contradicted if either lies entirely on the other
    side.  Intervals: paired bootstrap over seeds of KM medians; a median not reached within
    the budget is only known to be > budget, and f's interval then uses those bounds
    (interval arithmetic), never an imputed value."""
    slow, fast = p.get("activations", ["sigmoid", "relu"])
    much, closes = float(p.get("much", 1.5)), float(p.get("closes", 0.5))
    df = select(rs, p.get("where"))
    for col in ("activation", "bn", "depth"):
        if col not in df.columns:
            raise MissingData(f"no column {col!r}")
    need = {(act, bn) for act in (slow, fast) for bn in (False, True)}
    depths = [d for d, g in df.groupby(pd.to_numeric(df["depth"]).astype(int))
              if need <= {(str(x), bool(y)) for x, y in zip(g["activation"], _is_true(g["bn"]),
                                                            strict=True)}]
    if not depths:
        raise MissingData(f"needs {slow} and {fast} runs with and without BN at a common depth "
                          "(run the depth sweep with --activation relu --activation sigmoid)")
    depth = max(depths) if p.get("depth", "deepest") == "deepest" else int(p["depth"])
    if depth not in depths:
        raise MissingData(f"no complete set of arms at depth {depth} (have {depths})")
    g = df[pd.to_numeric(df["depth"]).astype(int) == depth]
    arms = {}
    for act in (slow, fast):
        for bn in (False, True):
            arms[act, bn] = g[(g["activation"].astype(str) == act) & (_is_true(g["bn"]) == bn)]
    seeds = set.intersection(*(set(a["seed"].astype(int)) for a in arms.values()))
    if len(seeds) < 2:
        raise MissingData(f"needs at least 2 seeds shared by the four arms at depth {depth}")
    for k, a in arms.items():
        if a.duplicated("seed").any():
            raise ValueError(f"several runs per seed in arm {k}; narrow the where filter")
        arms[k] = a.set_index(a["seed"].astype(int)).loc[sorted(seeds)]
    n = len(seeds)
    obs = {k: steps_of_runs(a) for k, a in arms.items()}
    obs = {k: (np.where(r, t, c), r, c) for k, (t, r, c) in obs.items()}
    idx = np.random.default_rng(DEFAULT_SEED).integers(0, n, size=(DEFAULT_RESAMPLES, n))
    point = np.arange(n)[None, :]

    def stats_for(ix):
        b = {k: _median_bounds(*o, ix) for k, o in obs.items()}
        v_lo = np.log(b[slow, False][0]) - np.log(b[fast, False][1])
        v_hi = np.log(b[slow, False][1]) - np.log(b[fast, False][0])
        u_lo = np.log(b[slow, True][0]) - np.log(b[fast, True][1])
        u_hi = np.log(b[slow, True][1]) - np.log(b[fast, True][0])
        return v_lo, v_hi, u_lo, u_hi, frac_bounds(u_lo, u_hi, v_lo, v_hi)

    pv_lo, pv_hi, pu_lo, pu_hi, (pf_lo, pf_hi) = stats_for(point)
    v_lo, v_hi, _, _, (f_lo, f_hi) = stats_for(idx)
    def q(x, level, method):  # percentile bounds; "lower"/"higher" keep +-inf intact
        return float(np.quantile(x, level, method=method))

    g0_low, g0_high = math.exp(q(v_lo, 0.025, "lower")), math.exp(q(v_hi, 0.975, "higher"))
    f_low, f_high = q(f_lo, 0.025, "lower"), q(f_hi, 0.975, "higher")
    g0 = float(np.exp(pv_lo[0])) if pv_lo[0] == pv_hi[0] else math.nan
    g1 = float(np.exp(pu_lo[0])) if pu_lo[0] == pu_hi[0] else math.nan
    f = float(pf_lo[0]) if pf_lo[0] == pf_hi[0] else math.nan
    part_a = _side(g0_low > much, g0_high < much)
    part_b = _side(f_low > closes, f_high < closes)
    verdict = (CONTRADICTED if CONTRADICTED in (part_a, part_b) else
               SUPPORTED if part_a == part_b == SUPPORTED else INCONCLUSIVE)
    verdict, note = _enough(verdict, n, p)
    f_low_r = f_low if math.isfinite(f_low) else math.nan
    f_high_r = f_high if math.isfinite(f_high) else math.nan
    g0_text = fmt(g0) if not math.isnan(g0) else f">= {math.exp(pv_lo[0]):.2f} (not reached)"
    f_text = fmt(f) if not math.isnan(f) else f"in [{fmt(pf_lo[0])}, {fmt(pf_hi[0])}]"
    ev = (f"depth {depth}, {n} seeds: KM median steps {slow}/{fast} without BN "
          f"{_km_text(arms[slow, False])} / {_km_text(arms[fast, False])}, with BN "
          f"{_km_text(arms[slow, True])} / {_km_text(arms[fast, True])}; gap without BN "
          f"{g0_text} [{fmt(g0_low)}, {fmt(g0_high)}] (needs > {much:g}: {part_a}); with BN "
          f"{fmt(g1)}; share of the log gap BN closes {f_text} [{fmt(f_low)}, "
          f"{fmt(f_high)}] (needs > {closes:g}: {part_b}){note}")
    return Outcome(verdict, f, f_low_r, f_high_r, n, ev)


def group_vs_reference(rs: ResultSet, p: dict) -> Outcome:
    """Every member of ``group`` (values of ``column``, e.g. optimizers) against
    ``reference``, paired by seed, on steps to target (``paired_censored_comparison``).
    ``expect="fewer"``: a member supports the claim if its median-steps ratio interval lies
    below 1, contradicts it if above.  ``expect="not_more"`` (non-inferiority): supports if
    the interval's upper end is below ``margin`` (default 1.1), contradicts if its lower end
    is above it.  All members must support the claim for "supported"; any contradiction
    gives "contradicted".  A member without runs -> "not run"."""
    col, ref = p.get("column", "optimizer"), p["reference"]
    group = list(p["group"])
    expect, margin = p.get("expect", "fewer"), float(p.get("margin", 1.1))
    on = list(p.get("pair_on", ["seed"]))
    df = select(rs, p.get("where"))
    if col not in df.columns:
        raise MissingData(f"no column {col!r}")
    b = df[_match(df[col], ref)]
    missing = [m for m in [ref, *group] if df[_match(df[col], m)].empty]
    if missing:
        raise MissingData(f"no runs for {col} {', '.join(map(str, missing))} "
                          f"({_where_text(p.get('where'))})")
    parts = []
    for m in group:
        a, bb = pair_up(df[_match(df[col], m)], b, on, f"{m} vs {ref}")
        cmp = paired_censored_comparison(*steps_of_runs(a), *steps_of_runs(bb))
        note = _unreached_ratio(a, bb, m, ref) if math.isnan(cmp.ratio) else ""
        if expect == "fewer":
            v = _step_verdict(cmp, "fewer")
        else:
            high = math.inf if math.isnan(cmp.high) else cmp.high
            low = 0.0 if math.isnan(cmp.low) else cmp.low
            v = _side(high < margin, low > margin) if not math.isnan(cmp.ratio) else (
                CONTRADICTED if cmp.verdict == "more steps" else INCONCLUSIVE)
        v, grid = _on_grid(v, a, bb)
        v, _ = _enough(v, cmp.n, p)
        parts.append((m, cmp, v, note, grid))
    verdicts = [x[2] for x in parts]
    verdict = (CONTRADICTED if CONTRADICTED in verdicts else
               SUPPORTED if all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE)
    # deciding member: a contradicting one, else an inconclusive one, else the weakest
    order = {CONTRADICTED: 0, INCONCLUSIVE: 1, SUPPORTED: 2}
    key = (lambda x: (order[x[2]], -(x[1].high if not math.isnan(x[1].high) else math.inf)))
    m, cmp, _, note, _ = min(parts, key=key)
    rule = ("ratio interval below 1" if expect == "fewer"
            else f"ratio interval below {margin:g} (non-inferiority)")
    if any(x[3] for x in parts):
        rule += ("; a median not reached within the budget (n/N reached) only bounds the "
                 "ratio by median / budget, and the log-rank test decides")
    ev = (f"median steps / {ref} ({rule}): " + "; ".join(
        f"{mm}: {nn or ci(c.ratio, c.low, c.high)} {v}{g}" for mm, c, v, nn, g in parts)
        + f"; {cmp.n} seeds ({_where_text(p.get('where'))})" + _enough(SUPPORTED, cmp.n, p)[1])
    return Outcome(verdict, cmp.ratio, cmp.low, cmp.high, cmp.n, ev,
                   f"{m} / {ref}: {note}, {ref}'s median beyond the budget" if note else "")


def _unreached_ratio(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> str:
    """The median-steps ratio a / b in words when a median was not reached: b's median lies
    beyond its budget, so the ratio is below median(a) / budget (or the reverse); the log-rank
    test decides such a comparison (see ``paired_censored_comparison``)."""
    ta, tb = steps_of_runs(a), steps_of_runs(b)
    ka, kb = km_median(*ta), km_median(*tb)
    reached = f"{ka.n_reached}/{ka.n} vs {kb.n_reached}/{kb.n} reached"
    if not math.isnan(ka.median) and math.isnan(kb.median):
        return f"< {ka.median / float(np.nanmax(tb[2])):.2g} ({reached})"
    if math.isnan(ka.median) and not math.isnan(kb.median):
        return f"> {float(np.nanmax(ta[2])) / kb.median:.2g} ({reached})"
    return f"undefined ({reached})"


def _scaled(df: pd.DataFrame, col: str, scale: float) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(float) * scale


def paired_difference_check(rs: ResultSet, p: dict) -> Outcome:
    """Paired difference a - b of ``column`` (e.g. final accuracy), paired on ``pair_on``
    (default seed): mean difference with a bootstrap interval and a Wilcoxon p-value
    (``paired_difference``), in units of ``column`` x ``scale``.  ``expect="lower"``:
    supported if the interval lies below ``null`` (default 0), contradicted if above; an
    interval that spans it is inconclusive."""
    col, on, scale = p["column"], list(p.get("pair_on", ["seed"])), float(p.get("scale", 1))
    df = select(rs, p.get("where"))
    a, b = _by_compare(df, p["compare"], p.get("where"))
    a, b = pair_up(a, b, on, col)
    d = paired_difference(_scaled(a, col, scale), _scaled(b, col, scale))
    expect, null = p.get("expect", "higher"), float(p.get("null", 0.0))
    verdict = verdict_from_interval(d.low, d.high, better=expect, null=null, labels=LABELS)
    verdict, note = _enough(verdict, d.n, p)
    c, unit = p["compare"], p.get("unit", "")
    return Outcome(verdict, d.mean_diff, d.low, d.high, d.n,
                   f"{col} {c['column']}={c['a']} - {c['column']}={c['b']}: "
                   f"{ci(d.mean_diff, d.low, d.high, '{:+.2f}')} {unit}, Wilcoxon p="
                   f"{fmt(d.p_value, '{:.2g}')}, a higher in {round(d.frac_a_better * d.n)}/"
                   f"{d.n} pairs ({_where_text(p.get('where'))}){note}".replace("  ", " "))


def not_consistently_positive(rs: ResultSet, p: dict) -> Outcome:
    """Across groups (``group_by``, e.g. class pairs) the paired gain a - b is not positive
    everywhere, decided by ONE test across the groups (not one interval per group): a
    random-effects model of the per-group gains (:func:`dnnbench.stats.forms.heterogeneity`).
    Supported when the gain differs between groups (Cochran's Q, p < 0.05) and the 95%
    prediction interval of a new group's gain reaches 0 or below; contradicted when that
    prediction interval lies above 0 (the gain is consistently positive); otherwise
    inconclusive. Needs ``min_groups`` (10, at least 3) groups with paired runs: with fewer,
    the prediction interval is mostly the t quantile of k - 2 degrees of freedom (12.7 for 3
    groups); ``negligible`` is shown beside the share of groups whose mean gain is below it."""
    col, by = p["column"], p.get("group_by", "pair")
    on, scale = list(p.get("pair_on", ["seed"])), float(p.get("scale", 1))
    neg = float(p.get("negligible", 0.005)) * scale
    df = select(rs, p.get("where"))
    if by not in df.columns:
        raise MissingData(f"no column {by!r}")
    groups = list(pd.unique(df[by].astype(str)))
    need_groups = max(3, int(p.get("min_groups", 10)))
    if len(groups) < need_groups:
        raise MissingData(f"needs several {by}s (have {len(groups)})")
    gains = {}
    for gname in groups:
        g = df[df[by].astype(str) == gname]
        try:
            a, b = _by_compare(g, p["compare"])
            a, b = pair_up(a, b, on, f"{by} {gname}")
        except MissingData:
            continue
        gains[gname] = _scaled(a, col, scale) - _scaled(b, col, scale)
    if len(gains) < need_groups:
        raise MissingData(f"needs several {by}s with paired runs (have {len(gains)})")
    h = forms.heterogeneity(list(gains.values()), float(p.get("confidence", forms.CONFIDENCE)))
    verdict = {forms.AS_EXPECTED: SUPPORTED, forms.OPPOSITE: CONTRADICTED}.get(
        forms.not_consistently_positive(h), INCONCLUSIVE)
    means = {g: float(np.nanmean(v)) for g, v in gains.items()}
    low_g = min(means, key=means.get)
    unit = p.get("unit", "")
    seeds = min(int(np.isfinite(v).sum()) for v in gains.values())
    ev = (f"{h.groups} {by}s, gain {col} {p['compare']['a']} - {p['compare']['b']}, one "
          f"random-effects model across {by}s: mean {ci(h.mean, h.mean_low, h.mean_high)} "
          f"{unit}, between-{by} sd {h.tau:.2f}, heterogeneity Q p={h.p_q:.2g}, 95% "
          f"prediction interval of a new {by}'s gain [{h.predict_low:+.2f}, "
          f"{h.predict_high:+.2f}] {unit}; mean gain below {neg:g} {unit} in "
          f"{sum(m < neg for m in means.values())} of {len(means)} {by}s (lowest: {low_g} "
          f"{means[low_g]:+.2f}); >= {seeds} seeds per {by}")
    return Outcome(verdict, h.mean, h.predict_low, h.predict_high, h.groups, ev,
                   f"new {by}: {h.mean:+.2f} [{h.predict_low:+.2f}, {h.predict_high:+.2f}] "
                   f"{unit}".strip())


def _spreads(part: pd.DataFrame, col: str, by: str, levels: list, on: list[str],
             statistic: str, scale: float) -> tuple[pd.Series, pd.DataFrame]:
    """Per pair key (``on``), the spread of ``col`` over ``levels`` of ``by`` (NaN where a
    level has no value), and the wide table (pairs x levels) it comes from."""
    part = part[part[by].astype(str).isin([str(v) for v in levels])]
    t = part[on].copy()
    t["_level"], t["_value"] = part[by].astype(str).to_numpy(), claim_values(part, col) * scale
    if t.duplicated([*on, "_level"]).any():
        raise ValueError(f"spread of {col}: several runs per {'/'.join(on)} and {by} level in "
                         "one arm; narrow the claim's where filter")
    wide = t.pivot(index=on, columns="_level", values="_value").reindex(
        columns=[str(v) for v in levels])
    values = wide.to_numpy(float)
    with np.errstate(invalid="ignore"):
        if statistic == "range":
            spread = values.max(axis=1) - values.min(axis=1)  # NaN where a level is missing
        else:
            spread = np.where(np.isinf(values).any(axis=1), np.inf, values.std(axis=1, ddof=1))
    return pd.Series(spread, index=wide.index), wide


def spread_across(rs: ResultSet, p: dict) -> Outcome:
    """How much ``column`` varies over the levels of the factor ``across`` (e.g. the
    initializer's scale: "less sensitive to the init scale"), arm a against arm b of
    ``compare``, paired on ``pair_on`` (default seed): for each pair, the spread of a's values
    over the levels (``statistic``: range = max - min, the default, or std, the standard
    deviation) minus b's, in units of ``column`` x ``scale``, and the mean of these paired
    differences tested against ``null`` (default 0) by superiority (a Student-t interval,
    :func:`dnnbench.stats.forms.superiority`). ``expect="lower"``: supported when a's spread is
    smaller (the interval lies below ``null``), contradicted when it is larger. The levels are
    those both arms have (at least 2). A diverged run counts, as in the file claims (accuracy
    0; a loss of +inf, an infinite spread: then the sign test decides); a pair without a run
    at some level of either arm is left out (n: the pairs used)."""
    col, by = p["column"], p["across"]
    on, scale = list(p.get("pair_on", ["seed"])), float(p.get("scale", 1))
    statistic, expect = p.get("statistic", "range"), p.get("expect", "lower")
    df = select(rs, p.get("where"))
    for c in (by, "diverged" if col == "divergence_rate" else col):
        if c not in df.columns:
            raise MissingData(f"no column {c!r}")
    a, b = _by_compare(df, p["compare"], p.get("where"))
    shared = set(a[by].astype(str)) & set(b[by].astype(str))
    levels = [v for v in pd.unique(pd.concat([a[by], b[by]])) if str(v) in shared]
    levels = sorted(levels, key=lambda v: (pd.to_numeric(pd.Series([v]), errors="coerce")
                                           .fillna(math.inf).iloc[0], str(v)))
    if len(levels) < 2:
        raise MissingData(f"needs runs of both arms at two or more levels of {by} (shared: "
                          f"{', '.join(map(str, levels)) or 'none'}; "
                          f"{_where_text(p.get('where'))})")
    sa, wa = _spreads(a, col, by, levels, on, statistic, scale)
    sb, wb = _spreads(b, col, by, levels, on, statistic, scale)
    keys = sa.index.intersection(sb.index)
    if keys.empty:
        raise MissingData(f"spread of {col}: no runs to pair on {'/'.join(on)}")
    sa, sb = sa.loc[keys], sb.loc[keys]
    used = sa.notna() & sb.notna()  # inf - inf (both infinite) is a tie of the sign test
    sa, sb = sa[used], sb[used]
    with np.errstate(invalid="ignore"):
        d = (sa - sb).to_numpy(float)
    infinite = bool(np.isinf(sa).any() or np.isinf(sb).any())
    if infinite:
        decision = forms.sign(d, expect, "a diverged run's infinite loss makes the spread "
                                         "infinite, the largest")
    else:
        decision = forms.superiority(forms.Sample(d), expect, float(p.get("null", 0.0)))
    verdict = {forms.AS_EXPECTED: SUPPORTED, forms.OPPOSITE: CONTRADICTED}.get(
        decision.verdict, INCONCLUSIVE)
    n = int(used.sum())
    verdict, note = _enough(verdict, n, p)
    c, unit = p["compare"], p.get("unit", "")

    def means(wide: pd.DataFrame) -> str:
        m = wide.loc[keys][used.to_numpy()].mean(axis=0)
        return ", ".join(f"{lv}: {fmt(float(v), '{:.3g}')}" for lv, v in m.items())

    diverged = ""
    if "diverged" in df.columns:
        ka, kb = (int(flag(x["diverged"]).sum()) for x in (a, b))
        diverged = f"; diverged: {ka} of {len(a)} vs {kb} of {len(b)} runs" if ka or kb else ""
    lost = len(keys) - n
    ev = (f"{statistic} of {col} over {by} ({len(levels)} levels) {c['column']}={c['a']} - "
          f"{c['column']}={c['b']}: {decision.text}{' ' + unit if unit else ''}; mean {statistic} "
          f"{fmt(float(sa.mean()), '{:.3g}')} vs {fmt(float(sb.mean()), '{:.3g}')}; "
          f"mean {col} by {by}, {c['a']}: {means(wa)}; {c['b']}: {means(wb)}{diverged}"
          + (f"; {lost} pair(s) without every level left out" if lost else "")
          + (f" ({_where_text(p['where'])})" if p.get("where") else "") + note)
    return Outcome(verdict, decision.estimate, decision.low, decision.high, n, ev)


def experiment_file_claim(rs: ResultSet, p: dict) -> Outcome:
    """A claim of an experiment file (compare, where, metric, expect; ``claim`` names it, in
    the packaged file ``file``, else in the definition the results' metadata records),
    checked as `dnnbench run` checks it: every compared arm against the file's reference arm,
    paired by seed, on results of `dnnbench run FILE` (their metadata records the
    experiment's definition)."""
    definition = rs.recorded_definition
    if definition is None:
        raise MissingData(f"{', '.join(rs.files)}: the metadata records no experiment "
                          "definition (results of an older dnnbench run)")
    recorded = files.parse(json.loads(definition), "recorded definition")
    source = files.load(p["file"]) if "file" in p else recorded
    claim = next((c for c in source.claims if c.id == p["claim"]), None)
    if claim is None:
        raise MissingData(f"{', '.join(rs.files)}: the experiment has no claim {p['claim']!r}")
    lacking = files.missing_factors(claim, recorded)
    if lacking:
        raise MissingData(f"{', '.join(rs.files)} lack the factor {', '.join(lacking)} the "
                          "claim names (results of an earlier design: run it again)")
    row = check_claims(dataclasses.replace(recorded, claims=(claim,)), rs.runs,
                       rs.layers).iloc[0]
    if row["verdict"] == NOT_TESTED:
        raise MissingData(f"{', '.join(rs.files)}: {row['effects']}")
    # the effect's number when one comparison (or a pooled test) decides; else the words
    number = math.isfinite(row["effect"])
    n = int(row["n"]) if row["n"] == row["n"] else int(rs.runs["seed"].nunique())
    return Outcome(row["verdict"], row["effect"], row["low"], row["high"], n,
                   evidence=f"{row['arms']} comparison(s), paired by seed: {row['effects']}",
                   effect_note="" if number else row["effects"])


def _cols(*fixed: str, keys=("column",), compare=True, group=()):
    def columns(p: dict) -> set:
        out = set(fixed) | set((p.get("where") or {}).keys())
        out |= {p[k] for k in keys if k in p}
        if compare and "compare" in p:
            out.add(p["compare"]["column"])
        out |= set(p.get("pair_on", []))
        out |= {p[k] for k in group if k in p}
        return out
    return columns


EVALUATORS: dict[str, Evaluator] = {name: Evaluator(fn, EVALUATOR_PARAMS[name], cols, fn.__doc__)
                                    for name, fn, cols in (
    ("trend_with_depth", trend_with_depth, _cols("depth", *STEPS_COLUMNS)),
    ("flat_with_depth", flat_with_depth, _cols("depth", *STEPS_COLUMNS)),
    ("paired_ratio", paired_ratio, _cols()),
    ("time_to_target_ratio", time_to_target_ratio, _cols("step_ms", *STEPS_COLUMNS)),
    ("interleaved_timing", interleaved_timing, _cols("arm", keys=(), group=("by",))),
    ("sigmoid_gap", sigmoid_gap, _cols("activation", "bn", "depth", *STEPS_COLUMNS)),
    ("group_vs_reference", group_vs_reference, _cols(*STEPS_COLUMNS)),
    ("paired_difference", paired_difference_check, _cols()),
    ("not_consistently_positive", not_consistently_positive, _cols(group=("group_by",))),
    ("spread_across", spread_across, lambda p: {
        ("diverged" if c == "divergence_rate" else c)
        for c in _cols(keys=("column", "across"))(p)}),
    ("experiment_file", experiment_file_claim, lambda p: {"arm", "seed"}),
)}
assert set(EVALUATORS) == set(EVALUATOR_PARAMS), "every declared evaluator has its function"
