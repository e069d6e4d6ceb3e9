"""The figure kinds an experiment file may name (``figures = ["metric", "kaplan-meier"]``;
default ``["metric"]``): their names, what each shows (``dnnbench list``) and the report's
caption. *Automatic* kinds (the learning-rate curves of scheduled arms, the generalization
gap, the per-layer diagnostics, a search's figures) are drawn whenever the results hold what
they show, declared or not. The makers are registered under the same names in
:mod:`dnnbench.report.figure_kinds`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FigureKind:
    name: str
    about: str
    caption: str
    auto: bool = False  # drawn whenever the results allow, declared or not


FIGURES: dict[str, FigureKind] = {k.name: k for k in (
    FigureKind("metric", "the first shown metric against the first factor (a line per second "
               "factor, a panel per third; steps: Kaplan-Meier medians)",
               "The first shown metric against the first factor; steps: Kaplan-Meier median "
               "over the seeds (an open triangle at the budget: not reached by half of them), "
               "other metrics: mean; 95% intervals."),
    FigureKind("kaplan-meier", "fraction of seeds at the target by step s, a curve per level "
               "of the second factor, a panel per other combination",
               "Kaplan-Meier curves: the fraction of seeds that reached the target by each "
               "step (a run that never reached it is censored at its budget)."),
    FigureKind("curves", "eval accuracy against the step: a thin line per seed, the median "
               "over the arm's seeds with their interquartile range, a panel per level (the "
               "report draws it for every experiment)",
               "Eval accuracy during training: thin lines are seeds (a dot where one reached "
               "the target and stopped, a cross where one diverged); thick, the median over "
               "all the seeds of the arm with their interquartile range, a seed that stopped "
               "before its budget counted at its last value."),
    FigureKind("train-loss", "training loss against the step per arm (geometric mean over the "
               "seeds, 95% band)",
               "Training loss (mean over the steps since the previous evaluation) per arm: "
               "geometric mean over the seeds with its 95% interval."),
    FigureKind("timing", "time per training step and time to target against the first factor",
               "Left: ms per training step of all seeds vmapped (compile and evaluation "
               "excluded); right: time to target = median steps x step time, with the "
               "steps' 95% interval."),
    FigureKind("speed-vs-quality", "steps to target against a final metric (the first shown; "
               "final eval accuracy), per arm",
               "Speed against quality per arm: the Kaplan-Meier median steps to target "
               "against the mean of the first shown final metric, 95% intervals (upper left "
               "is fast and good for an accuracy). An open marker at the budget: the median "
               "was not reached; arms with equal medians are spread sideways; dashed: the "
               "later levels of the second factor (e.g. tuned arms)."),
    FigureKind("paired-accuracy", "transfer: task-B test accuracy of B (from scratch) and "
               "B-on-A (A's layers) per seed, a panel per B-on-A arm",
               "Task B test accuracy of each seed trained from scratch (B) and with layers "
               "reused from task A (B-on-A); each line joins the two runs of one seed (same "
               "data order and initial key); black: the means."),
    FigureKind("gains", "transfer: the gain B-on-A minus B of every B-on-A arm (class pair), "
               "with its distribution (two arms or more)",
               "Gain in test accuracy from reusing layers (B-on-A minus B, paired by seed) for "
               "every class pair: grey dots are seeds, diamonds the mean gain with its 95% "
               "interval, coloured by verdict (helps / hurts only when the interval excludes "
               "zero, with at least 5 seeds); with 8 pairs or more, a histogram of the mean "
               "gains."),
    FigureKind("learning-rate", "learning rate and eval accuracy against the step (arms whose "
               "rate changes during training)", "Per arm: the learning rate (log axis) and "
               "the mean eval accuracy over the seeds against the step.", auto=True),
    FigureKind("regularization", "test accuracy and generalization gap per arm; reliability of "
               "MC dropout predictions (runs that measured them)", "", auto=True),
    FigureKind("layers", "per-layer diagnostics: profiles at the start and end, gradient-norm "
               "heatmap (runs with diagnostics)", "",
               auto=True),
    FigureKind("search", "a search's outcome against its parameters, best so far, heatmap",
               "", auto=True),
)}
DEFAULT = ("metric",)


def names() -> tuple[str, ...]:
    """The kinds a file may declare (the automatic ones are always drawn)."""
    return tuple(k for k, v in FIGURES.items() if not v.auto)
