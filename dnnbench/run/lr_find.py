"""The learning-rate range test (``dnnbench lr-find``).

One arm of an experiment file is trained for ``steps`` steps while its learning rate rises
exponentially from ``min_lr`` to ``max_lr`` (the schedule :func:`ramp`, a plug-in of the
registry, so the engine, its lanes and its recorded learning rates are the ones of every
other run); all seeds are lanes of one program, evaluation is off, and the training loss of
every step is recorded. A seed whose loss becomes NaN or infinite is frozen (the engine's
divergence rule) and its curve ends there.

The suggestion (:data:`RULE`): the loss averaged over the seeds is smoothed, its minimum is
where the loss stops falling and starts to climb (the turning point), and the suggested
learning rate is ten times lower than the learning rate there (the textbook's rule of thumb).
The smoothing is a centred Gaussian filter (``scipy.ndimage.gaussian_filter1d``), which does
not shift the minimum towards higher learning rates as a running average would.

``lr-find-<name>-<dataset>-curves.csv``: seed, step, learning_rate, loss (the step's training
loss, penalties included). ``-runs.csv``: one row per seed: its own turning point and
suggestion, steps_done, diverged, and the suggestion of all seeds together (the same in every
row). The meta file records the rule and the suggestion.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.definition import expand, make_spec
from dnnbench.registry import get_schedule
from dnnbench.train.engine import full_control, make_program, seed_keys, to_device

RAMP = "dnnbench.run.lr_find:ramp"  # the schedule, named as a plug-in
FACTOR = 10.0  # the suggestion is this many times below the turning point
SMOOTHING = 0.015  # Gaussian sigma, as a fraction of the steps (at least one step)
CLIMB = 1.1  # the loss "climbed" if it rises this many times above its minimum afterwards
RULE = (f"suggested learning rate = the learning rate at the minimum of the smoothed loss "
        f"(mean over seeds, centred Gaussian filter of sigma {SMOOTHING:g} x steps; where the "
        f"loss starts to climb) / {FACTOR:g}")
CURVE_COLUMNS = ["seed", "step", "learning_rate", "loss"]


def ramp(learning_rate, total_steps, max_ratio=1e5):
    """The range test's schedule: ``learning_rate * max_ratio^(t / (total_steps - 1))``, from
    ``learning_rate`` at the first step to ``learning_rate * max_ratio`` at the last."""
    span = max(total_steps - 1, 1)
    return lambda t: learning_rate * max_ratio ** (t / span)


@dataclasses.dataclass(frozen=True)
class Suggestion:
    turning_lr: float  # learning rate at the minimum of the smoothed loss
    suggested_lr: float  # turning_lr / FACTOR
    min_loss: float  # the smoothed loss there
    climbed: bool  # the loss rose past CLIMB x its minimum afterwards (or diverged)
    steps: int  # finite steps used
    smoothed: np.ndarray  # the smoothed loss of those steps


def smooth(loss: np.ndarray) -> np.ndarray:
    """``loss`` through a centred Gaussian filter (sigma ``SMOOTHING`` x its length)."""
    from scipy.ndimage import gaussian_filter1d

    sigma = max(1.0, SMOOTHING * len(loss))
    return gaussian_filter1d(np.asarray(loss, float), sigma, mode="nearest")


def suggest(lr: Sequence[float], loss: np.ndarray) -> Suggestion:
    """The range test's suggestion (:data:`RULE`) from the learning rate of every step and the
    losses, ``(steps,)`` or ``(seeds, steps)`` (averaged over seeds). The curve ends at the
    first step whose loss is not finite in some seed (divergence counts as climbing)."""
    lr = np.asarray(lr, float)
    loss = np.atleast_2d(np.asarray(loss, float))
    finite = np.isfinite(loss).all(axis=0)
    n = int(np.argmin(finite)) if not finite.all() else len(lr)
    if n < 2:
        raise ValueError("the loss is not finite from the first steps on: lower --min-lr")
    curve = smooth(loss[:, :n].mean(axis=0))
    i = int(np.argmin(curve))
    climbed = n < len(lr) or bool(curve[i:].max() > CLIMB * curve[i])
    return Suggestion(float(lr[i]), float(lr[i] / FACTOR), float(curve[i]), climbed, n, curve)


# ------------------------------------------------------------------------- the arm and unit

def arm_settings(exp, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of the arm the range test trains: the file's base, the reference levels
    (else each factor's first level), then ``overrides``."""
    levels = {f: exp.reference.get(f, v[0]) for f, v in exp.factors.items()}
    for arm in expand(exp):
        if dict(arm.levels) == levels:
            return {**arm.settings, **overrides}
    raise AssertionError("the reference arm is one of the grid's")  # pragma: no cover


