"""Rich presentation: progress on stderr, summary tables on stdout."""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dnnbench.report import stderr_console
from dnnbench.run.units import Progress as ProgressProtocol

LABELS = {"steps_to_target": "steps to target", "time_to_target_s": "s to target",
          "final_eval_accuracy": "final eval acc.", "best_eval_accuracy": "best eval acc.",
          "final_eval_loss": "final eval loss", "final_train_loss": "final train loss",
          "final_test_accuracy": "test acc.", "final_test_loss": "test loss",
          "divergence_rate": "divergence rate"}


class RichProgress(ProgressProtocol):
    """One bar over the units of an experiment; says which unit runs and which were resumed."""

    def __init__(self, console: Console | None = None, title: str = "training"):
        self.console = console or stderr_console()
        self.title = title
        self._p: Progress | None = None
        self._task = None
        self._t0 = 0.0

    def start(self, total: int, done: int) -> None:
        if done:
            self.console.print(f"[cyan]Resuming:[/] {done}/{total} units already saved, skipping them.")
        self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                           MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                           TimeRemainingColumn(), console=self.console, transient=False)
        self._p.start()
        self._task = self._p.add_task(self.title, total=total, completed=done)

    def unit_started(self, label: str) -> None:
        self._t0 = time.perf_counter()
        self._p.update(self._task, description=f"{self.title}: {label}")

    def inside_unit(self, label: str, evaluations: int, of: int) -> None:
        """The unit's evaluation periods done of its budget, and the time left at this pace
        (an upper bound where seeds stop at a target)."""
        if evaluations >= of or not evaluations:
            return
        took = time.perf_counter() - self._t0
        left = took * (of - evaluations) / evaluations
        self._p.update(self._task, description=f"{self.title}: {label} (evaluation "
                                               f"{evaluations}/{of}, unit ETA ≤ {_clock(left)})")

    def unit_finished(self, label: str, cached: bool) -> None:
        self._p.advance(self._task)
        self._p.console.print(f"{label} done in {time.perf_counter() - self._t0:.1f} s",
                              highlight=False)

    def stop(self) -> None:
        if self._p is not None:
            self._p.update(self._task, description=self.title)
            self._p.stop()


def _clock(seconds: float) -> str:
    """'0:42', '1:05:09'."""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plural(n: int, noun: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt(x, spec: str = "{:.0f}", missing: str = "–") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return spec.format(x)


def fmt_interval(est, low, high, spec: str = "{:.0f}", unbounded: str = "∞") -> str:
    if est is None or (isinstance(est, float) and math.isnan(est)):
        return "not reached"
    lo = fmt(low, spec, "?")
    hi = fmt(high, spec, unbounded)
    return f"{spec.format(est)} [{lo}, {hi}]"


def table(title: str, columns: list[str], rows: list[list[str]], caption: str | None = None,
          justify_right_from: int = 1) -> Table:
    t = Table(title=title, caption=caption, header_style="bold", title_justify="left",
              caption_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if i >= justify_right_from else "left")
    for r in rows:
        t.add_row(*r)
    return t
