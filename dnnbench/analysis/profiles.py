"""Optimizer performance profiles across the result sets of a folder (Dolan & Moré 2002, as
AlgoPerf scores its submissions).

A *problem* is one experiment on one data set, split further by the levels of the
experiment's other factors (depth, config, ...: every factor of the definition its metadata
records except ``optimizer`` and ``lr_source``), so that a problem compares optimizers under
otherwise equal settings. Only result sets whose runs hold two or more optimizers and have a
target (``target > 0``) take part; where the runs have ``lr_source``, only its ``"tuned"``
rows (each optimizer at its tuned rate). A problem with fewer than two optimizers left (e.g.
one where the optimizer changes only with a named level that changes other settings too) is
skipped.

Per problem and optimizer: the Kaplan-Meier median steps to the target over its seeds (a
run that did not reach the target, or diverged, is censored at its budget:
:func:`dnnbench.stats.steps_of_runs`; a median never reached is infinite). Its ratio
``r = median / the best optimizer's median in that problem`` (infinite where it never
reaches; every ratio of a problem that no optimizer solves is infinite). The profile
``rho_o(tau)`` is the fraction of the problems *that optimizer o appears in* with
``r <= tau``: an optimizer absent from a problem does not count in its denominator (its
``problems`` count says how many it has). The score is the area under the profile over
``[1, tau_max]``, divided by ``tau_max - 1`` (AlgoPerf's score, with its ``tau_max = 4``
by default): 1 means the fastest everywhere, 0 never within ``tau_max`` of it.

Intervals: a percentile bootstrap that resamples the seeds (runs) within each (problem,
optimizer) independently, with a seeded RNG, recomputing medians, ratios (against each
draw's best), profiles and scores.

:func:`folder_profiles` reads a folder; :func:`performance_profiles` computes the profiles of
the problems of runs tables; :func:`profile_figure` draws them (a matplotlib ``Figure``;
write it with :func:`dnnbench.report.figures.save_figure`); :meth:`Profiles.table` is the
summary table and :meth:`Profiles.problems_table` the per-problem medians and ratios.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.stats import resampled_km_medians, steps_of_runs

OPTIMIZER = "optimizer"
LR_SOURCE = "lr_source"
TUNED = "tuned"
TAU_MAX = 4.0  # AlgoPerf's r_max
TABLE_TAUS = (1.0, 1.5, 2.0, 4.0)
N_RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
GRID_POINTS = 200
REL_TOL = 1e-9  # r <= tau up to rounding (1020 / 850 is 1.2000000000000002)


class ProfileError(ValueError):
    """No problem to profile (message is user-facing, one line)."""


@dataclass(frozen=True)
class Problem:
    """One problem: an experiment on a data set at one level of each of its other factors.

    medians: optimizer -> KM median steps to target (inf: never reached); seeds: optimizer
    -> runs; reached: optimizer -> runs that reached the target; ratios: optimizer -> median
    / the smallest median (inf: never reached, or no optimizer reached)."""

    experiment: str
    dataset: str
    levels: dict[str, Any]
    medians: dict[str, float]
    seeds: dict[str, int]
    reached: dict[str, int]
    runs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(repr=False)

    @property
    def label(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.levels.items())
        return f"{self.experiment} on {self.dataset}" + (f" ({where})" if where else "")

    @property
    def ratios(self) -> dict[str, float]:
        return dict(zip(self.medians, _ratios(np.array(list(self.medians.values()))),
                        strict=True))


@dataclass(frozen=True)
class Skipped:
    """A result set whose runs hold two or more optimizers but give no problem, and why."""

    experiment: str
    dataset: str
    reason: str


@dataclass(frozen=True)
class Profiles:
    """The profiles of ``optimizers`` over ``problems``: on the grid ``taus`` (log-spaced from
    1 to ``tau_max``, with every point ratio in it), ``rho[o]`` and its band ``low[o]``,
    ``high[o]`` (NaN where no draw defines it); ``draws`` holds every bootstrap draw's ratios
    (draw x problem x optimizer; NaN: absent), from which any tau's interval follows."""

    problems: list[Problem]
    optimizers: list[str]
    taus: np.ndarray
    rho: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    point: np.ndarray = field(repr=False)  # problem x optimizer ratios (NaN: absent)
    draws: np.ndarray = field(repr=False)
    tau_max: float = TAU_MAX
    confidence: float = CONFIDENCE
    n_resamples: int = N_RESAMPLES
    seed: int = SEED
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def experiments(self) -> list[tuple[str, str]]:
        """The (experiment, data set) pairs the problems come from, in order."""
        return list(dict.fromkeys((p.experiment, p.dataset) for p in self.problems))

    def n_problems(self, optimizer: str) -> int:
        """The problems ``optimizer`` appears in (its profile's denominator)."""
        return int((~np.isnan(self.point[:, self.optimizers.index(optimizer)])).sum())

    def at(self, optimizer: str, tau: float) -> tuple[float, float, float]:
        """rho_o(tau) with its bootstrap interval (low, high), at any tau >= 1."""
        j = self.optimizers.index(optimizer)
        est = float(profile_values(self.point[None, :, j:j + 1], [tau])[0, 0, 0])
        low, high = self._band(profile_values(self.draws[:, :, j:j + 1], [tau])[:, 0, 0])
        return est, low, high

    def score(self, optimizer: str) -> tuple[float, float, float]:
        """The area under the profile over [1, tau_max] / (tau_max - 1), with its interval."""
        j = self.optimizers.index(optimizer)
        est = float(profile_scores(self.point[None, :, j:j + 1], self.tau_max)[0, 0])
        return (est, *self._band(profile_scores(self.draws[:, :, j:j + 1], self.tau_max)[:, 0]))

    def median_ratio(self, optimizer: str) -> float:
        """The median of its ratios over the problems it appears in (inf: over half never
        reach the target)."""
        r = self.point[:, self.optimizers.index(optimizer)]
        r = r[~np.isnan(r)]
        return float(np.sort(r)[math.ceil(r.size / 2) - 1]) if r.size else math.nan

    def _band(self, values: np.ndarray) -> tuple[float, float]:
        values = values[~np.isnan(values)]
        if not values.size:
            return math.nan, math.nan
        alpha = (1 - self.confidence) / 2
        low, high = np.quantile(values, [alpha, 1 - alpha], method="inverted_cdf")
        return float(low), float(high)

    def table(self, taus: Sequence[float] = TABLE_TAUS) -> pd.DataFrame:
        """One row per optimizer: problems, rho at each of ``taus`` with its interval
        (columns ``rho@1.5``, ``rho@1.5_low``, ``rho@1.5_high``), the score with its interval
        and the median ratio."""
        rows = []
        for o in self.optimizers:
            row: dict[str, Any] = {"optimizer": o, "problems": self.n_problems(o)}
            for tau in taus:
                est, low, high = self.at(o, tau)
                row |= {f"rho@{tau:g}": est, f"rho@{tau:g}_low": low, f"rho@{tau:g}_high": high}
            est, low, high = self.score(o)
            row |= {"score": est, "score_low": low, "score_high": high,
                    "median_ratio": self.median_ratio(o)}
            rows.append(row)
        return pd.DataFrame(rows)

    def problems_table(self) -> pd.DataFrame:
        """One row per (problem, optimizer): its levels, seeds, reached, median steps and
        ratio (inf: never reached)."""
        rows = []
        for p in self.problems:
            ratios = p.ratios
            for o, med in p.medians.items():
                rows.append({"problem": p.label, "experiment": p.experiment,
                             "dataset": p.dataset, "levels": json.dumps(p.levels, default=str),
                             "optimizer": o, "seeds": p.seeds[o], "reached": p.reached[o],
                             "median_steps": med, "ratio": ratios[o]})
        return pd.DataFrame(rows)

    def curves_table(self) -> pd.DataFrame:
        """The profiles on the grid: tau, optimizer, rho, low, high."""
        return pd.concat([pd.DataFrame({"optimizer": o, "tau": self.taus, "rho": self.rho[o],
                                        "low": self.low[o], "high": self.high[o]})
                          for o in self.optimizers], ignore_index=True)


