"""`dnnbench report`: one self-contained HTML page (and a Markdown twin) for a results folder.

``build_report(results_dir)`` reads every ``*-runs.csv`` (with its meta JSON and curves) and
``claims.csv`` when present, computes the summary tables with ``dnnbench.stats`` and draws
the figures; nothing is written until everything has been read and checked, so a bad folder
leaves no partial output. ``render_html`` embeds the figures as base64 PNG; ``write_report``
writes ``report.html``, ``report.md`` and the PNG files the Markdown refers to.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from dnnbench.analysis.outcomes import Outcome
from dnnbench.definition.claims import CONTRADICTED, INCONCLUSIVE, NOT_RUN, SUPPORTED
from dnnbench.definition.experiment import READING_ORDER
from dnnbench.files import atomic_write_bytes, atomic_write_text
from dnnbench.report.document import (
    NO_FINDING,
    FigureItem,
    Report,
    ReportError,
    Section,
    TableItem,
    arrange,
    summary_lines,
)
from dnnbench.report.generic import report_section
from dnnbench.report.lr_find import lr_find_section
from dnnbench.report.markdown import render_markdown
from dnnbench.report.profiles import profiles_section
from dnnbench.results.io import SchemaError, find_results
from dnnbench.results.resultset import ResultSet, load_result

CLAIMS_FILE = "claims.csv"
CLAIMS_REQUIRED = ["claim_id", "claim", "verdict", "evidence", "files"]
FIGURE_DIR = "figures"

# verdict text -> CSS class of its badge
VERDICT_CLASSES = {
    SUPPORTED: "good", "fewer steps": "good", "more accurate": "good",
    CONTRADICTED: "bad", "more steps": "bad", "less accurate": "bad",
    INCONCLUSIVE: "neutral", "no clear difference": "neutral",
    "too few seeds for a verdict": "neutral",
    NOT_RUN: "muted",
}

GENERIC_KEY = "experiment_definition"  # the metadata of `dnnbench run` results
LR_FIND_KEY = "suggested_lr"  # the metadata of `dnnbench lr-find` results


def _section(rs: ResultSet, render_figures: bool) -> Section:
    """Any experiment's section: one builder for every result set with a definition, and
    the range test's for `dnnbench lr-find` results."""
    if GENERIC_KEY not in rs.meta:
        return lr_find_section(rs, render_figures)
    return report_section(rs, render_figures)


def _effect_text(row: pd.Series) -> str:
    """The rounded effect of a claims.csv row: its effect_text, else (an older file) the
    numbers formatted as the claims command does."""
    if "effect_text" in row.index:
        return row["effect_text"]
    num = pd.to_numeric(row.reindex(["effect", "low", "high"]), errors="coerce").astype(float)
    return Outcome(row["verdict"], *num).effect_text


