"""What the figure tests look at: visible panels, data lines, a line by its label, whether an
artist lies inside the figure; and the figure input of a fixture result set."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def fixture_input(stem: str):
    """The FigureInput of ``tests/fixtures/results/<stem>-runs.csv``."""
    from dnnbench.report.generic import stored_figure_input

    return stored_figure_input(FIXTURES / f"{stem}-runs.csv")


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def data_lines(ax):
    """Lines that plot data (legend proxies have none)."""
    return [ln for ln in ax.lines if len(ln.get_xdata())]


def by_label(ax, label):
    found = [ln for ln in ax.lines if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.lines]
    return found[0]


def inside_figure(fig, artist) -> bool:
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return (box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1
            and box.y1 <= page.y1 + 1)