def arm_words(settings: Mapping[str, Any]) -> str:
    """The arm a range test tested, in words: e.g. "3 x 100 relu (he-normal init), momentum
    0.9, constant schedule, batch 32"."""
    widths = settings.get("widths") or [settings.get("width", 100)] * int(
        settings.get("depth", 1))
    net = (f"{len(widths)} x {widths[0]}" if len(set(widths)) == 1
           else "-".join(str(w) for w in widths))
    opt = str(settings.get("optimizer", "sgd"))
    coefs = ", ".join(f"{k} {settings[k]:g}" for k in ("momentum", "b1", "b2", "weight_decay")
                      if isinstance(settings.get(k), int | float))
    extra = [f"{settings['norm']} norm" for _ in [0] if settings.get("norm", "none") != "none"]
    model = f"{net} {settings.get('activation', 'relu')} ({settings.get('init', 'default')} init)"
    return ", ".join([model, *extra,
                      f"{opt}{f' ({coefs})' if coefs else ''}",
                      f"{settings.get('schedule', 'constant')} schedule",
                      f"batch {settings.get('batch_size', 32)}"])


def range_spec(settings: Mapping[str, Any], n_train: int, *, min_lr: float, max_lr: float,
               steps: int, where: str):
    """The RunSpec of the range test of an arm: its schedule (and the schedule's parameters)
    replaced by the ramp, evaluation every step, no target."""
    replaced = get_schedule(settings.get("schedule", "constant")).params  # the arm's schedule
    ramp_settings = {**{k: v for k, v in settings.items() if k not in replaced},
                     "learning_rate": min_lr, "schedule": RAMP,
                     "max_ratio": max_lr / min_lr, "max_steps": steps, "eval_every": 1,
                     "target": 0.0, "stop_at_target": False}
    ramp_settings.pop("epochs", None)
    return make_spec(ramp_settings, n_train, where)


def train(spec, data, seeds: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the seeds of the range test (one program, evaluation off): (runs, curves)."""
    import jax
    import jax.numpy as jnp


    prog = make_program(spec, data.n_classes, len(data.y_train))
    dev = to_device(data, spec)
    keys = seed_keys(seeds)
    hps = {"learning_rate": jnp.full((len(seeds),), spec.learning_rate, jnp.float32)}
    ctrl = full_control(spec, evaluate=False, early_stop=False, test_eval=False)
    trace = jax.jit(prog.run_seeds)(keys, hps, dev, None, ctrl, prog.seed_inputs(keys, dev))
    trace = jax.device_get(trace)
    curves = []
    for j, seed in enumerate(seeds):
        n = int(trace.n_done[j])
        curves.append(pd.DataFrame({"seed": int(seed), "step": trace.steps[j][:n],
                                    "learning_rate": np.asarray(trace.lr[j][:n], float),
                                    "loss": np.asarray(trace.train_loss[j][:n], float)}))
    curves = pd.concat(curves, ignore_index=True)[CURVE_COLUMNS]
    return per_seed(curves), curves


def per_seed(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per seed: its own turning point and suggestion."""
    rows = []
    for seed, g in curves.groupby("seed", sort=True):
        finite = np.isfinite(g["loss"].to_numpy())
        row = {"seed": int(seed), "steps_done": int(g["step"].max()),
               "diverged": not bool(finite.all())}
        try:
            s = suggest(g["learning_rate"], g["loss"].to_numpy())
        except ValueError:
            row |= {"turning_lr": math.nan, "suggested_lr": math.nan, "min_loss": math.nan,
                    "climbed": True}
        else:
            row |= {"turning_lr": s.turning_lr, "suggested_lr": s.suggested_lr,
                    "min_loss": s.min_loss, "climbed": s.climbed}
        rows.append(row)
    return pd.DataFrame(rows)


def overall(curves: pd.DataFrame) -> Suggestion:
    """The suggestion from every seed's curve (averaged step by step)."""
    wide = curves.pivot(index="step", columns="seed", values="loss").sort_index()
    lr = curves.groupby("step")["learning_rate"].first().sort_index()
    full = pd.RangeIndex(1, int(lr.index.max()) + 1)  # a frozen seed's missing steps: NaN
    return suggest(lr.reindex(full).to_numpy(), wide.reindex(full).to_numpy().T)


def finalize(runs: pd.DataFrame, curves: pd.DataFrame, dataset: str):
    """The written tables (data set and overall suggestion in every row) and the meta."""
    s = overall(curves)
    runs = runs.assign(dataset=dataset, all_seeds_turning_lr=s.turning_lr,
                       all_seeds_suggested_lr=s.suggested_lr)
    meta = {"rule": RULE, "suggested_lr": s.suggested_lr, "turning_lr": s.turning_lr,
            "min_smoothed_loss": s.min_loss, "climbed": s.climbed}
    return runs, curves, meta
