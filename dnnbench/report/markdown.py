"""Markdown twin of the HTML report: the same tables as Markdown, figures as PNG files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from dnnbench.report.document import NO_FINDING

if TYPE_CHECKING:
    from dnnbench.report.document import Report, TableItem


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def markdown_table(df: pd.DataFrame, left: int = 1, text: tuple[str, ...] = ()) -> str:
    """A GitHub-flavoured Markdown table; the first ``left`` columns and those in ``text``
    left-aligned, the rest (numbers) right-aligned. Line breaks in cells become ``<br>``."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(_escape(c) for c in cols) + " |",
             "|" + "|".join(":---" if i < left or str(c).lower() == "verdict" or c in text
                            else "---:" for i, c in enumerate(cols)) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_escape(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _table(t: TableItem) -> str:
    out = [f"**{_escape(t.title)}**", "", markdown_table(t.df, t.left, t.text)]
    if t.caption:
        out += ["", f"*{t.caption}*"]
    return "\n".join(out)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    """The report as Markdown; figures are referenced as ``{figure_dir}/<file>.png``."""
    out = ["# dnnbench report", "",
           (f"Results in `{report.results_dir}` · generated {report.generated} · "
           f"{len(report.sections)} experiment result{'s' if len(report.sections) != 1 else ''}"),
           "", "## Contents", "", "- [Summary](#summary)"]
    out += [f"- [{s.title}](#{s.anchor})" for s in report.sections]
    if report.claims is not None:
        out.append("- [Claims](#claims)")
    out += ["- [Metadata](#metadata)", "", '<a id="summary"></a>', "", "## Summary", ""]
    if report.tally:
        out += [f"**Claims**: [{report.tally}](#claims)", ""]
    for i, x in enumerate(report.summary, 1):
        verdicts = f" ({x.verdicts})" if x.verdicts else ""
        out += [f"{i}. [{x.title}](#{x.anchor}){verdicts}"
                + (f"<br>{x.headline}" if x.headline else "")]
    out.append("")
    for s in report.sections:
        out += [f'<a id="{s.anchor}"></a>', "", f"## {s.title}", ""]
        if s.intro:
            out += [s.intro, ""]
        if s.command:
            out += ["```", s.command, "```", ""]
        if s.expected or s.found:
            out += [f"**Expected**: {s.expected or 'not stated'}", "",
                    f"**Found**: {s.found or NO_FINDING}", ""]
        if s.bullets:
            head = "The run" if s.expected or s.found else "What the numbers say"
            out += [f"**{head}**", ""] + [f"- {b}" for b in s.bullets] + [""]
        for t in s.tables:
            out += [_table(t), ""]
        for f in s.figures:
            out += [f"![{f.name}]({figure_dir}/{f.filename})", "", f"*{f.caption}*", ""]
    if report.claims is not None:
        out += ['<a id="claims"></a>', "", "## Claims", "", _table(report.claims), ""]
    out += ['<a id="metadata"></a>', "", "## Metadata", ""]
    for s in report.sections:
        meta = pd.DataFrame(s.meta, columns=["field", "value"])
        out += [f"### {s.title}", "", markdown_table(meta, left=2), ""]
    if report.skipped:
        out += [f"Skipped (no report for these experiments): {', '.join(report.skipped)}", ""]
    out += ["---", "", ("Every interval is a 95% confidence interval; a difference whose interval "
            "includes zero (or a ratio whose interval includes 1) is reported as no clear "
            "difference."), ""]
    return "\n".join(out)
