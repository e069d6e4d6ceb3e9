"""Rich summary table of the depth sweep."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from dnnbench.report.console import fmt, fmt_interval, plural, table


def depth_sweep_table(summary: pd.DataFrame, dataset: str, target: float) -> Table:
    n = int(summary["n"].max()) if len(summary) else 0
    rows = []
    for _, r in summary.iterrows():
        bn_col = ""
        if r["bn"] and r["bn_verdict"]:
            ratio = fmt_interval(r["bn_ratio"], r["bn_ratio_low"], r["bn_ratio_high"], "{:.2f}")
            bn_col = f"{ratio} {r['bn_verdict']}"
        rows.append([r["activation"], str(r["depth"]), "on" if r["bn"] else "off",
                     f"{r['reached']}/{r['n']}" + (f" ({r['diverged']} div)" if r["diverged"] else ""),
                     fmt_interval(r["median_steps"], r["steps_low"], r["steps_high"]),
                     fmt(r["step_ms"], "{:.2f}"), fmt(r["time_to_target_s"], "{:.2f}"), bn_col])
    return table(
        f"Depth sweep on {dataset}: steps to {target:.0%} test accuracy "
        f"({plural(n, 'seed')} per arm)",
        ["activation", "depth", "BN", "reached", "median steps [95% CI]", "step ms",
         "time to target s", "BN / no-BN steps [95% CI]"], rows,
        caption="Median steps: Kaplan-Meier (runs that never reached the target are censored, "
                "∞ = upper limit beyond the budget). step ms: one training step of all seeds "
                "vmapped together, compile and evaluation excluded. BN ratio: paired by seed; "
                "a verdict needs an interval that excludes 1 and at least 5 seeds.",
        justify_right_from=1)
