"""An arm's settings -> its :class:`dnnbench.spec.RunSpec`: the derived settings (depth,
width, epochs, train_size) resolved, the optimizer's coefficients and the schedule's
parameters told apart, plug-ins imported, and the settings checked together (ExperimentError,
one line)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dnnbench.definition.settings import (
    DIVERGENCE_FACTOR,
    MLP_SETTINGS,
    SETTINGS,
    TUNE_FACTOR,
    did_you_mean,
    fail,
)
from dnnbench.spec import RunSpec, check_norm, has_batch_norm


def make_spec(settings: Mapping[str, Any], n_train: int | None, where: str = ""):
    """The RunSpec of an arm's settings (``n_train``: training examples, for ``epochs`` and
    ``eval_every = "epoch"``; None only checks the settings)."""
    # the registry imports JAX: only once an arm is built, not for `dnnbench list` or --help
    from dnnbench.registry import DEFAULT_INIT, get_optimizer, get_schedule

    s = dict(settings)
    s.pop(TUNE_FACTOR, None)  # not a run setting: which arms a [tune] sweep chooses
    s.setdefault("divergence_factor", DIVERGENCE_FACTOR)
    fields = {f.name for f in dataclasses.fields(RunSpec)}
    model = s.get("model", "mlp")
    if model != "mlp":
        mlp_only = [k for k in MLP_SETTINGS if k in s]
        if mlp_only:
            fail(where, f"{mlp_only[0]} is a setting of the built-in MLP; the model plug-in "
                         f"{model} does not take it (remove it, or set model = \"mlp\")")
        s["widths"] = ()
    depth, width = s.pop("depth", None), s.pop("width", None)
    epochs, s_train = s.pop("epochs", None), s.pop("train_size", 0)
    widths = s.pop("widths", None)
    if width is not None:
        widths = (width,) * (depth or (len(widths) if widths else 1))
    elif widths is None:
        widths = (100,) * (depth or 3)
    elif depth is not None:
        if depth > len(widths):
            fail(where, f"depth {depth} exceeds the {len(widths)} widths given; set width "
                         "for deeper nets")
        widths = widths[:depth]
    activation = s.get("activation", "relu")
    if s.get("init", "default") == "default":
        s["init"] = DEFAULT_INIT.get(activation, "he-normal")
    optimizer = s.get("optimizer", "adam")
    coefficients = {k: s.pop(k) for k in list(s) if k not in fields}
    schedule = s.get("schedule", "constant")
    try:
        opt = get_optimizer(optimizer)
        sched = get_schedule(schedule)
        _check_plugins(s)
    except ValueError as e:
        fail(where, str(e))
    schedule_params = {k: coefficients.pop(k) for k in list(coefficients) if k in sched.params}
    unknown = sorted(set(coefficients) - set(opt.defaults))
    if unknown:
        known = [*SETTINGS, *opt.defaults, *sched.params]
        fail(where, f"unknown setting {unknown[0]!r}{did_you_mean(unknown[0], known)} "
                     f"(optimizer {optimizer} has the "
                     f"coefficients {', '.join(opt.defaults) or 'none'}; schedule {schedule} "
                     f"has the parameters {', '.join(sched.params) or 'none'}; settings: "
                     f"{', '.join(SETTINGS)})")
    for k in sched.positive:
        if k in schedule_params and not schedule_params[k] > 0:
            fail(where, f"{k} (a parameter of schedule {schedule}) must be > 0, got "
                         f"{schedule_params[k]!r}")
    n = n_train
    if n is not None and s_train:
        n = min(n, s_train)
    batch = s.get("batch_size", 500)
    if s.get("eval_every") == "epoch":
        s["eval_every"] = max(1, n // batch) if n else 1
    if epochs is not None:
        per_epoch = max(1, n // batch) if n else 1
        every = s.get("eval_every", 10)
        s["max_steps"] = max(every, epochs * per_epoch // every * every)
    spec = RunSpec(widths=widths, optimizer_params=tuple(coefficients.items()),
                   schedule_params=tuple(schedule_params.items()), **s)
    if spec.eval_every > spec.max_steps:
        fail(where, f"eval_every ({spec.eval_every}) exceeds max_steps ({spec.max_steps})")
    if spec.early_stopping and spec.eval_split != "val":
        fail(where, "early_stopping watches the validation loss: set "
                     "eval_split = \"val\"")
    if spec.norm != "batch" and spec.bn_logits:
        spec = spec.replace(bn_logits=False)
    if spec.clip == "none":  # no threshold without clipping
        spec = spec.replace(clip_norm=0.0)
    spec = _resolve_norm(spec, where)
    return spec


def _resolve_norm(spec, where: str):
    """The spec with the BN evaluation settings that apply to its model (a model without
    batch norm evaluates as it is: bn_eval "running"; bn_eval_batch 0 is the training batch
    size), checked against its widths (group norm)."""
    try:
        check_norm(spec)
    except ValueError as e:
        fail(where, str(e))
    if not has_batch_norm(spec) or spec.bn_eval != "batch":
        return spec.replace(bn_eval=spec.bn_eval if has_batch_norm(spec) else "running",
                            bn_eval_batch=0)
    return spec.replace(bn_eval_batch=spec.bn_eval_batch or spec.batch_size)


def _check_plugins(settings: Mapping[str, Any]) -> None:
    """Plug-ins named in ``settings`` can be imported and are of the right kind (ValueError)."""
    # the registry imports JAX (see make_spec)
    from dnnbench.registry import get_activation, get_initializer, get_model, get_schedule

    getters = {"activation": get_activation, "init": get_initializer,
               "head_init": get_initializer, "schedule": get_schedule, "model": get_model}
    for key, get in getters.items():
        name = settings.get(key)
        if isinstance(name, str) and ":" in name:
            get(name)