def claims_frame(results_dir: Path) -> pd.DataFrame | None:
    """claims.csv as strings, with the data set of each row (its evidence's "[name]" prefix);
    None without the file; SchemaError when it cannot be read."""
    path = results_dir / CLAIMS_FILE
    if not path.exists():
        return None
    try:
        claims = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise SchemaError(f"{path}: cannot be read as CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in CLAIMS_REQUIRED if c not in claims.columns]
    if missing:
        raise SchemaError(f"{path}: missing columns: {', '.join(missing)}")
    claims["dataset"] = claims["evidence"].str.extract(r"^\[([^\]]+)\] ",
                                                       expand=False).fillna("")
    return claims


def read_claims(results_dir: Path) -> TableItem | None:
    """claims.csv as a readable table: id, claim, data set, verdict badge, rounded effect with
    its interval, n and the evidence (the files and command stay in the CSV)."""
    claims = claims_frame(results_dir)
    if claims is None:
        return None
    counts = claims["verdict"].value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    table = pd.DataFrame({
        "id": claims["claim_id"], "claim": claims["claim"], "data set": claims["dataset"],
        "verdict": claims["verdict"],
        "effect [95% CI]": claims.apply(_effect_text, axis=1),
        "n": claims["n"] if "n" in claims.columns else "",
        "evidence": claims["evidence"].str.replace(r"^\[[^\]]+\] ", "", regex=True)})
    return TableItem(f"Claims checked against these results ({len(claims)}: {summary})", table,
                     "Verdicts, effects and evidence from claims.csv in the results folder "
                     "(which also names the files and the command behind each claim). n: "
                     "seeds, pairs or groups behind the effect.", left=4,
                     text=("claim", "effect [95% CI]", "evidence"))


def build_report(results_dir: str | Path, render_figures: bool = True,
                 on_warning: Callable[[str], None] | None = None) -> Report:
    """Read and summarize every result in ``results_dir``. ReportError when the folder has
    nothing to report on; SchemaError (one line) for an unknown schema or missing columns."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results folder {results_dir} does not exist")
    sets, skipped = [], []
    for _, _, p in find_results(results_dir):
        rs = load_result(p, require_known=False)
        if GENERIC_KEY in rs.meta or LR_FIND_KEY in rs.meta:
            sets.append(rs)
        else:
            skipped.append(f"{p.name} (experiment {rs.experiment!r})")
    claims = read_claims(results_dir)
    if not sets:
        found = f"; skipped: {', '.join(skipped)}" if skipped else ""
        raise ReportError(f"no recognizable results in {results_dir}: expected "
                          f"<experiment>-<dataset>-runs.csv files written by dnnbench run "
                          f"or its presets{found}")
    for s in skipped:
        if on_warning:
            on_warning(f"skipping {s}: no report for this experiment")
    sections = arrange([_section(rs, render_figures) for rs in sets], READING_ORDER)
    profiles = profiles_section(results_dir, render_figures)
    if profiles is not None:  # across the experiments: after the main three
        main = sum(s.packaged in READING_ORDER[:3] for s in sections)
        sections.insert(main, profiles)
    frame = claims_frame(results_dir) if claims is not None else None
    # the newest result's finish time, not the clock: the same results give the same report
    finished = [str(rs.meta.get("finished")) for rs in sets if rs.meta.get("finished")]
    generated = f"from results finished by {max(finished)}" if finished else "from results"
    tally = ""
    if frame is not None:
        counts = ", ".join(f"{n} {v}" for v, n in frame["verdict"].value_counts().items())
        tally = f"{len(frame)} claims: {counts}"
    summary = summary_lines([s for s in sections if s is not profiles], frame)
    return Report(results_dir, generated, sections, claims, skipped, tally, summary)


# ------------------------------------------------------------------ HTML

CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #dde1e8; --bg: #ffffff; --soft: #f5f7fa;
        --accent: #1b6ca8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--soft); color: var(--fg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; background: var(--bg);
       min-height: 100vh; box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 22px; margin: 44px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 26px 0 8px; }
p, li { max-width: 100ch; }
.sub { color: var(--muted); margin: 0 0 18px; }
nav { background: var(--soft); border: 1px solid var(--line); border-radius: 8px;
      padding: 10px 18px; margin: 18px 0; }
nav ul { margin: 4px 0; padding-left: 20px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
pre { background: #f0f2f6; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
      overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: 13px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
       monospace; }
.tablewrap { overflow-x: auto; margin: 8px 0 4px; }  /* a last resort: cells wrap first */
table { border-collapse: collapse; font-size: 13.5px; width: 100%; table-layout: auto; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0 8px;
          font-size: 14.5px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
         overflow-wrap: break-word; }
th { background: #eef1f6; text-align: left; font-weight: 600; vertical-align: bottom;
     min-width: 3.5em; overflow-wrap: normal; }
th.num { text-align: right; }
td.text { min-width: 12em; overflow-wrap: anywhere; }
td.num { text-align: right; overflow-wrap: normal; font-variant-numeric: tabular-nums;
         white-space: nowrap; }
.ci { white-space: nowrap; }
table.wide { font-size: 12.5px; }
table.wide td.num, table.wide .ci { white-space: normal; }
tbody tr:nth-child(even) td { background: #fafbfc; }
tbody tr:hover td { background: #eef5fb; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0 16px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12.5px;
         font-weight: 600; white-space: nowrap; }
.badge.good { background: #dcf2e3; color: #17643a; }
.badge.bad { background: #fbe0dd; color: #9b2c1f; }
.badge.neutral { background: #ecedf0; color: #474d59; }
.badge.muted { background: #f4f4f4; color: #8a8f98; font-style: italic; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 95ch; }
table.meta { width: 100%; }
table.meta th { width: 210px; background: var(--soft); }
table.meta td { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace;
                font-size: 12.5px; word-break: break-all; }
.findings { background: #f3f8fc; border-left: 4px solid var(--accent); padding: 8px 16px;
            margin: 12px 0; border-radius: 0 6px 6px 0; }
.findings ul { margin: 4px 0; padding-left: 18px; }
.outcome { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 12px;
           margin: 12px 0; align-items: start; }
.outcome > div { padding: 8px 14px; border-radius: 6px; border: 1px solid var(--line); }
.outcome .expected { background: var(--soft); }
.outcome .found { background: #f3f8fc; border-left: 4px solid var(--accent); }
.outcome .label { font-weight: 600; display: block; margin-bottom: 2px; }
.outcome p { margin: 0; }
.outcome .none { color: var(--muted); font-style: italic; }
@media (min-width: 1000px) { nav ul { columns: 2; column-gap: 32px; } nav li { break-inside: avoid; } }
@media (max-width: 900px) {
  main { padding: 18px 12px 40px; }
  .outcome { grid-template-columns: 1fr; }
  table { font-size: 12.5px; }
  table.wide { font-size: 12px; }
  th, td { padding: 4px 4px; }
  td.num { white-space: normal; }  /* between an estimate, its interval and a verdict */
  td.text { min-width: 7em; }
}
ol.summary li { margin: 0 0 8px; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 40px; }
"""


INTERVAL = re.compile(r"\[[^\[\]]*\]")
ARM_COMMA = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")  # "depth=5,bn=on": before "bn="


def _cell(col: str, value: str) -> str:
    """A cell's HTML: escaped, line breaks kept, an interval "[low, high]" as one piece
    (class ``ci``: the cell wraps between an estimate, its interval and a verdict; only a
    table of WIDE columns or more breaks inside an interval), an arm's name
    ("depth=5,bn=on") with a break opportunity after each comma."""
    text = INTERVAL.sub(lambda m: f'<span class="ci">{m.group(0)}</span>',
                        html.escape(str(value))).replace("\n", "<br>")
    text = ARM_COMMA.sub(",<wbr>", text)  # an arm's name breaks after a comma
    if col.lower() == "verdict" and str(value) in VERDICT_CLASSES:
        return f'<span class="badge {VERDICT_CLASSES[str(value)]}">{text}</span>'
    return text


NUM = ' class="num"'
WIDE = 9  # columns from which a table's intervals may break (else they cannot fit 800 px)
TEXT = ' class="text"'


def html_table(t: TableItem) -> str:
    cols = list(t.df.columns)
    num = [i >= t.left and str(c).lower() != "verdict" and c not in t.text
           for i, c in enumerate(cols)]
    # a name_with_underscores may break after each underscore
    head = "".join(f"<th{NUM if n else ''}>{html.escape(str(c)).replace('_', '_<wbr>')}</th>"
                   for c, n in zip(cols, num, strict=True))
    body = []
    for _, row in t.df.iterrows():
        cells = []
        for c, n in zip(cols, num, strict=True):
            cls = NUM if n else TEXT if c in t.text else ""
            cells.append(f"<td{cls}>{_cell(c, row[c])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f'<p class="note">{html.escape(t.caption)}</p>' if t.caption else ""
    wide = ' class="wide"' if len(cols) >= WIDE else ""
    return (f'<div class="tablewrap"><table{wide}><caption>{html.escape(t.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
            f"{caption}")


def html_figure(f: FigureItem, figure_dir: str | None = None) -> str:
    """The figure as linked file (``figure_dir/filename``) or, without a folder, embedded."""
    src = (f"{figure_dir}/{f.filename}" if figure_dir is not None else
           "data:image/png;base64," + base64.b64encode(f.png).decode("ascii"))
    return (f'<figure id="fig-{html.escape(f.filename)}"><img alt="{html.escape(f.caption)}" '
            f'src="{html.escape(src)}"><figcaption>{html.escape(f.caption)}'
            "</figcaption></figure>")


def _meta_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f'<div class="tablewrap"><table class="meta"><tbody>{body}</tbody></table></div>'


def _summary_html(report: Report) -> str:
    """The summary at the top: the claims' tally (a link to the table) and one line per
    experiment (a link to its section, its claims' verdicts, what its committed run found)."""
    e = html.escape
    tally = (f'<p><strong>Claims</strong>: <a href="#claims">{e(report.tally)}</a></p>'
             if report.tally else "")
    items = "".join(
        f'<li><a href="#{e(x.anchor)}">{e(x.title)}</a>'
        + (f' <span class="note">({e(x.verdicts)})</span>' if x.verdicts else "")
        + (f"<br>{e(x.headline)}" if x.headline else "") + "</li>" for x in report.summary)
    return (f'<section id="summary"><h2>Summary</h2>{tally}'
            f'<ol class="summary">{items}</ol></section>')


def _outcome_html(s: Section) -> str:
    """What the file expected and what its committed run found, side by side (stacked on a
    narrow page); "" for a section with neither (a range test's)."""
    if not (s.expected or s.found):
        return ""
    e = html.escape
    expected = e(s.expected) if s.expected else '<span class="none">not stated</span>'
    found = e(s.found) if s.found else f'<span class="none">{e(NO_FINDING)}</span>'
    return ('<div class="outcome">'
            f'<div class="expected"><span class="label">Expected</span><p>{expected}</p></div>'
            f'<div class="found"><span class="label">Found</span><p>{found}</p></div></div>')


def render_html(report: Report, figure_dir: str | None = None) -> str:
    """The report as one HTML page: figures linked from ``figure_dir`` (relative to the page)
    or, without one, embedded (a self-contained page)."""
    e = html.escape
    toc = ['<li><a href="#summary">Summary</a></li>'] + [
        f'<li><a href="#{e(s.anchor)}">{e(s.title)}</a></li>' for s in report.sections]
    if report.claims is not None:
        toc.append('<li><a href="#claims">Claims</a></li>')
    toc.append('<li><a href="#metadata">Metadata</a></li>')
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>dnnbench report</title>", f"<style>{CSS}</style></head><body><main>",
        "<h1>dnnbench report</h1>",
        (f'<p class="sub">Results in <code>{e(str(report.results_dir))}</code> · generated '
        f"{e(report.generated)} · {len(report.sections)} experiment result"
        f"{'s' if len(report.sections) != 1 else ''}</p>"),
        f"<nav><strong>Contents</strong><ul>{''.join(toc)}</ul></nav>",
        _summary_html(report)]
    for s in report.sections:
        parts.append(f'<section id="{e(s.anchor)}"><h2>{e(s.title)}</h2>')
        if s.intro:
            parts.append(f"<p>{e(s.intro)}</p>")
        if s.command:
            parts.append(f"<pre><code>{e(s.command)}</code></pre>")
        parts.append(_outcome_html(s))
        if s.bullets:
            items = "".join(f"<li>{e(b)}</li>" for b in s.bullets)
            head = "The run" if s.expected or s.found else "What the numbers say"
            parts.append(f'<div class="findings"><strong>{head}</strong>'
                         f"<ul>{items}</ul></div>")
        parts.extend(html_table(t) for t in s.tables)
        parts.extend(html_figure(f, figure_dir) for f in s.figures)
        parts.append("</section>")
    if report.claims is not None:
        parts.append('<section id="claims"><h2>Claims</h2>')
        parts.append(html_table(report.claims))
        parts.append("</section>")
    parts.append('<section id="metadata"><h2>Metadata</h2>')
    parts.append('<p class="note">Where and how each result was produced: the exact command, '
                 "library versions, device, and the hashes of the data set files.</p>")
    for s in report.sections:
        parts.append(f"<h3>{e(s.title)}</h3>{_meta_table(s.meta)}")
    parts.append("</section>")
    if report.skipped:
        parts.append(f'<p class="note">Skipped (no report for these experiments): '
                     f"{e(', '.join(report.skipped))}</p>")
    parts.append("<footer>Generated by <code>dnnbench report</code>. Every interval is a 95% "
                 "confidence interval; a difference whose interval includes zero (or a ratio "
                 "whose interval includes 1) is reported as no clear difference.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def write_report(results_dir: str | Path, out: str | Path,
                 on_warning: Callable[[str], None] | None = None,
                 self_contained: bool = False) -> dict[str, Path]:
    """Build the report and write ``report.html``, ``report.md`` and ``figures/*.png`` into
    ``out``; returns their paths (``html``, ``md``, ``figures``). The page links the figures
    in ``figures/`` (``self_contained``: embeds them, a page to send on its own)."""
    report = build_report(results_dir, on_warning=on_warning)
    page = render_html(report, None if self_contained else FIGURE_DIR)
    md = render_markdown(report, FIGURE_DIR)
    out = Path(out)
    fig_paths = []
    for s in report.sections:
        for f in s.figures:
            path = out / FIGURE_DIR / f.filename
            atomic_write_bytes(path, f.png)
            fig_paths.append(path)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", page)
    return {"html": out / "report.html", "md": out / "report.md", "figures": fig_paths}
