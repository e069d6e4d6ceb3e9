"""The claim: ONE type for every claim an experiment file or a claims file makes.

A claim of an experiment file (``[[claims]]``) is one of three kinds:

- a *plain* claim about its arms (``compare``, ``where``, ``metric``, ``expect``: fewer, more,
  higher, lower, same, not-lower, not-higher; ``against``, ``versus``, ``margin``), a
  *diagnostic* claim (a ranking, a trend: expect increasing / decreasing over ``order``,
  bounds, a per-layer ``layers.*`` metric), or a claim about a ``[search]``
  (``test = "best" | "importance"``). Each expectation is decided by its form (FORM_OF:
  superiority, non-inferiority, equivalence, bounds, trend; :mod:`dnnbench.stats.forms`) and
  a claim over several comparisons by its ``quantifier`` (every, with Holm's correction; or
  pooled);
- an *evaluator* claim: ``[[claims.check]]`` tables naming evaluators of ``dnnbench claims``
  (:data:`EVALUATOR_PARAMS`; their functions live in :mod:`dnnbench.analysis.evaluators`)
  with their parameters, checked on the result set ``results`` (an experiment name);

and a user's claims file (``dnnbench claims --claims FILE``) holds ``[[claims]]`` tables of
evaluator claims, spelled as in experiment files (:func:`parse_claims`). All of them are
:class:`Claim`; the verdict words are :data:`VERDICTS`. Nothing here imports JAX or pandas.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from dnnbench.definition.settings import (
    METRICS,
    check_type,
    fail,
    is_number,
    level_of,
)
from dnnbench.files import read_toml

# the verdicts of a claim, from the checker to the report: the first three are decided by an
# interval; "not run": its results are missing; "not tested": results exist but no arm of
# them matches the claim (a --quick or --set variant without the claim's levels)
SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = VERDICTS = (
    "supported", "contradicted", "inconclusive", "not run")
NOT_TESTED = "not tested"

EXPECTATIONS = {"fewer": ("steps", "lower"), "more": ("steps", "higher"),
                "higher": ("value", "higher"), "lower": ("value", "lower"),
                "same": ("value", "same"), "not-lower": ("value", "not-lower"),
                "not-higher": ("value", "not-higher")}


MARGIN_EXPECTATIONS = ("same", "not-lower", "not-higher")  # need a claim's margin


# a monotone trend of the metric over the ordered levels of a factor (order = {factor = [...]})
TREND = ("increasing", "decreasing")


# the test each expectation is decided by (dnnbench.stats.forms)
FORM_OF = {**dict.fromkeys(("fewer", "more", "higher", "lower", "ranking"), "superiority"),
           "same": "equivalence", "not-lower": "non-inferiority",
           "not-higher": "non-inferiority", "within": "bounds", "outside": "bounds",
           "increasing": "trend", "decreasing": "trend"}


# how a claim over several comparisons (arms, pairs of a ranking, groups of a trend) is
# decided: every one of them (Holm's correction across them), or one test of their mean
QUANTIFIERS = ("every", "pooled")


# claims on one arm's values against fixed bounds (no reference), and rankings of levels
BOUND_EXPECTATIONS = ("within", "outside")


RANKING = "ranking"


# per-layer diagnostics as claim metrics: "layers.<column>" (engine.DIAG_COLUMNS), reduced
# over the layers of a run by a statistic, at the first or the last diagnosed step
LAYER_PREFIX = "layers."


LAYER_COLUMNS = ("pre_mean", "pre_std", "act_mean", "act_std", "saturated", "grad_norm",
                 "dead")


LAYER_STATISTICS = ("first", "last", "min", "max", "mean", "last/first", "first/last",
                    "max/min", "range")


LAYER_AT = ("start", "end")


CLAIM_KEYS = {"id", "text", "compare", "where", "metric", "expect", "test", "against", "versus",
              "margin", "rank", "statistic", "at", "bounds", "quantifier", "order", "results"}


SEARCH_TESTS = {"best": ("design", "against", "stage", "against_stage"),
                "importance": ("parameter",)}


# a claim checked by evaluators of `dnnbench claims` (dnnbench.analysis.evaluators) on a result set
EVALUATOR_CLAIM_KEYS = {"id", "text", "results", "command", "check"}



class ClaimsError(ValueError):
    """A claims file is unusable (message is user-facing, one line)."""



@dataclasses.dataclass(frozen=True)
class Check:
    evaluator: str
    params: dict



# ------------------------------------------------------------------ the evaluators' parameters

_COMMON = frozenset({"where", "pair_on", "min_n"})
# evaluator name -> the parameters it takes (its function: dnnbench.analysis.evaluators)
EVALUATOR_PARAMS: dict[str, frozenset] = {
    "trend_with_depth": _COMMON | {"from_depth", "to_depth"},
    "flat_with_depth": _COMMON | {"from_depth", "to_depth", "margin"},
    "paired_ratio": _COMMON | {"column", "compare", "expect", "null", "aggregate", "method"},
    "time_to_target_ratio": _COMMON | {"compare", "expect"},
    "interleaved_timing": frozenset({"where", "column", "compare", "by", "expect"}),
    "sigmoid_gap": frozenset({"where", "depth", "much", "closes", "activations", "min_n"}),
    "group_vs_reference": _COMMON | {"column", "group", "reference", "expect", "margin"},
    "paired_difference": _COMMON | {"column", "compare", "expect", "null", "scale", "unit"},
    "not_consistently_positive": _COMMON | {"column", "compare", "group_by", "scale", "unit",
                                            "negligible", "confidence", "min_groups"},
    "spread_across": _COMMON | {"column", "compare", "across", "statistic", "expect", "null",
                                "scale", "unit"},
    "experiment_file": frozenset({"file", "claim"}),
}
SPREAD_STATISTICS = ("range", "std")  # spread_across: max - min, or the standard deviation
EXPECT = {"paired_ratio": ("higher", "lower"), "paired_difference": ("higher", "lower"),
          "time_to_target_ratio": ("lower", "higher"), "interleaved_timing": ("higher", "lower"),
          "group_vs_reference": ("fewer", "not_more"), "spread_across": ("lower", "higher")}


NUMERIC_PARAMS = {**dict.fromkeys(("from_depth", "to_depth", "min_n", "min_groups", "depth"),
                                  int),
                  **dict.fromkeys(("margin", "null", "much", "closes", "scale", "negligible",
                                   "confidence"), int | float)}



def parse_check(t: Any, where: str) -> Check:
    if not isinstance(t, dict):
        raise ClaimsError(f"{where}: a check must be a table")
    name = t.get("evaluator")
    if name not in EVALUATOR_PARAMS:
        raise ClaimsError(f"{where}: unknown evaluator {name!r}; choose from: "
                          f"{', '.join(EVALUATOR_PARAMS)}")
    params = {k: v for k, v in t.items() if k != "evaluator"}
    extra = sorted(set(params) - EVALUATOR_PARAMS[name])
    if extra:
        raise ClaimsError(f"{where}: evaluator {name} has no parameter(s) {', '.join(extra)}; "
                          f"it takes: {', '.join(sorted(EVALUATOR_PARAMS[name]))}")
    if "where" in params and not isinstance(params["where"], dict):
        raise ClaimsError(f"{where}.where: must be a table (column = value)")
    if "compare" in params and not (isinstance(params["compare"], dict)
                                    and {"column", "a", "b"} <= set(params["compare"])):
        raise ClaimsError(f"{where}.compare: needs column, a and b")
    required = {"paired_ratio": ("column", "compare"), "paired_difference": ("column", "compare"),
                "time_to_target_ratio": ("compare",), "group_vs_reference": ("group",
                                                                            "reference"),
                "not_consistently_positive": ("column", "compare"),
                "spread_across": ("column", "compare", "across")}.get(name, ())
    for k in required:
        if k not in params:
            raise ClaimsError(f"{where}: evaluator {name} needs '{k}'")
    for k, v in params.items():
        kind = NUMERIC_PARAMS.get(k)
        ok = (kind is None or isinstance(v, kind) and not isinstance(v, bool)
              and math.isfinite(v) or k == "depth" and v == "deepest")
        if not ok:
            raise ClaimsError(f"{where}.{k}: expected {'an integer' if kind is int else 'a number'}"
                              f"{' or deepest' if k == 'depth' else ''}, got {v!r}")
    if "statistic" in params and params["statistic"] not in SPREAD_STATISTICS:
        raise ClaimsError(f"{where}.statistic: one of {', '.join(SPREAD_STATISTICS)}")
    if "expect" in params and params["expect"] not in EXPECT.get(name, ()):
        raise ClaimsError(f"{where}.expect: one of {', '.join(EXPECT.get(name, ()))}")
    return Check(name, params)



# ------------------------------------------------------------------------------- the claim

@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim (see the module docstring); ``results`` names the experiment whose result set
    checks it, ``command`` the command that makes those results."""

    id: str
    text: str
    compare: dict[str, Any]  # factor -> level (or tuple of levels: the best of them) of the
    # arms compared with the reference
    where: dict[str, tuple]  # factor -> levels the claim is restricted to
    metric: str
    expect: str
    # an evaluator claim: its [[claims.check]] tables, the result set (experiment name) it is
    # checked on, and the command that makes those results (compare ... expect are unused)
    checks: tuple[Check, ...] = ()
    results: str = ""
    command: str = ""
    test: str = "arms"  # or a claim about a search (SEARCH_TESTS; see analysis.search)
    # factor -> level (or tuple of levels: the best of them) of the arm compared with, instead
    # of the file's reference
    against: dict[str, Any] = dataclasses.field(default_factory=dict)
    versus: str = ""  # compare each arm's metric with this metric of the same arm
    margin: float = 0.0  # for expect same / not-lower
    rank: tuple[str, tuple] | None = None  # (factor, levels from best to worst)
    statistic: str = "mean"  # layers.* metrics: reduction over the layers
    at: str = "end"  # layers.* metrics: "start" (step 0) or "end" (last diagnosed step)
    bounds: tuple[float, float] | None = None  # within / outside
    source: str = ""  # the file the claim was read from
    quantifier: str = "every"  # QUANTIFIERS: over several comparisons
    order: tuple[str, tuple] | None = None  # a trend: (factor, levels in increasing order)

    @property
    def experiment(self) -> str:
        """The experiment whose results check the claim."""
        return self.results

    @property
    def layer_metric(self) -> str | None:
        """The column of a layers.* metric (None for the runs' metrics)."""
        return self.metric[len(LAYER_PREFIX):] if self.metric.startswith(LAYER_PREFIX) \
            else None

    @property
    def column(self) -> str:
        """The runs column the claim reads (a layers.* metric's per-run value)."""
        if self.layer_metric is None:
            return self.metric
        return f"{self.metric}[{self.statistic}]@{self.at}"

    @property
    def diagnostic(self) -> bool:
        """A ranking, a trend, a bounds claim or a claim on the per-layer diagnostics."""
        return (self.expect in (*BOUND_EXPECTATIONS, RANKING, *TREND)
                or self.layer_metric is not None)

    @property
    def form(self) -> str:
        """The test that decides the claim (FORM_OF; "" for evaluator and search claims)."""
        return FORM_OF.get(self.expect, "") if self.test == "arms" and not self.checks else ""


