"""A search's analysis: its points' table, the best points and the chosen point of each
stage, the coarse-to-fine refinement, the parameters' importance, and its claims."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dnnbench.definition.claims import CONTRADICTED, INCONCLUSIVE, NOT_TESTED, SUPPORTED
from dnnbench.definition.search import (
    POINT,
    REFINE_RULE,
    Search,
    box_doc,
    draw,
    restrict,
)
from dnnbench.stats import (
    MIN_SEEDS_FOR_VERDICT,
    TOO_FEW_SEEDS,
    mean_ci,
    paired_difference,
    verdict_from_interval,
)


def drawn_stages(search: Search, runs) -> int:
    """The last stage with results in ``runs``."""
    stages = {p.name: p.stage for p in search.points}
    return max(stages[n] for n in runs[POINT].unique())


def point_table(search: Search, runs) -> Any:
    """One row per point (and repetition, design, stage): the mean of the metric and of the
    report column over seeds and factor levels, and each parameter's value."""
    import pandas as pd

    info = pd.DataFrame([{POINT: p.name, "stage": p.stage, "design": p.design,
                          "repeat": p.repeat, "index": p.index,
                          **{f"value:{k}": v for k, v in p.values.items()}}
                         for p in search.points])
    means = runs.groupby(POINT, sort=False)[[search.metric, search.report]].mean()
    return info.merge(means, left_on=POINT, right_index=True, how="inner")


def best_points(search: Search, runs, k: int = 5):
    """Per design and repetition (and stage, cumulative): the chosen point (best mean
    metric) with the mean of the metric and of the report column and their 95% intervals
    over the seeds."""
    import pandas as pd


    table = point_table(search, runs)
    rows = []
    for (design, rep), g in table.groupby(["design", "repeat"], sort=False):
        g = g.sort_values(search.metric, ascending=not search.higher_is_better)
        for rank, (_, r) in enumerate(g.head(k).iterrows(), start=1):
            seeds = runs[runs[POINT] == r[POINT]]
            row = {"design": design, "repeat": rep, "rank": rank, POINT: r[POINT],
                   "stage": r["stage"]}
            for m in (search.metric, search.report):
                ci = mean_ci(seeds[m].astype(float).to_numpy(), method="t")
                row |= {m: ci.estimate, f"{m}_low": ci.low, f"{m}_high": ci.high}
            row |= {k_: r[f"value:{k_}"] for k_ in search.params if f"value:{k_}" in r}
            rows.append(row)
    return pd.DataFrame(rows)


def chosen(search: Search, runs, stages: int | None = None):
    """Per design and repetition: the report value of the point with the best mean metric
    among the stages up to ``stages`` (all: None), one row each."""
    table = point_table(search, runs)
    if stages is not None:
        table = table[table["stage"] <= stages]
    ascending = not search.higher_is_better
    idx = table.sort_values(search.metric, ascending=ascending).groupby(
        ["design", "repeat"], sort=False).head(1)
    return idx.sort_values(["design", "repeat"]).reset_index(drop=True)


def chosen_values(search: Search, runs, design: str, stages: int | None):
    """The report values of the points that ``design`` chooses (stages up to ``stages``):
    per repetition (their means over seeds), or, for a single repetition, per seed (of the
    one chosen point); a Series indexed by repetition or seed."""
    best = chosen(search, runs, stages)
    best = best[best["design"] == design]
    if search.repeats > 1:
        return best.set_index("repeat")[search.report]
    rows = runs[runs[POINT] == best[POINT].iloc[0]]
    return rows.set_index("seed")[search.report].astype(float)


