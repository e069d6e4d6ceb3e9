"""Presentation of any experiment file's results: one Rich table, the claims, one figure
family (a metric against a factor, a line per second factor, a panel per third)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from rich.table import Table
from rich.text import Text

from dnnbench import definition
from dnnbench.analysis.claims import check_claims
from dnnbench.analysis.summary import NOT_COMPARED, summarize
from dnnbench.definition import Experiment
from dnnbench.report import figure_kinds
from dnnbench.report.console import LABELS, fmt, fmt_interval
from dnnbench.report.document import (
    FigureItem,
    Section,
    TableItem,
    finding,
    first_sentence,
    meta_rows,
)
from dnnbench.report.figures import FigureInput, figure_bytes
from dnnbench.report.search import LEFT as SEARCH_LEFT
from dnnbench.report.search import search_frames
from dnnbench.results.io import curves_path_of, read_curves, read_layers, read_results


def _spec(metric: str) -> str:
    return "{:.4f}" if "loss" in metric or "accuracy" in metric else "{:.2f}"


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def summary_cells(exp: Experiment, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings, one row per arm: the factors' levels, reached n/N,
    each shown metric with its 95% interval (steps: Kaplan-Meier median), and the paired
    comparisons with the reference arm (for the Rich table and the HTML report)."""
    rows = []
    any_diverged = bool(len(summary)) and bool(summary["diverged"].gt(0).any())
    for _, r in summary.iterrows():
        row = {f: str(r[f]) for f in exp.factors}
        if "steps_to_target" in exp.show:  # (no target: nothing to reach)
            row["reached"] = f"{r['reached']}/{r['n']}" + (f" ({r['diverged']} div)"
                                                          if r["diverged"] else "")
        elif any_diverged:  # a column for every arm when some arm diverged
            row["diverged"] = f"{r['diverged']}/{r['n']}"
        for m in exp.show:
            if m == "steps_to_target":
                row[LABELS[m]] = fmt_interval(r["median_steps"], r["steps_low"],
                                              r["steps_high"])
            elif not _finite(r[m]):  # not measured in this arm (e.g. MC dropout's metrics)
                row[LABELS.get(m, m)] = "–"
            else:
                s = _spec(m)
                row[LABELS.get(m, m)] = (f"{fmt(r[m], s)} [{fmt(r[m + '_low'], s)}, "
                                         f"{fmt(r[m + '_high'], s)}]")
        if exp.reference:
            value = LABELS.get(r["value_metric"], r["value_metric"])
            if not r["reference"] or r["reference"] == NOT_COMPARED:
                row["steps vs reference"] = row[f"{value} vs reference"] = \
                    r["reference"] or "reference"
            else:
                row["steps vs reference"] = (
                    f"x{r['steps_ratio']:.2f} [{fmt(r['ratio_low'], '{:.2f}')}, "
                    f"{fmt(r['ratio_high'], '{:.2f}', '∞')}] {r['steps_verdict']}"
                    if math.isfinite(r["steps_ratio"]) else
                    f"– (a median not reached) {r['steps_verdict']}")
                row[f"{value} vs reference"] = (
                    f"{fmt(r['diff'], '{:+.4f}')} [{fmt(r['diff_low'], '{:+.4f}')}, "
                    f"{fmt(r['diff_high'], '{:+.4f}')}] {r['diff_verdict']}")
            if "steps_to_target" not in exp.show:  # no target (e.g. transfer's stages)
                del row["steps vs reference"]
        rows.append(row)
    return pd.DataFrame(rows)


def summary_title(exp: Experiment, summary: pd.DataFrame, dataset: str) -> str:
    n = int(summary["n"].max()) if len(summary) else 0
    return (f"{exp.name} on {dataset} ({n} seed{'s' if n != 1 else ''} per arm, paired; "
            "95% intervals)")