# ------------------------------------------------------------------- experiment files' claims

def parse_claim(doc, i: int, exp, where: str) -> Claim:
    at = f"{where} claims[{i}]"
    check_type(doc, dict, at, "claim")
    if "check" in doc:
        return _evaluator_claim(doc, i, exp, at)
    unknown = sorted(set(doc) - CLAIM_KEYS)
    if unknown:
        fail(at, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(CLAIM_KEYS))}")
    test = doc.get("test", "arms")
    for key in ("text", "expect") if test != "arms" else ("text", "metric", "expect"):
        if not isinstance(doc.get(key), str):
            fail(at, f"{key} is required (a string)")
    if test != "arms":
        return _search_claim(doc, i, test, exp, at)
    if doc.get("quantifier", "every") not in QUANTIFIERS:
        fail(at, f"quantifier: unknown {doc['quantifier']!r}; allowed: {', '.join(QUANTIFIERS)}")
    if doc["expect"] in (*BOUND_EXPECTATIONS, RANKING, *TREND) or doc["metric"].startswith(
            LAYER_PREFIX):
        return _diagnostic_claim(doc, i, exp, at)
    if "order" in doc:
        fail(at, f"order goes with expect {' or '.join(TREND)}")
    if doc["metric"] not in METRICS:
        fail(at, f"metric: unknown {doc['metric']!r}; allowed: {', '.join(METRICS)}")
    if doc["expect"] not in EXPECTATIONS:
        fail(at, f"expect: unknown {doc['expect']!r}; allowed: {', '.join(EXPECTATIONS)}")
    steps = doc["metric"] == "steps_to_target"
    if steps != (EXPECTATIONS[doc["expect"]][0] == "steps"):
        fail(at, "expect fewer/more goes with steps_to_target, higher/lower with the others")
    versus = check_type(doc.get("versus", ""), str, at, "versus")
    if versus and versus not in METRICS:
        fail(at, f"versus: unknown metric {versus!r}; allowed: {', '.join(METRICS)}")
    if versus and (steps or "against" in doc):
        fail(at, "versus compares two value metrics of the same arms: not with "
                  "steps_to_target or against")
    against = {}
    for k, v in check_type(doc.get("against", {}), dict, at, "against").items():
        against[k] = (tuple(level_of(exp, k, x, at) for x in v) if isinstance(v, list)
                      else level_of(exp, k, v, at))
    if not exp.reference and not against and not versus:
        fail(at, "a claim needs the file's reference arm (reference = {factor = level}), "
                  "against or versus")
    margin = doc.get("margin", 0.0)
    if not is_number(margin) or not math.isfinite(margin) or margin < 0:
        fail(at, f"margin must be a number >= 0, got {margin!r}")
    if (doc["expect"] in MARGIN_EXPECTATIONS) != ("margin" in doc):
        fail(at, f"margin goes with expect {' or '.join(MARGIN_EXPECTATIONS)} (and they "
                  "need it)")
    compare = check_type(doc.get("compare", {}), dict, at, "compare")
    if not compare and not doc.get("where"):
        fail(at, "compare or where is required: the levels of the arms compared")
    compare = {k: tuple(level_of(exp, k, x, at) for x in v) if isinstance(v, list)
               else level_of(exp, k, v, at) for k, v in compare.items()}
    where_levels = {}
    for k, v in check_type(doc.get("where", {}), dict, at, "where").items():
        vs = v if isinstance(v, list) else [v]
        where_levels[k] = tuple(level_of(exp, k, x, at) for x in vs)
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], compare, where_levels,
                 doc["metric"], doc["expect"], against=against, versus=versus,
                 margin=float(margin), quantifier=doc.get("quantifier", "every"),
                 results=_results(doc, at))