def refine(search: Search, runs, stage: int) -> Search:
    """The search with the points of ``stage`` (>= 2) drawn inside the boxes around the best
    ``top_k`` points of stage - 1 (:data:`REFINE_RULE`); the boxes are recorded."""
    table = point_table(search, runs)
    table = table[table["stage"] == stage - 1]
    boxes, records = {}, []
    for design in search.designs:
        for rep in range(search.repeats):
            g = table[(table["design"] == design.name) & (table["repeat"] == rep)]
            top = g.sort_values(search.metric, ascending=not search.higher_is_better
                                ).head(search.top_k)
            box = {k: restrict(p, [top[f"value:{k}"].iloc[i] for i in range(len(top))],
                               search.margin) for k, p in design.params.items()}
            boxes[(design.name, rep)] = box
            records.append({"stage": stage, "design": design.name, "repeat": rep,
                            "from": list(top[POINT]), "rule": REFINE_RULE,
                            "box": {k: box_doc(p) for k, p in box.items()}})
    new = draw(search, stage, boxes)
    return dataclasses.replace(search, points=search.points + tuple(new),
                               boxes=search.boxes + tuple(records))


IMPORTANCE = {"folds": 5, "n_repeats": 10, "trees": 100}  # the forests' settings


def importance(search: Search, runs, **settings):
    """Each parameter's share of the outcome's variance (the first stage's points of the
    first design: inputs drawn independently):
    per training seed (a repetition of the whole search), a random forest predicts the
    metric from the parameters (on their sampling scales), and the permutation importance
    (the drop in R^2 when a parameter's column is shuffled) is measured on held-out folds
    (cross-fitting, scikit-learn). Shuffling an input independent of the others adds twice
    the variance of its effect to the squared error, so half the drop is the share of the
    outcome's variance the parameter explains (exactly so for an additive function; with
    interactions it includes the parameter's share of them). The mean over seeds with a 95%
    t interval. Returns one row per parameter, most important
    first, and the cross-validated R^2 of the forest."""
    import pandas as pd


    settings = {**IMPORTANCE, **settings}
    per_seed = []
    names = list(search.params)
    points = {p.name: p for p in search.points
              if p.design == search.designs[0].name and p.stage == 1}
    runs = runs[runs[POINT].isin(points)]
    key = (tuple(points), search.metric, tuple(settings.items()),
           tuple(runs["seed"]), tuple(runs[POINT]), tuple(runs[search.metric].astype(float)))
    if key in _IMPORTANCE:
        return _IMPORTANCE[key].copy()
    for seed, g in runs.groupby("seed"):
        g = g.dropna(subset=[search.metric])
        x = np.array([[search.params[k].coord(points[n].values[k]) for k in names]
                      for n in g[POINT]])
        y = g[search.metric].astype(float).to_numpy()
        per_seed.append(cross_importance(x, y, **settings, seed=int(seed)))
    imp = np.array([s[0] for s in per_seed])
    r2 = np.array([s[1] for s in per_seed])
    rows = []
    imp = imp / 2  # permuting an independent input adds twice its effect's variance
    for j, k in enumerate(names):
        ci = mean_ci(imp[:, j], method="t")
        # a share of variance lies in [0, 1]: the interval is cut to it (a t interval of
        # few seeds would reach beyond; the cut keeps its coverage of a possible value)
        rows.append({"parameter": k, "importance": ci.estimate, "low": max(ci.low, 0.0),
                     "high": min(ci.high, 1.0), "seeds": len(imp)})
    r2ci = mean_ci(r2, method="t")
    out = pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)
    out.attrs["r2"] = (r2ci.estimate, r2ci.low, r2ci.high)
    _IMPORTANCE.clear()  # the last one only (the summary and the claims share it)
    _IMPORTANCE[key] = out
    return out.copy()


_IMPORTANCE: dict = {}


