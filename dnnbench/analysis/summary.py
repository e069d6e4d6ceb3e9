"""The summary of a result table: per arm the reached count, the Kaplan-Meier median steps
with its interval and the mean of each shown metric, and the paired comparison of every arm
with the reference arm (steps ratio and the difference of the first accuracy metric, each with
interval and verdict); per-layer diagnostics reduced to per-run metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.definition import protocols
from dnnbench.definition.experiment import (
    Experiment,
)
from dnnbench.definition.settings import lower_is_better
from dnnbench.stats import (
    km_median,
    mean_ci,
    paired_censored_comparison,
    paired_difference,
    steps_of_runs,
    verdict_from_interval,
)


def metric_values(df: pd.DataFrame, metric: str) -> np.ndarray:
    """The per-run values of ``metric`` (files.METRICS) as floats: a runs column, or
    ``divergence_rate``, each run's ``diverged`` as 0/1 (its mean over seeds is the rate)."""
    column = "diverged" if metric == "divergence_rate" else metric
    return df[column].astype(float).to_numpy()


def reference_arm(exp: Experiment, levels: dict[str, Any]) -> dict[str, Any] | None:
    """The levels of the arm that ``levels`` is compared with (None: it is a reference, or
    an arm its protocol does not compare)."""
    if not exp.reference or not compared(exp, levels):
        return None
    ref = {**levels, **exp.reference}
    return None if ref == levels else ref


NOT_COMPARED = "not compared"


def compared(exp: Experiment, levels: dict[str, Any]) -> bool:
    """Whether the arm of ``levels`` is compared with the reference at all (its protocol may
    say no: transfer's A learns another task)."""

    return not any(levels.get(f) in v for f, v in protocols.get(exp.protocol).uncompared.items())


def level_key(df: pd.DataFrame, factors: Sequence[str]) -> pd.Series:
    # str of each value: an empty level (transfer's A, shared by groups that differ in a B
    # setting) is "nan", where pandas 3's astype(str) would keep it a float NaN
    return df[list(factors)].astype(object).map(str).agg("|".join, axis=1) if factors else \
        pd.Series("", index=df.index)


def summarize(exp: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (file order): seeds, reached n/N, KM median steps with its 95% CI,
    the mean of every shown metric with its 95% CI, and against the reference arm (paired by
    seed): the ratio of steps with its interval and verdict, and the difference of the first
    shown accuracy/loss metric with its interval and verdict."""
    factors = list(exp.factors)
    value_metric = next((m for m in exp.show if m not in ("steps_to_target",
                                                          "time_to_target_s")),
                        "final_eval_accuracy")
    keys = level_key(runs, factors)
    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        g = g.sort_values("seed")
        km = km_median(*steps_of_runs(g))
        row = {"arm": arm, **{f: g[f].iloc[0] for f in factors}, "n": km.n,
               "reached": km.n_reached, "diverged": int(g["diverged"].sum()),
               "median_steps": km.median, "steps_low": km.low, "steps_high": km.high,
               "step_ms": float(g["step_ms"].iloc[0]), "compile_s": float(g["compile_s"].iloc[0])}
        for m in exp.show:
            if m == "steps_to_target":
                continue
            ci = mean_ci(metric_values(g, m))
            row |= {m: ci.estimate, f"{m}_low": ci.low, f"{m}_high": ci.high}
        levels = {f: g[f].iloc[0] for f in factors}
        ref = reference_arm(exp, levels)
        row |= {"reference": "", "steps_ratio": math.nan, "ratio_low": math.nan,
                "ratio_high": math.nan, "steps_verdict": "", "value_metric": value_metric,
                "diff": math.nan, "diff_low": math.nan, "diff_high": math.nan,
                "diff_verdict": ""}
        if ref is not None:
            other = runs[keys == "|".join(str(ref[f]) for f in factors)].sort_values("seed")
            row |= compare(g, other, value_metric)
        elif not compared(exp, levels):
            row["reference"] = NOT_COMPARED
        rows.append(row)
    return pd.DataFrame(rows)


def compare(a: pd.DataFrame, b: pd.DataFrame, value_metric: str) -> dict[str, Any]:
    """Arm ``a`` against arm ``b`` (their common seeds, paired)."""
    common = sorted(set(a["seed"]) & set(b["seed"]))
    if not common:
        return {}
    a = a.set_index("seed").loc[common].reset_index()
    b = b.set_index("seed").loc[common].reset_index()
    out = {"reference": b["arm"].iloc[0]}
    cmp = paired_censored_comparison(*steps_of_runs(a), *steps_of_runs(b))
    out |= {"steps_ratio": cmp.ratio, "ratio_low": cmp.low, "ratio_high": cmp.high,
            "steps_verdict": cmp.verdict}
    x, y = metric_values(a, value_metric), metric_values(b, value_metric)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2:
        d = paired_difference(x[ok], y[ok])
        better = "lower" if lower_is_better(value_metric) else "higher"
        out |= {"diff": d.mean_diff, "diff_low": d.low, "diff_high": d.high,
                "diff_verdict": verdict_from_interval(d.low, d.high, better=better,
                                                      n=int(ok.sum()))}
    return out


def layer_statistic(values: np.ndarray, statistic: str):
    """A run's layers column (ordered by layer) reduced to one number (range: (min, max))."""
    if values.size == 0:
        return math.nan
    first, last = values[0], values[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"first": first, "last": last, "min": values.min(), "max": values.max(),
                "mean": values.mean(), "last/first": last / first, "first/last": first / last,
                "max/min": values.max() / values.min(),
                "range": (values.min(), values.max())}[statistic]


def with_layer_metrics(exp: Experiment, runs: pd.DataFrame,
                       layers: pd.DataFrame | None) -> pd.DataFrame:
    """``runs`` with a column per layers.* claim: its statistic of each run's diagnostics at
    step 0 ("start") or at the last diagnosed step ("end"; NaN for a run that diverged before
    its first evaluation); NaN without diagnostics."""
    wanted = {(c.layer_metric, c.statistic, c.at, c.column) for c in exp.claims
              if c.layer_metric is not None}
    if not wanted:
        return runs
    runs = runs.copy()
    by_run = {} if layers is None else dict(list(layers.groupby(["arm", "seed"], sort=False)))
    for column, statistic, at, name in wanted:
        if layers is not None and column not in layers:  # (diagnostics of an older version)
            by_run_column = {}
        else:
            by_run_column = by_run
        values = []
        for arm, seed in zip(runs["arm"], runs["seed"], strict=True):
            g = by_run_column.get((arm, seed))
            if g is None:
                values.append(math.nan if statistic != "range" else (math.nan, math.nan))
                continue
            step = g["step"].min() if at == "start" else g["step"].max()
            if at == "end" and step == 0:  # diverged before its first evaluation: no end
                values.append(math.nan if statistic != "range" else (math.nan, math.nan))
                continue
            v = g[g["step"] == step].sort_values("layer")[column].to_numpy(float)
            values.append(layer_statistic(v, statistic))
        if statistic == "range":
            runs[f"{name}.min"] = [v[0] for v in values]
            runs[f"{name}.max"] = [v[1] for v in values]
        else:
            runs[name] = values
    return runs
