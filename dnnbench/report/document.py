"""The report's document: sections of tables and figures, the claims table, and the
metadata worth reading; :mod:`dnnbench.report.html` and :mod:`dnnbench.report.markdown`
render it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


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


@dataclass
class Report:
    results_dir: Path
    generated: str
    sections: list[Section]
    claims: TableItem | None = None
    skipped: list[str] = field(default_factory=list)


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