def _diagnostic_claim(doc, i: int, exp, at: str) -> Claim:
    """A ranking (expect ranking, rank = {factor = [levels, best first]}), a bounds claim
    (expect within/outside, bounds = [low, high]) or a claim on the per-layer diagnostics
    (metric layers.<column>, statistic over the layers, at start or end)."""
    metric, expect = doc["metric"], doc["expect"]
    layer = metric[len(LAYER_PREFIX):] if metric.startswith(LAYER_PREFIX) else None
    if layer is not None and layer not in LAYER_COLUMNS:
        fail(at, f"metric: unknown layers column {layer!r}; allowed: "
                  f"{', '.join(LAYER_PREFIX + c for c in LAYER_COLUMNS)}")
    if layer is None and metric not in METRICS:
        fail(at, f"metric: unknown {metric!r}; allowed: {', '.join(METRICS)}, "
                  f"{LAYER_PREFIX}<column>")
    allowed = (*EXPECTATIONS, *BOUND_EXPECTATIONS, RANKING, *TREND)
    if expect not in allowed:
        fail(at, f"expect: unknown {expect!r}; allowed: {', '.join(allowed)}")
    steps = metric == "steps_to_target"
    if expect in EXPECTATIONS and steps != (EXPECTATIONS[expect][0] == "steps"):
        fail(at, "expect fewer/more goes with steps_to_target, higher/lower with the others")
    if expect in BOUND_EXPECTATIONS and steps:
        fail(at, f"expect {expect} needs a value metric, not steps_to_target")
    extra = {}
    if layer is not None:
        extra["statistic"] = _choice(doc.get("statistic", "mean"), LAYER_STATISTICS, at,
                                     "statistic")
        extra["at"] = _choice(doc.get("at", "end"), LAYER_AT, at, "at")
        if not exp.base.get("diagnostics") and not any(
                s.get("diagnostics") for lv in exp.named_levels.values() for s in lv.values()):
            fail(at, f"metric {metric} needs diagnostics = true in [base]")
    elif "statistic" in doc or "at" in doc:
        fail(at, f"statistic and at go with {LAYER_PREFIX}* metrics")
    if extra.get("statistic") == "range" and expect not in BOUND_EXPECTATIONS:
        fail(at, "statistic range goes with expect within/outside")
    if expect in BOUND_EXPECTATIONS:
        b = doc.get("bounds")
        if not (isinstance(b, list) and len(b) == 2 and all(is_number(x) for x in b)
                and b[0] <= b[1]):
            fail(at, f"expect {expect} needs bounds = [low, high] (low <= high)")
        extra["bounds"] = (float(b[0]), float(b[1]))
    elif "bounds" in doc:
        fail(at, "bounds go with expect within/outside")
    if expect in MARGIN_EXPECTATIONS:
        margin = doc.get("margin")
        if not is_number(margin) or not math.isfinite(margin) or margin < 0:
            fail(at, f"expect {expect} needs margin = a number >= 0")
        extra["margin"] = float(margin)
    elif "margin" in doc:
        fail(at, f"margin goes with expect {' or '.join(MARGIN_EXPECTATIONS)}")
    compare = check_type(doc.get("compare", {}), dict, at, "compare")
    if expect in TREND:
        order = check_type(doc.get("order"), dict, at, "order") if "order" in doc else None
        if not order or len(order) != 1:
            fail(at, f"expect {expect} needs order = {{ factor = [levels, in increasing "
                      "order] }")
        (factor, levels), = order.items()
        if not isinstance(levels, list) or len(levels) < 3:
            fail(at, "order: a list of three levels or more (a trend over fewer is a "
                      "comparison: expect higher / lower)")
        extra["order"] = (factor, tuple(level_of(exp, factor, v, at) for v in levels))
    elif "order" in doc:
        fail(at, f"order goes with expect {' or '.join(TREND)}")
    if expect == RANKING:
        rank = check_type(doc.get("rank"), dict, at, "rank") if "rank" in doc else None
        if not rank or len(rank) != 1:
            fail(at, "expect ranking needs rank = { factor = [levels, best first] }")
        (factor, levels), = rank.items()
        if not isinstance(levels, list) or len(levels) < 2:
            fail(at, "rank: a list of two levels or more, best first")
        extra["rank"] = (factor, tuple(level_of(exp, factor, v, at) for v in levels))
    else:
        if "rank" in doc:
            fail(at, "rank goes with expect ranking")
        if expect in EXPECTATIONS and not (exp.reference or doc.get("against")):
            fail(at, "a claim needs the file's reference arm (reference = {factor = level}) "
                      "or its own (against = {factor = level})")
        if not compare and expect not in TREND:
            fail(at, "compare is required: the levels of the arms the claim is about")
    compare = {k: level_of(exp, k, v, at) for k, v in compare.items()}
    against = {k: level_of(exp, k, v, at)
               for k, v in check_type(doc.get("against", {}), dict, at, "against").items()}
    where_levels = {}
    for k, v in check_type(doc.get("where", {}), dict, at, "where").items():
        vs = v if isinstance(v, list) else [v]
        where_levels[k] = tuple(level_of(exp, k, x, at) for x in vs)
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], compare, where_levels,
                 metric, expect, against=against, quantifier=doc.get("quantifier", "every"),
                 results=_results(doc, at), **extra)


