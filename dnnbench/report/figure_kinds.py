"""The figures an experiment can show: a registry of figure kinds.

An experiment file names the figures it wants (``figures = ["metric", "kaplan-meier"]``;
default ``["metric"]``); ``dnnbench run --plot`` writes them next to the results and
``dnnbench report`` embeds them. *Automatic* kinds (the learning-rate curves of scheduled
arms, the generalization gap, the per-layer diagnostics, a search's figures) are drawn
whenever the results hold what they show, declared or not.

A kind is a registry entry: its name, a line saying what it shows (``dnnbench list``), the
report's caption, and the import path ``module:function`` of its maker, called as
``make(FigureInput)``: it returns a matplotlib Figure (written as ``<stem>-<name>``), a
dict of them (figure name -> Figure, or (Figure, caption)), or None when these results
cannot show it. Makers are imported only when a figure is drawn (no matplotlib at help time).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class FigureInput:
    """What a figure is drawn from: the definition and the common-schema tables."""

    exp: Any  # dnnbench.experiments.files.Experiment
    runs: pd.DataFrame
    curves: pd.DataFrame | None = None
    layers: pd.DataFrame | None = None
    dataset: str = ""


@dataclasses.dataclass(frozen=True)
class FigureKind:
    name: str
    about: str
    caption: str
    make: str  # "module:function"
    auto: bool = False  # drawn whenever the results allow, declared or not

    def draw(self, inp: FigureInput) -> dict[str, tuple[Any, str]]:
        """figure name -> (Figure, caption); empty when the results cannot show it."""
        module, function = self.make.split(":")
        out = getattr(importlib.import_module(module), function)(inp)
        if out is None:
            return {}
        if not isinstance(out, dict):
            out = {self.name: out}
        return {name: fig if isinstance(fig, tuple) else (fig, self.caption)
                for name, fig in out.items()}


_P = "dnnbench.report.plots"
FIGURES: dict[str, FigureKind] = {k.name: k for k in (
    FigureKind("metric", "the first shown metric against the first factor (a line per second "
               "factor, a panel per third; steps: Kaplan-Meier medians)",
               "The first shown metric against the first factor; steps: Kaplan-Meier median "
               "over the seeds (an open triangle at the budget: not reached by half of them), "
               "other metrics: mean; 95% intervals.", f"{_P}:metric_figure"),
    FigureKind("kaplan-meier", "fraction of seeds at the target by step s, a curve per level "
               "of the second factor, a panel per other combination",
               "Kaplan-Meier curves: the fraction of seeds that reached the target by each "
               "step (a run that never reached it is censored at its budget).",
               f"{_P}:km_figure"),
    FigureKind("curves", "eval accuracy against the step: a thin line per seed, the median of "
               "the seeds still training with their interquartile range",
               "Eval accuracy during training at the last level of the first factor: thin "
               "lines are seeds (a dot where one reached the target and stopped); thick, the "
               "median of the seeds still training, with their interquartile range.",
               f"{_P}:curves_figure"),
    FigureKind("train-loss", "training loss against the step per arm (geometric mean over the "
               "seeds, 95% band)",
               "Training loss (mean over the steps since the previous evaluation) per arm: "
               "geometric mean over the seeds with its 95% interval.",
               f"{_P}:train_loss_figure"),
    FigureKind("timing", "time per training step and time to target against the first factor",
               "Left: ms per training step of all seeds vmapped (compile and evaluation "
               "excluded); right: time to target = median steps x step time, with the "
               "steps' 95% interval.", f"{_P}:timing_figure"),
    FigureKind("speed-vs-quality", "steps to target against a final metric (the first shown; "
               "final eval accuracy), per arm",
               "Speed against quality per arm: the Kaplan-Meier median steps to target "
               "against the mean of the first shown final metric, 95% intervals (upper left "
               "is fast and good for an accuracy). An open marker at the budget: the median "
               "was not reached; arms with equal medians are spread sideways; dashed: the "
               "later levels of the second factor (e.g. tuned arms).",
               f"{_P}:speed_quality_figure"),
    FigureKind("paired-accuracy", "transfer: task-B test accuracy of B (from scratch) and "
               "B-on-A (A's layers) per seed, a panel per B-on-A arm",
               "Task B test accuracy of each seed trained from scratch (B) and with layers "
               "reused from task A (B-on-A); each line joins the two runs of one seed (same "
               "data order and initial key); black: the means.",
               "dnnbench.report.transfer:paired_accuracy_kind"),
    FigureKind("gains", "transfer: the gain B-on-A minus B of every B-on-A arm (class pair), "
               "with its distribution (two arms or more)",
               "Gain in test accuracy from reusing layers (B-on-A minus B, paired by seed) for "
               "every class pair: grey dots are seeds, diamonds the mean gain with its 95% "
               "interval, coloured by verdict (helps / hurts only when the interval excludes "
               "zero, with at least 5 seeds); with 8 pairs or more, a histogram of the mean "
               "gains.", "dnnbench.report.transfer:gains_kind"),
    FigureKind("learning-rate", "learning rate and eval accuracy against the step (arms whose "
               "rate changes during training)", "Per arm: the learning rate (log axis) and "
               "the mean eval accuracy over the seeds against the step.",
               f"{_P}:learning_rate_figure", auto=True),
    FigureKind("regularization", "test accuracy and generalization gap per arm; reliability of "
               "MC dropout predictions (runs that measured them)", "",
               "dnnbench.report.regularization:figures", auto=True),
    FigureKind("layers", "per-layer diagnostics: profiles at the start and end, gradient-norm "
               "heatmap (runs with diagnostics)", "", "dnnbench.report.layers:figures",
               auto=True),
    FigureKind("search", "a search's outcome against its parameters, best so far, heatmap",
               "", "dnnbench.report.search:figure_kind", auto=True),
)}
DEFAULT = ("metric",)


def names() -> tuple[str, ...]:
    """The kinds a file may declare (the automatic ones are always drawn)."""
    return tuple(k for k, v in FIGURES.items() if not v.auto)


def draw(inp: FigureInput) -> dict[str, tuple[Any, str]]:
    """Every figure of the experiment: its declared kinds, then the automatic ones that apply
    (figure name -> (Figure, caption))."""
    declared = tuple(getattr(inp.exp, "figures", ()) or DEFAULT)
    out: dict[str, tuple[Any, str]] = {}
    for name in (*declared, *(k for k, v in FIGURES.items() if v.auto)):
        out.update(FIGURES[name].draw(inp))
    return out


def save(inp: FigureInput, runs_path: Path) -> list[Path]:
    """Draw every figure (see :func:`draw`) and write ``<stem>-<name>.png/.svg`` next to
    the runs CSV; returns the written paths."""
    from dnnbench.report.figures import save_figure

    stem = str(runs_path).removesuffix("-runs.csv")
    written: list[Path] = []
    for name, (fig, _caption) in draw(inp).items():
        written += save_figure(fig, Path(f"{stem}-{name}"))
    return written