# ------------------------------------------------------------------------- the computation

def _ratios(medians: np.ndarray) -> np.ndarray:
    """Ratios to the smallest median along the last axis (inf: never reached, or none
    reached; NaN stays NaN: absent). A best median of 0 steps gives ratio 1 to the others
    at 0 and inf to the rest."""
    with np.errstate(invalid="ignore", divide="ignore"):
        best = np.nanmin(np.where(np.isnan(medians), np.inf, medians), axis=-1, keepdims=True)
        r = np.where(np.isinf(best), np.inf, medians / best)
        r = np.where(best == 0, np.where(medians == 0, 1.0, np.inf), r)
    return np.where(np.isnan(medians), np.nan, r)


def profile_values(ratios: np.ndarray, taus: Iterable[float]) -> np.ndarray:
    """rho(tau) of ratios (draw x problem x optimizer; NaN: absent) -> draw x tau x
    optimizer: the fraction of the problems present with ratio <= tau (NaN where an
    optimizer is in no problem)."""
    taus = np.asarray(list(taus), dtype=float)
    present = ~np.isnan(ratios)
    n = present.sum(axis=1)  # draw x optimizer
    r = np.where(present, ratios, np.inf)
    hits = (r[:, None, :, :] <= taus[None, :, None, None] * (1 + REL_TOL)).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[:, None, :] > 0, hits / n[:, None, :], np.nan)