def _results(doc: dict, at: str) -> str:
    """The result set a plain claim is checked on by `dnnbench claims` when it is not the
    file's own (the name of a preset that runs the file, e.g. depth-sweep for bn-depth)."""
    results = check_type(doc.get("results", ""), str, at, "results")
    if results and not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", results):
        fail(at, f"results: an experiment name (lower-case words joined by '-'), got "
                  f"{results!r}")
    return results


def _choice(value, allowed: tuple, at: str, key: str):
    if value not in allowed:
        fail(at, f"{key}: unknown {value!r}; allowed: {', '.join(allowed)}")
    return value


def _evaluator_claim(doc: dict, i: int, exp, at: str) -> Claim:
    """A claim with [[claims.check]] tables: evaluators of `dnnbench claims` (their names and
    parameters: `dnnbench claims --list-evaluators`), checked on the ``results`` set."""
    unknown = sorted(set(doc) - EVALUATOR_CLAIM_KEYS)
    if unknown:
        fail(at, f"unknown key {unknown[0]!r} in a claim with checks; allowed: "
                  f"{', '.join(sorted(EVALUATOR_CLAIM_KEYS))}")
    for key in ("text", "results", "command"):
        if not isinstance(doc.get(key, "x"), str) or not doc.get(key, "x").strip():
            fail(at, f"{key} must be a non-empty string")
    if not isinstance(doc["check"], list) or not doc["check"]:
        fail(at, "check must be an array of tables ([[claims.check]])")
    try:
        checks = tuple(parse_check(check, f"{at} check[{j}]")
                       for j, check in enumerate(doc["check"]))
    except ClaimsError as e:
        fail(at, str(e).removeprefix(f"{at} "))
    return Claim(str(doc.get("id", f"{exp.name}-{i + 1}")), doc["text"].strip(), {}, {}, "",
                 "", checks, doc.get("results", exp.name), doc.get("command", exp.command))


