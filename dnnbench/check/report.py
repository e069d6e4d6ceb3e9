"""Machine-readable check reports: dnnbench's own JSON and github-action-benchmark's format."""

from __future__ import annotations

import math

from dnnbench.check.compare import CheckReport

JSON_FORMATS = ("dnnbench", "github-action-benchmark")


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return _num(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return _clean(obj.item())
    return obj


def report_json(report: CheckReport, context: dict) -> dict:
    """dnnbench's report: context (profile, data set, seeds, files), verdicts, every number.
    Non-finite numbers (a median never reached, an unbounded interval) are null."""
    return _clean({"schema": "dnnbench-check-report", "schema_version": 1, **context,
                   "exit_code": report.exit_code, **report.to_dict()})


def github_action_benchmark(report: CheckReport, context: dict) -> list[dict]:
    """``customSmallerIsBetter`` entries: per arm median steps to target, final test error
    (percent) and step time (ms).  ``range`` is the 95% interval, ``extra`` the verdict."""
    out = []
    wall = {w.arm: w for w in report.wall}
    prefix = f"{context.get('profile', 'check')}/"
    for m in report.metrics:
        if m.metric == "steps":
            value, unit = m.current, "steps"
            rng = (m.current_low, m.current_high)
            name = f"{prefix}{m.arm}/steps to target"
        else:
            value, unit = 100 * (1 - m.current), "% test error"
            rng = (100 * (1 - m.current_high), 100 * (1 - m.current_low))
            name = f"{prefix}{m.arm}/final test error"
        entry = {"name": name, "unit": unit, "value": _num(value)}
        if all(_num(v) is not None for v in rng):
            entry["range"] = f"{rng[0]:.4g} to {rng[1]:.4g} (95% CI)"
        extra = (f"{m.verdict}; baseline {_fmt(m.baseline)}; effect {_fmt(m.effect)} "
                 f"[{_fmt(m.low)}, {_fmt(m.high)}]; p={_fmt(m.p)}; "
                 f"n={m.n_current} vs {m.n_baseline} seeds")
        entry["extra"] = extra
        if entry["value"] is not None:
            out.append(entry)
    for arm, w in wall.items():
        if _num(w.current_step_ms) is not None:
            out.append({"name": f"{prefix}{arm}/step time", "unit": "ms",
                        "value": float(w.current_step_ms),
                        "extra": f"advisory; baseline {_fmt(w.baseline_step_ms)} ms"})
    return out


def _fmt(x) -> str:
    return "n/a" if _num(x) is None else f"{x:.4g}"
