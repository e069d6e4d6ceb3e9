"""Machine-readable check reports: dnnbench's own JSON and github-action-benchmark's format."""

from __future__ import annotations

import math

from dnnbench.check.compare import CheckReport

JSON_FORMATS = ("dnnbench", "github-action-benchmark")


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def clean_json(obj):
    """``obj`` with non-finite floats as null and NumPy scalars as Python numbers."""
    return _clean(obj)


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
    """github-action-benchmark's ``customSmallerIsBetter`` entries (every entry is smaller is
    better): per arm median steps to target (steps), final test error (%) and step time (ms).
    Each entry states every number in its own unit: ``range`` is the 95% interval of
    ``value``, ``extra`` the verdict, the baseline and the change (a ratio of steps, a change
    of the error in points)."""
    out = []
    prefix = f"{context.get('profile', 'check')}/"
    for m in report.metrics:
        if m.metric == "steps":
            value, low, high, base = m.current, m.current_low, m.current_high, m.baseline
            name, unit = "steps to target", "steps"
            change = f"ratio ×{_fmt(m.effect)} [{_fmt(m.low)}, {_fmt(m.high)}]"
        else:  # accuracy -> error in percent, so that smaller is better here too
            value, low, high, base = (100 * (1 - x) for x in (m.current, m.current_high,
                                                               m.current_low, m.baseline))
            name, unit = "final test error", "%"
            change = (f"change {_fmt(-100 * m.effect, '{:+.3g}')} pt "
                      f"[{_fmt(-100 * m.high, '{:+.3g}')}, {_fmt(-100 * m.low, '{:+.3g}')}]")
        if _num(value) is None:
            continue
        entry = {"name": f"{prefix}{m.arm}/{name}", "unit": unit, "value": float(value)}
        if _num(low) is not None and _num(high) is not None:
            entry["range"] = f"{low:.4g} to {high:.4g} {unit} (95% CI)"
        entry["extra"] = (f"{m.verdict}; baseline {_fmt(base)} {unit}; {change}; p gate="
                          f"{_fmt(m.p_gate)}; n={m.n_current} vs {m.n_baseline} seeds")
        out.append(entry)
    for w in report.wall:
        if _num(w.current_step_ms) is not None:
            out.append({"name": f"{prefix}{w.arm}/step time", "unit": "ms",
                        "value": float(w.current_step_ms),
                        "extra": f"advisory; baseline {_fmt(w.baseline_step_ms)} ms"})
    return out


def _fmt(x, spec: str = "{:.4g}") -> str:
    return "n/a" if _num(x) is None else spec.format(x)