def _claim_doc(c: Claim, present) -> dict[str, Any]:
    """A claim as the TOML table that :func:`_claim` reads (levels absent from the variant
    left out of its where and rank)."""
    doc = {"id": c.id, "text": c.text, "compare": dict(c.compare),
           "where": {k: [x for x in v if present(k, x)] for k, v in c.where.items()},
           "metric": c.metric, "expect": c.expect}
    if c.against:
        doc["against"] = dict(c.against)
    if c.rank is not None:
        doc["rank"] = {c.rank[0]: [x for x in c.rank[1] if present(c.rank[0], x)]}
    if c.layer_metric is not None:
        doc |= {"statistic": c.statistic, "at": c.at}
    if c.bounds is not None:
        doc["bounds"] = list(c.bounds)
    if c.order is not None:
        doc["order"] = {c.order[0]: [x for x in c.order[1] if present(c.order[0], x)]}
    if c.expect in MARGIN_EXPECTATIONS:
        doc["margin"] = c.margin
    if c.quantifier != "every":
        doc["quantifier"] = c.quantifier
    if c.results:
        doc["results"] = c.results
    return doc


def _search_claim(doc, i: int, test: str, exp, at: str) -> Claim:
    """A claim about a search: test "best" (compare = {design, against[, stage]}, expect
    higher/lower) or "importance" (compare = {parameter}, expect "first")."""
    if exp.search is None:
        fail(at, f"test {test!r} needs a [search] section")
    if test not in SEARCH_TESTS:
        fail(at, f"test: unknown {test!r}; allowed: arms, {', '.join(SEARCH_TESTS)}")
    compare = check_type(doc.get("compare", {}), dict, at, "compare")
    allowed = SEARCH_TESTS[test]
    bad = sorted(set(compare) - set(allowed))
    if bad or allowed[0] not in compare:
        fail(at, f"a {test} claim compares {{{', '.join(allowed)}}}, got {compare!r}")
    designs = [d.name for d in exp.search.designs]
    if test == "best":
        for k in ("design", "against"):
            if compare.get(k) not in designs:
                fail(at, f"compare.{k}: a design of the search ({', '.join(designs)}), got "
                          f"{compare.get(k)!r}")
        if doc["expect"] not in ("higher", "lower"):
            fail(at, "a best claim expects higher or lower")
    else:
        if compare["parameter"] not in exp.search.params:
            fail(at, f"compare.parameter: a searched parameter "
                      f"({', '.join(exp.search.params)}), got {compare['parameter']!r}")
        if doc["expect"] != "first":
            fail(at, "an importance claim expects \"first\" (the most important)")
    return Claim(doc.get("id", f"{exp.name}-{i + 1}"), doc["text"], dict(compare), {},
                 exp.search.report, doc["expect"], test=test)



