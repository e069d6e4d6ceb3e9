"""`dnnbench report`: an HTML page and a Markdown file for a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import check_writable_folder, err_console, usage_error, warn


def report(
    results_dir: Annotated[Path, typer.Argument(
        help="Folder holding <experiment>-<dataset>-runs.csv, -curves.csv and -meta.json files "
             "(and claims.csv, if any).", show_default=True)] = Path("results"),
    out: Annotated[Path | None, typer.Option(
        help="Folder for report.html, report.md and figures/ (default: RESULTS_DIR/report).")
    ] = None,
    self_contained: Annotated[bool, typer.Option(
        "--self-contained", help="Embed the figures in report.html (one file to send on its "
        "own, several MB) instead of linking figures/.")] = False,
) -> None:
    """Write report.html (summary tables, claims, figures, metadata) and report.md.

    Reads every result file in RESULTS_DIR; summaries use the same statistics as the
    experiment commands (Kaplan-Meier medians, paired bootstrap intervals).
    """
    from dnnbench.report.html import ReportError, write_report
    from dnnbench.results.io import SchemaError

    out = out if out is not None else results_dir / "report"
    check_writable_folder(out, "--out")
    try:
        paths = write_report(results_dir, out, on_warning=warn, self_contained=self_contained)
    except (ReportError, SchemaError) as e:
        usage_error(str(e))
    err_console().print(f"Wrote {paths['html']}, {paths['md']} and {len(paths['figures'])} "
                        f"figures in {out / 'figures'}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