def summary_legend(exp: Experiment) -> str:
    """What the summary's cells are, in words: the target and its split, the intervals, the
    reference arm."""
    parts = []
    if "steps_to_target" in exp.show:
        target = exp.base.get("target")
        split = exp.base.get("eval_split", "val")
        what = (f"{exp.relative_target:.0%} of the best median final accuracy"
                if exp.relative_target else f"{target:.0%}" if isinstance(target, float)
                else "the target")
        parts.append(f"Steps: Kaplan-Meier median steps to {what} {split} accuracy [95% "
                     "interval] (a run that never reaches it counts as censored at its budget; "
                     "∞: beyond the budget); reached: runs that reached it / seeds.")
    parts.append("Other metrics: mean over the seeds [95% t interval].")
    if exp.reference:
        ref = ", ".join(f"{k}={v}" for k, v in exp.reference.items())
        parts.append(f"Reference: {ref}; 'vs reference': paired by seed, a ratio of steps "
                     "and a difference, with the verdict of its interval (5 seeds at least).")
    return " ".join(parts)


def summary_table(exp: Experiment, summary: pd.DataFrame, dataset: str) -> Table:
    """The summary as a Rich table (see :func:`summary_cells`); its caption says what the
    cells are (:func:`summary_legend`) and the experiment's question."""
    cells = summary_cells(exp, summary)
    caption = "\n".join(x for x in (summary_legend(exp), exp.question) if x)
    t = Table(title=summary_title(exp, summary, dataset), header_style="bold",
              title_justify="left", caption=caption or None, caption_justify="left")
    for i, c in enumerate(cells.columns):
        t.add_column(c, justify="left" if i < len(exp.factors) else "right")
    for row in cells.itertuples(index=False):
        t.add_row(*row)
    return t


VERDICT_STYLE = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}


def claims_table(claims: pd.DataFrame) -> Table:
    """The claims as a two-column grid: the verdict, then the claim with the test that
    decided it and its comparisons (paired by seed, 95% intervals) below, dimmed; long texts
    wrap in their cell instead of squeezing a table's columns."""
    t = Table.grid(padding=(0, 2))
    t.title = "Claims of the experiment file (paired by seed, 95% intervals)"
    t.title_justify, t.title_style = "left", "bold"
    t.add_column(no_wrap=True)
    t.add_column()
    for _, r in claims.iterrows():
        body = Text(str(r["claim"]))
        body.append(f"\n{r['effects']}", style="dim")
        t.add_row(Text(str(r["verdict"]), style=VERDICT_STYLE.get(r["verdict"], "")), body)
    return t


# ------------------------------------------------------------------------------------ figures

def figure_input(exp: Experiment, runs: pd.DataFrame, runs_path: Path, dataset: str = "",
                 layers=...):
    """The tables a figure is drawn from: the runs, and the curves and per-layer diagnostics
    beside ``runs_path`` when the result set has them (``layers``: the diagnostics, if the
    caller has read them already)."""

    curves = read_curves(runs_path) if curves_path_of(runs_path).exists() else None
    if layers is ...:
        layers = read_layers(runs_path)
    return FigureInput(exp, runs, curves, layers, dataset)


def stored_figure_input(runs_path: Path):
    """The figure input of stored results (``<name>-<dataset>-runs.csv`` with its meta,
    curves and layers), the experiment rebuilt from the definition the meta records."""
    runs, meta = read_results(runs_path)
    exp = definition.parse(json.loads(meta["experiment_definition"]), str(runs_path))
    return figure_input(exp, runs, runs_path, (meta.get("dataset") or {}).get("name", ""))


def section_figures(rs, exp: Experiment, layers=...) -> list:
    """The report's figures of a result set: the file's declared figure kinds, the learning
    curves, and the automatic ones its results allow (dnnbench.report.figure_kinds), as PNG
    items (``layers`` as for :func:`figure_input`)."""

    dataset = (rs.meta.get("dataset") or {}).get("name", "")
    inp = figure_input(exp, rs.runs, rs.runs_path, dataset, layers)
    return [FigureItem(name, f"{rs.stem}-{name}.png", caption, figure_bytes(fig, "png"))
            for name, (fig, caption) in figure_kinds.draw(inp, report=True).items()]