def claim_docs(exp) -> list[dict[str, Any]]:
    """The claims of ``exp`` as the TOML tables :func:`parse_claim` reads (a claim about levels
    the experiment lacks, after --quick or --set, cannot be checked: left out)."""
    def present(k, v) -> bool:
        return k in exp.factors and v in exp.factors[k]

    def levels(given: dict) -> dict:
        return {k: [x for x in v if present(k, x)] if isinstance(v, tuple) else v
                for k, v in given.items()}

    def any_present(given: dict) -> bool:
        return all(any(present(k, x) for x in v) if isinstance(v, tuple) else present(k, v)
                   for k, v in given.items())

    # a claim about levels this variant lacks (--quick, --set) cannot be checked: left out
    claims = [{"id": c.id, "text": c.text, "compare": levels(c.compare),
               "where": {k: [x for x in v if present(k, x)] for k, v in c.where.items()},
               "metric": c.metric, "expect": c.expect,
               **({"against": levels(c.against)} if c.against else {}),
               **({"versus": c.versus} if c.versus else {}),
               **({"margin": c.margin} if c.expect in MARGIN_EXPECTATIONS else {}),
               **({"quantifier": c.quantifier} if c.quantifier != "every" else {}),
               **({"results": c.results} if c.results else {})}
              for c in exp.claims if not c.checks and c.test == "arms" and not c.diagnostic
              and any_present(c.compare) and any_present(c.against)
              and (exp.reference or c.against or c.versus)
              and all(any(present(k, x) for x in v) for k, v in c.where.items())]
    claims += [_claim_doc(c, present) for c in exp.claims if c.diagnostic
               and all(present(k, v) for k, v in {**c.compare, **c.against}.items())
               and (c.rank is None or sum(present(c.rank[0], x) for x in c.rank[1]) >= 2)
               and (c.order is None or sum(present(c.order[0], x) for x in c.order[1]) >= 3)]
    claims += [{"id": c.id, "text": c.text, "results": c.results, "command": c.command,
                "check": [{"evaluator": t.evaluator, **t.params} for t in c.checks]}
               for c in exp.claims if c.checks]
    claims += [{"id": c.id, "text": c.text, "test": c.test, "compare": dict(c.compare),
                "expect": c.expect} for c in exp.claims if c.test != "arms"]
    order = {c.id: i for i, c in enumerate(exp.claims)}
    claims.sort(key=lambda c: order[c["id"]])  # the file's order
    return claims