def cross_importance(x: np.ndarray, y: np.ndarray, *, folds: int = 5, n_repeats: int = 10,
                     trees: int = 100, seed: int = 0) -> tuple[np.ndarray, float]:
    """(permutation importance of each column on held-out folds, averaged; held-out R^2).
    The importance is scikit-learn's permutation importance with the R^2 score (the drop in
    R^2 when a column is shuffled, the mean of ``n_repeats`` shuffles), computed with every
    shuffled copy of a fold predicted in one call (a forest's predict has a fixed cost)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[1])
    predicted = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        forest = RandomForestRegressor(trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
        forest.fit(x[train], y[train])
        xt, yt = x[test], y[test]
        predicted[test] = forest.predict(xt)
        base = r2_score(yt, predicted[test])
        copies = np.repeat(xt[None, None], n_repeats, axis=1).repeat(x.shape[1], axis=0)
        for j in range(x.shape[1]):
            for r in range(n_repeats):
                copies[j, r, :, j] = rng.permutation(xt[:, j])
        shuffled = forest.predict(copies.reshape(-1, x.shape[1])).reshape(
            x.shape[1], n_repeats, len(test))
        total += [base - np.mean([r2_score(yt, p) for p in shuffled[j]])
                  for j in range(x.shape[1])]
    return total / folds, float(r2_score(y, predicted))


def check_claim(search: Search, claim, runs) -> dict:
    """A claim about the search (``claim.test``): "best" compares the report value of the
    point chosen by each repetition of ``claim.compare['design']`` (among its stages up to
    ``stage``: all by default) with that of ``claim.compare['against']`` (stages up to
    ``against_stage``), paired by repetition, or by seed for a single one (expect
    higher/lower); "importance":
    ``claim.compare['parameter']`` is the most important parameter (expect "first"):
    supported when its interval lies above every other's, contradicted when another's lies
    above its own."""
    if claim.test == "best":
        c = claim.compare
        x = chosen_values(search, runs, c["design"], c.get("stage"))
        y = chosen_values(search, runs, c["against"], c.get("against_stage", c.get("stage")))
        common = sorted(set(x.index) & set(y.index))
        unit = "repetitions" if search.repeats > 1 else "seeds"
        if len(common) < 2:
            return {"verdict": NOT_TESTED, "arms": 0,
                    "effects": f"fewer than 2 {unit} with both designs"}
        d = paired_difference(x.loc[common].to_numpy(float), y.loc[common].to_numpy(float))
        verdict = verdict_from_interval(d.low, d.high, better=claim.expect, n=len(common),
                                        labels=(SUPPORTED, CONTRADICTED, INCONCLUSIVE))
        if verdict == TOO_FEW_SEEDS:  # a claim's verdicts are the claims' four words
            verdict = INCONCLUSIVE
        wins = int((x.loc[common] > y.loc[common]).sum())
        a, b = (f"{c[k]} (stages <= {c[s_]})" if c.get(s_) else c[k]
                for k, s_ in (("design", "stage"), ("against", "against_stage")))
        return {"verdict": verdict, "arms": len(common), "effects": (
            f"{a} - {b}: {d.mean_diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}] in {search.report} "
            f"of the chosen point, paired over {len(common)} {unit}; {a} higher in "
            f"{wins}/{len(common)}")}
    name = claim.compare["parameter"]
    if name not in search.params or len(search.params) < 2:
        return {"verdict": NOT_TESTED, "arms": 0,
                "effects": f"{name} is not one of two or more searched parameters"}
    imp = importance(search, runs)
    me = imp[imp["parameter"] == name].iloc[0]
    others = imp[imp["parameter"] != name]
    if me["seeds"] < MIN_SEEDS_FOR_VERDICT:
        verdict = INCONCLUSIVE  # too few repetitions of the search for a verdict
    elif (others["low"] > me["high"]).any():
        verdict = CONTRADICTED
    elif (me["low"] > others["high"]).all():
        verdict = SUPPORTED
    else:
        verdict = INCONCLUSIVE
    order = ", ".join(f"{r.parameter} {r.importance:.3f} [{r.low:.3f}, {r.high:.3f}]"
                      for r in imp.itertuples())
    few = (f"; {TOO_FEW_SEEDS} (fewer than {MIN_SEEDS_FOR_VERDICT} seeds)"
           if me["seeds"] < MIN_SEEDS_FOR_VERDICT else "")
    return {"verdict": verdict, "arms": int(me["seeds"]),
            "effects": f"share of variance ({int(me['seeds'])} seeds): {order}{few}"}
