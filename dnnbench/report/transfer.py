"""Rich tables of the transfer experiment: one class pair in detail, or one row per pair."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich.table import Table

from dnnbench.report.console import fmt, plural, table
from dnnbench.stats import format_interval


def _pct(est: float, low: float, high: float) -> str:
    """Accuracy (a fraction) as percent with its interval: "97.1 [96.8, 97.4]"."""
    return format_interval(est * 100, low * 100, high * 100, "{:.1f}")


def _points(row) -> str:
    return f"{row['diff']:+.1f} [{fmt(row['diff_low'], '{:.1f}', '?')}, " \
           f"{fmt(row['diff_high'], '{:.1f}', '?')}]" if not math.isnan(row["diff"]) else "n/a"


def _reduction(row) -> str:
    if math.isnan(row["err_reduction"]):
        return "n/a"
    text = format_interval(row["err_reduction"] * 100, row["err_reduction_low"] * 100,
                           row["err_reduction_high"] * 100, "{:+.0f}%")
    n = int(row["err_reduction_n"])
    return text if n == int(row["n_paired"]) else f"{text} (n={n})"


def class_label(c: int, class_names: Sequence[str] = ()) -> str:
    name = class_names[c] if c < len(class_names) else str(c)
    return str(c) if name == str(c) else f"{name} ({c})"


def pair_text(row, class_names: Sequence[str] = ()) -> str:
    return f"{class_label(row['pos_class'], class_names)} vs " \
           f"{class_label(row['neg_class'], class_names)}"


def _diverged(n_div: int) -> str:
    return f" ({n_div} div)" if n_div else ""


def pair_tables(row: pd.Series, dataset: str, class_names: Sequence[str] = ()) -> list[Table]:
    """Two tables for one class pair: the three arms, then the paired comparison."""
    n = int(row["n_b"])
    task_b = pair_text(row, class_names)
    k, f = int(row["reuse_layers"]), int(row["freeze_epochs"])
    transfer = (f"{task_b}; reuses {k} hidden layer{'s' * (k != 1)} of A, frozen {f} "
                f"epoch{'s' * (f != 1)}")
    if row["unfreeze_lr"] != row["learning_rate"]:
        transfer += f", then lr {row['unfreeze_lr']:g}"
    arms = [
        ("A", f"the other classes ({dataset})", row["train_size_a"], row["epochs_a"], "a"),
        ("B", f"{task_b}, from scratch", row["train_size_b"], row["epochs_b"], "b"),
        ("B-on-A", transfer, row["train_size_t"], row["epochs_b"], "t"),
    ]
    rows = [[name, task, str(int(size)), str(int(epochs)),
             _pct(row[f"acc_{k}"], row[f"acc_{k}_low"], row[f"acc_{k}_high"])
             + _diverged(int(row[f"diverged_{k}"])),
             fmt(row[f"compile_s_{k}"], "{:.1f}"), fmt(row[f"step_ms_{k}"], "{:.2f}")]
            for name, task, size, epochs, k in arms]
    arms_table = table(
        f"Transfer on {dataset}: task B = {task_b} ({plural(n, 'seed')} per arm)",
        ["arm", "task", "train images", "epochs", "test accuracy % [95% CI]", "compile s",
         "step ms"], rows,
        caption="Test accuracy on the arm's own task (A: the other classes; B arms: the two "
                "classes). Mean over seeds with a 95% bootstrap interval. step ms: one "
                "training step of all seeds vmapped together, compile and evaluation excluded.",
        justify_right_from=2)
    cmp_table = table(
        f"B-on-A minus B, paired by seed ({plural(int(row['n_paired']), 'seed')})",
        ["difference, points [95% CI]", "p (Wilcoxon)", "B-on-A better in",
         "error-rate reduction [95% CI]", "verdict"],
        [[_points(row), fmt(row["p_value"], "{:.3g}"),
          f"{row['n_better']}/{int(row['n_paired'])} seeds", _reduction(row), row["verdict"]]],
        caption="Error-rate reduction: 1 - geometric mean over seeds of err(B-on-A)/err(B) "
                "(seeds where an arm makes no test error are left out). A verdict needs an "
                "interval that excludes zero.",
        justify_right_from=0)
    return [arms_table, cmp_table]


def pairs_table(summary: pd.DataFrame, dataset: str, class_names: Sequence[str] = ()) -> Table:
    """One row per class pair: accuracies, the paired difference, its test and the verdict."""
    n = int(summary["n_b"].max()) if len(summary) else 0
    rows = []
    for _, r in summary.iterrows():
        rows.append([pair_text(r, class_names),
                     _pct(r["acc_a"], r["acc_a_low"], r["acc_a_high"])
                     + _diverged(int(r["diverged_a"])),
                     _pct(r["acc_b"], r["acc_b_low"], r["acc_b_high"])
                     + _diverged(int(r["diverged_b"])),
                     _pct(r["acc_t"], r["acc_t_low"], r["acc_t_high"])
                     + _diverged(int(r["diverged_t"])),
                     _points(r), fmt(r["p_value"], "{:.3g}"),
                     f"{r['n_better']}/{int(r['n_paired'])}", _reduction(r), r["verdict"]])
    first = summary.iloc[0] if len(summary) else None
    setup = "" if first is None else (
        f"; B arms on {int(first['train_size_b'])} images, {int(first['reuse_layers'])} hidden layers "
        f"reused, frozen {int(first['freeze_epochs'])} of {int(first['epochs_b'])} epochs")
    return table(
        f"Transfer on {dataset}, every class pair ({plural(n, 'seed')} per arm{setup})",
        ["task B (pos vs neg)", "A acc %", "B acc %", "B-on-A acc %", "B-on-A - B points",
         "p", "better", "error-rate reduction", "verdict"], rows,
        caption="Test accuracy: mean over seeds [95% bootstrap CI]. Differences paired by seed, "
                "Wilcoxon p-value; a verdict needs an interval that excludes zero.",
        justify_right_from=1)
