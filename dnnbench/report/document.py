"""The report's document: sections of tables and figures, the claims table, and the
metadata worth reading; :mod:`dnnbench.report.html` and :mod:`dnnbench.report.markdown`
render it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# the Found of a file that records no finding yet
NO_FINDING = ("not written yet: the experiment file has no 'found' text; the tables and "
              "figures below are what this run measured")


class ReportError(Exception):
    """The results folder cannot be reported on (user-facing, one line)."""


@dataclass
class TableItem:
    title: str
    df: pd.DataFrame  # cells are display strings
    caption: str = ""
    left: int = 1  # leading columns aligned left (text); the rest right (numbers)
    text: tuple[str, ...] = ()  # further text columns: left-aligned, wrapped


@dataclass
class FigureItem:
    name: str
    filename: str
    caption: str
    png: bytes


@dataclass
class Section:
    anchor: str
    title: str
    experiment: str
    intro: str
    command: str
    bullets: list[str] = field(default_factory=list)
    tables: list[TableItem] = field(default_factory=list)
    figures: list[FigureItem] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)
    runs_file: str = ""
    dataset: str = ""
    packaged: str = ""  # the packaged file it ran (bn-depth for the depth-sweep preset)
    headline: str = ""  # the first sentence of what the committed run found
    expected: str = ""  # the file's expected result, shown beside ...
    found: str = ""  # ... what its committed run found ("" when the file records none)


@dataclass
class SummaryLine:
    """One experiment in the report's summary: its section, claim verdicts and headline."""

    anchor: str
    title: str
    verdicts: str  # e.g. "3 supported, 1 inconclusive" ("" without claims)
    headline: str


@dataclass
class Report:
    results_dir: Path
    generated: str
    sections: list[Section]
    claims: TableItem | None = None
    skipped: list[str] = field(default_factory=list)
    tally: str = ""  # the claims' verdict counts, e.g. "82 claims: 47 supported, ..."
    summary: list[SummaryLine] = field(default_factory=list)


def arrange(sections: list[Section], order: tuple[str, ...]) -> list[Section]:
    """The sections in reading ``order`` (packaged file names: the main experiments first,
    then the chapter's; others after them by title), each heading unique (a repeated title
    gets its experiment's name)."""
    rank = {name: i for i, name in enumerate(order)}
    out = sorted(sections, key=lambda s: (rank.get(s.packaged, len(rank)), s.title, s.anchor))
    seen: dict[str, int] = {}
    for s in out:
        seen[s.title] = seen.get(s.title, 0) + 1
    for s in out:
        if seen[s.title] > 1:
            s.title = f"{s.title} ({s.experiment})"
    return out


PROVENANCE = re.compile(r"^Committed\b[^(]*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*[.:;]?\s*")


def finding(text: str) -> str:
    """``text`` without its leading provenance ("Committed MNIST run (5 seeds, re-run ...).
    " or "...): "), which says how the run was made, not what it found; the text as it is
    when nothing is left after it."""
    text = " ".join(text.split())
    rest = PROVENANCE.sub("", text, count=1)
    return rest[:1].upper() + rest[1:] if rest else text


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to its first ". " after 40 characters)."""
    text = " ".join(text.split())
    for i in range(40, len(text) - 1):
        if text[i] == "." and text[i + 1] == " ":
            return text[:i + 1]
    return text


def summary_lines(sections: list[Section], claims: pd.DataFrame | None) -> list[SummaryLine]:
    """One line per section: its claims' verdict counts (claims.csv rows of its experiment
    and data set) and its headline."""
    out = []
    for s in sections:
        verdicts = ""
        if claims is not None and len(claims) and "experiment" in claims:
            mine = claims[(claims["experiment"] == s.experiment)
                          & (claims["dataset"] == s.dataset)]
            verdicts = ", ".join(f"{n} {v}" for v, n in mine["verdict"].value_counts().items())
        out.append(SummaryLine(s.anchor, s.title, verdicts, s.headline))
    return out


def meta_rows(meta: dict, runs_file: str) -> list[tuple[str, str]]:
    """The metadata worth reading, as (key, value) display pairs."""
    ds = meta.get("dataset") or {}
    versions = meta.get("versions") or {}
    rows = [("results file", runs_file), ("command", str(meta.get("command", "–"))),
            ("started / finished", f"{meta.get('started', '–')} / {meta.get('finished', '–')}"),
            ("data set", f"{ds.get('name', '–')} ({ds.get('source', '–')})"),
            ("examples train / val / test",
             f"{ds.get('n_train', '–')} / {ds.get('n_val', '–')} / {ds.get('n_test', '–')}"),
            ("data fingerprint", str(ds.get("fingerprint", "–")))]
    for name, digest in (ds.get("hashes") or {}).items():
        rows.append((f"sha256 {name}", str(digest)))
    devices = meta.get("devices") or []
    rows += [("backend / device", f"{meta.get('backend', '–')} / {meta.get('device_kind', '–')}"
                                  + (f" ({', '.join(map(str, devices))})" if devices else "")),
             ("CPU", f"{meta.get('cpu') or '–'}, {meta.get('cpu_count', '–')} cores"),
             ("python / platform", f"{meta.get('python', '–')} / {meta.get('platform', '–')}"),
             ("git commit", str(meta.get("git_commit") or "–")),
             ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "–")]
    if meta.get("quick"):
        rows.append(("note", "--quick smoke run (data subset, few seeds and steps)"))
    return rows