# ------------------------------------------------------------------------- claims files

def parse_claims(doc: dict, source: str) -> list[Claim]:
    """The claims of a user's claims file: ``[[claims]]`` tables, as in experiment files (the
    older spelling ``[[claim]]`` is read too), each with ``id``, ``text``, the result set it is
    checked on (``results``, or ``experiment``), ``command`` and ``[[claims.check]]``."""
    items = doc.get("claims", doc.get("claim"))
    if not isinstance(items, list) or not items:
        raise ClaimsError(f"{source}: no [[claims]] tables")
    claims = []
    for i, t in enumerate(items):
        where = f"{source}: claim #{i + 1}"
        if not isinstance(t, dict):
            raise ClaimsError(f"{where}: must be a table")
        if "results" in t and "experiment" not in t:
            t = {**t, "experiment": t["results"]}
        for k in ("id", "text", "experiment", "command"):
            if not isinstance(t.get(k), str) or not t[k].strip():
                shown = "results" if k == "experiment" else k
                raise ClaimsError(f"{where}: missing or empty '{shown}'")
        where = f"{source}: claim {t['id']!r}"
        extra = sorted(set(t) - {"id", "text", "experiment", "results", "command", "check"})
        if extra:
            raise ClaimsError(f"{where}: unknown key(s) {', '.join(extra)}")
        checks = t.get("check")
        if not isinstance(checks, list) or not checks:
            raise ClaimsError(f"{where}: needs at least one [[claims.check]]")
        claims.append(Claim(t["id"], t["text"].strip(), {}, {}, "", "",
                            tuple(parse_check(c, f"{where} check #{j + 1}")
                                  for j, c in enumerate(checks)), t["experiment"],
                            t["command"], source=source))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ClaimsError(f"{source}: duplicate claim id(s) {', '.join(dup)}")
    return claims


def read_claims_file(path: str | Path) -> list[Claim]:
    return parse_claims(read_toml(path, ClaimsError, "claims file"), str(path))
