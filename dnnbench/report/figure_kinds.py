"""The figure kinds' makers, registered by the names that experiment files use
(:mod:`dnnbench.definition.figures` declares each kind: what it shows, its caption, whether
it is automatic).

A maker is called as ``make(FigureInput)``: it returns a matplotlib Figure (written as
``<stem>-<name>``), a dict of them (figure name -> Figure, or (Figure, caption)), or None
when these results cannot show it. ``dnnbench run --plot`` writes them next to the results
and ``dnnbench report`` links them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnnbench.definition.figures import DEFAULT, FIGURES
from dnnbench.report import figures as drawing
from dnnbench.report import layers, plots, regularization, search, transfer
from dnnbench.report.figures import FigureInput

MAKERS: dict[str, Callable[[FigureInput], Any]] = {
    "metric": plots.metric_figure,
    "kaplan-meier": plots.km_figure,
    "curves": plots.curves_figure,
    "train-loss": plots.train_loss_figure,
    "timing": plots.timing_figure,
    "speed-vs-quality": plots.speed_quality_figure,
    "paired-accuracy": transfer.paired_accuracy_kind,
    "gains": transfer.gains_kind,
    "learning-rate": plots.learning_rate_figure,
    "regularization": regularization.figures,
    "layers": layers.figures,
    "search": search.figure_kind,
}
assert list(MAKERS) == list(FIGURES), "every declared figure kind has its maker, in order"


def draw_kind(name: str, inp: FigureInput) -> dict[str, tuple[Any, str]]:
    """figure name -> (Figure, caption) of the kind ``name``; empty when the results cannot
    show it."""
    out = MAKERS[name](inp)
    if out is None:
        return {}
    if not isinstance(out, dict):
        out = {name: out}
    caption = FIGURES[name].caption
    return {n: fig if isinstance(fig, tuple) else (fig, caption) for n, fig in out.items()}


# kinds the report draws for every experiment whose results allow it, declared or not: the
# learning curves (dnnbench.definition.figures does not mark them automatic, so that
# `dnnbench run --plot` writes only what a file declares)
REPORT_KINDS = ("curves",)


def draw(inp: FigureInput, report: bool = False) -> dict[str, tuple[Any, str]]:
    """Every figure of the experiment: its declared kinds, then the automatic ones that apply
    (figure name -> (Figure, caption)); ``report``: also REPORT_KINDS (after the declared
    ones)."""
    declared = tuple(getattr(inp.exp, "figures", ()) or DEFAULT)
    extra = tuple(k for k in REPORT_KINDS if report and k not in declared)
    out: dict[str, tuple[Any, str]] = {}
    for name in (*declared, *extra, *(k for k, v in FIGURES.items() if v.auto)):
        out.update(draw_kind(name, inp))
    return out


def save(inp: FigureInput, runs_path: Path) -> list[Path]:
    """Draw every figure (see :func:`draw`) and write ``<stem>-<name>.png/.svg`` next to
    the runs CSV; returns the written paths."""
    stem = str(runs_path).removesuffix("-runs.csv")
    written: list[Path] = []
    for name, (fig, _caption) in draw(inp).items():
        written += drawing.save_figure(fig, Path(f"{stem}-{name}"))
    return written