def profile_scores(ratios: np.ndarray, tau_max: float) -> np.ndarray:
    """The area under each profile over [1, tau_max] / (tau_max - 1) -> draw x optimizer
    (exact for the step function: a problem with ratio r adds max(0, tau_max - max(r, 1))
    / (tau_max - 1) / n)."""
    present = ~np.isnan(ratios)
    n = present.sum(axis=1)
    r = np.where(present, np.maximum(ratios, 1.0), np.inf)
    area = np.clip(tau_max - r, 0, None).sum(axis=1) / (tau_max - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, area / n, np.nan)


def problems_of(runs: pd.DataFrame, experiment: str, dataset: str,
                factors: Sequence[str] = ()) -> tuple[list[Problem], str | None]:
    """The problems of one result set's runs, split by the levels of ``factors`` (those
    present as columns; ``optimizer`` and ``lr_source`` never split) and of ``target`` where
    it varies; only ``lr_source == "tuned"`` rows where the runs have ``lr_source``. Returns
    (problems, why none) -- the reason is None when there are problems."""
    if OPTIMIZER not in runs.columns or runs[OPTIMIZER].nunique() < 2:
        return [], "fewer than two optimizers"
    if LR_SOURCE in runs.columns:
        runs = runs[runs[LR_SOURCE].astype(str) == TUNED]
        if runs.empty:
            return [], "no runs at a tuned learning rate (lr_source = tuned)"
    if "target" in runs.columns:
        target = pd.to_numeric(runs["target"], errors="coerce")
        if not target.gt(0).any():
            return [], "no target (target 0: every run trains its whole budget)"
        runs = runs[target.gt(0)]
    split = [f for f in factors if f in runs.columns and f not in (OPTIMIZER, LR_SOURCE)]
    if "target" in runs.columns and runs["target"].nunique() > 1 and "target" not in split:
        split.append("target")
    problems = []
    groups = runs.groupby(split, sort=False, dropna=False) if split else [((), runs)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        if g[OPTIMIZER].nunique() < 2:
            continue
        medians, seeds, reached, steps = {}, {}, {}, {}
        for o, h in g.groupby(OPTIMIZER, sort=False):
            t, ok, c = steps_of_runs(h)
            med = resampled_km_medians(t, ok, c, np.arange(len(h))[None, :])[0]
            medians[str(o)] = math.inf if math.isnan(med) else float(med)
            seeds[str(o)], reached[str(o)] = len(h), int(ok.sum())
            steps[str(o)] = (t, ok, c)
        problems.append(Problem(experiment, dataset, {f: _plain(v) for f, v in
                                                      zip(split, key, strict=True)},
                                medians, seeds, reached, steps))
    if not problems:
        return [], ("the optimizer changes only together with other settings (no level of "
                    f"{', '.join(split)} holds two optimizers)" if split else
                    "fewer than two optimizers")
    return problems, None


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def performance_profiles(problems: Sequence[Problem], *, tau_max: float = TAU_MAX,
                         n_resamples: int = N_RESAMPLES, seed: int = SEED,
                         confidence: float = CONFIDENCE, grid_points: int = GRID_POINTS,
                         skipped: Sequence[Skipped] = ()) -> Profiles:
    """The profiles of every optimizer over ``problems`` with their bootstrap bands (the
    seeds of each (problem, optimizer) resampled, ``n_resamples`` draws from the RNG
    ``seed``). ProfileError when there is no problem, or ``tau_max`` <= 1."""
    if not problems:
        raise ProfileError("no problem compares two or more optimizers")
    if not (math.isfinite(tau_max) and tau_max > 1):
        raise ProfileError(f"tau_max must be a finite number > 1, got {tau_max}")
    optimizers = list(dict.fromkeys(o for p in problems for o in p.medians))
    P, O = len(problems), len(optimizers)
    medians = np.full((P, O), np.nan)
    draws = np.full((n_resamples, P, O), np.nan)
    rng = np.random.default_rng(seed)
    for i, p in enumerate(problems):
        for o, med in p.medians.items():
            j = optimizers.index(o)
            medians[i, j] = med
            t, ok, c = p.runs[o]
            idx = rng.integers(0, len(t), size=(n_resamples, len(t)))
            m = resampled_km_medians(t, ok, c, idx)
            draws[:, i, j] = np.where(np.isnan(m), np.inf, m)
    point = _ratios(medians)
    draw_ratios = _ratios(draws)
    finite = point[np.isfinite(point) & (point <= tau_max)]
    taus = np.unique(np.concatenate([np.geomspace(1.0, tau_max, grid_points), finite]))
    rho = profile_values(point[None], taus)[0]
    band = profile_values(draw_ratios, taus)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(band, [alpha, 1 - alpha], axis=0, method="inverted_cdf")
    return Profiles(problems=list(problems), optimizers=optimizers, taus=taus,
                    rho={o: rho[:, j] for j, o in enumerate(optimizers)},
                    low={o: low[:, j] for j, o in enumerate(optimizers)},
                    high={o: high[:, j] for j, o in enumerate(optimizers)},
                    point=point, draws=draw_ratios, tau_max=float(tau_max),
                    confidence=confidence, n_resamples=n_resamples, seed=seed,
                    skipped=list(skipped))


def recorded_factors(metas: Iterable[dict], source: str) -> list[str]:
    """The factors of the experiment definitions that result files' metadata record (all of
    them, in order; none for results without one)."""
    from dnnbench.definition import experiment as files

    factors: dict[str, None] = {}
    for meta in metas:
        doc = meta.get("experiment_definition")
        if not doc:
            continue
        try:
            exp = files.parse(json.loads(doc), source)
        except (ValueError, TypeError):
            continue
        factors |= dict.fromkeys(f for f in exp.factors if not (exp.search and f == files.POINT))
    return list(factors)


def folder_problems(folder: str | Path) -> tuple[list[Problem], list[Skipped]]:
    """The problems of every result set under ``folder`` (read with
    :func:`dnnbench.results.resultset.load_results`), and the result sets with two or more
    optimizers that give none. SchemaError for a missing folder or an unreadable file."""
    from dnnbench.results.resultset import load_results

    problems, skipped = [], []
    for (exp, ds), rs in sorted(load_results(folder).items()):
        runs = rs.runs
        if OPTIMIZER not in runs.columns or runs[OPTIMIZER].nunique() < 2:
            continue
        found, why = problems_of(runs, exp, ds, recorded_factors(rs.metas, ", ".join(rs.files)))
        problems += found
        if why is not None:
            skipped.append(Skipped(exp, ds, why))
    return problems, skipped


def folder_profiles(folder: str | Path, **kwargs) -> Profiles:
    """The performance profiles of the result sets under ``folder`` (keyword arguments: those
    of :func:`performance_profiles`). SchemaError for a missing folder or an unreadable file,
    ProfileError when no result set varies the optimizer with a target."""
    problems, skipped = folder_problems(folder)
    if not problems:
        why = "; ".join(f"{s.experiment} on {s.dataset}: {s.reason}" for s in skipped)
        raise ProfileError(f"{folder}: no result set compares two or more optimizers on a "
                           "target under otherwise equal settings" + (f" ({why})" if why
                                                                      else ""))
    return performance_profiles(problems, skipped=skipped, **kwargs)


# ---------------------------------------------------------------------------- the figure