def report_section(rs, render_figures: bool = True):
    """The HTML/Markdown report section of any experiment file's results: its summary, its
    claims and its figure, rebuilt from the definition its metadata records."""
    meta = rs.meta
    exp = definition.as_packaged_now(definition.parse(json.loads(meta["experiment_definition"]),
                                                      str(meta.get("experiment_file", ""))),
                                     meta.get("experiment_file"))
    if exp.search is not None:
        return search_section(rs, exp, render_figures)
    dataset = (meta.get("dataset") or {}).get("name", "")
    summary = summarize(exp, rs.runs)
    caption = ("Steps: Kaplan-Meier median over the seeds (a run that never reached the target "
               "is censored; ∞: the interval reaches past the budget); other metrics: mean "
               "over the seeds. Against the reference arm: paired by seed, a ratio of steps "
               "and a difference, each with its 95% interval; a verdict needs an interval "
               "that excludes no difference and at least 5 seeds.")
    cells = summary_cells(exp, summary)
    tables = [TableItem(summary_title(exp, summary, dataset), cells, caption,
                        left=len(exp.factors),
                        text=tuple(c for c in cells.columns if c.endswith("vs reference")))]
    layers = read_layers(rs.runs_path)
    claims = check_claims(exp, rs.runs, layers)
    if len(claims):
        tables.append(TableItem("Claims of the experiment file",
                                claims[["claim", "verdict", "arms", "effects"]],
                                "Supported: every compared arm points the expected way with an "
                                "interval that excludes no difference; contradicted: one "
                                "points the other way.", left=2, text=("effects",)))
    figs = section_figures(rs, exp, layers) if render_figures else []
    bullets = [b for b in (exp.cost and f"Cost: {exp.cost}",
                           (f"Compiled programs: {meta['compiled_programs']} for "
                            f"{meta.get('arms', '–')} arms" if "compiled_programs" in meta
                            else f"Units: {meta.get('units', '–')} for "
                            f"{meta.get('arms', '–')} arms ({exp.protocol} protocol)")) if b]
    return Section(anchor=rs.stem, title=f"{exp.title or exp.name} — {dataset}",
                   experiment=exp.name, intro=exp.question,
                   command=str(meta.get("command", "")), bullets=bullets, tables=tables,
                   figures=figs, meta=meta_rows(meta, rs.runs_path.name),
                   runs_file=rs.runs_path.name, dataset=dataset,
                   packaged=str(meta.get("experiment_file") or exp.name),
                   headline=first_sentence(finding(exp.found) if exp.found else
                                           f"Expected: {exp.expected}" if exp.expected else ""),
                   expected=exp.expected, found=exp.found)


def search_section(rs, exp: Experiment, render_figures: bool = True):
    """The HTML/Markdown report section of a search's results."""
    meta = rs.meta
    dataset = (meta.get("dataset") or {}).get("name", "")
    tables = [TableItem(title, df, left=sum(c in SEARCH_LEFT for c in df.columns))
              for title, df in search_frames(exp, rs.runs, dataset)]
    claims = check_claims(exp, rs.runs)
    if len(claims):
        tables.append(TableItem("Claims of the experiment file",
                                claims[["claim", "verdict", "arms", "effects"]],
                                "best: the chosen points' report metric, paired by "
                                "repetition (or seed); importance: supported when the "
                                "parameter's interval lies above every other's.", left=2,
                                text=("effects",)))
    figs = section_figures(rs, exp) if render_figures else []
    bullets = [b for b in (exp.cost and f"Cost: {exp.cost}",
                           (f"Compiled programs: {meta.get('compiled_programs', '–')} for "
                           f"{meta.get('arms', '–')} points"),
                           meta.get("search_refine_rule") and exp.search.stages > 1 and
                           f"Coarse to fine: {meta['search_refine_rule']}") if b]
    return Section(anchor=rs.stem, title=f"{exp.title or exp.name} — {dataset}",
                   experiment=exp.name, intro=exp.question,
                   command=str(meta.get("command", "")), bullets=bullets, tables=tables,
                   figures=figs, meta=meta_rows(meta, rs.runs_path.name),
                   runs_file=rs.runs_path.name, dataset=dataset,
                   packaged=str(meta.get("experiment_file") or exp.name),
                   headline=first_sentence(finding(exp.found) if exp.found else
                                           f"Expected: {exp.expected}" if exp.expected else ""),
                   expected=exp.expected, found=exp.found)
