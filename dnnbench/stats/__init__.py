"""Statistics used by every experiment summary.

Pure numpy/scipy.  Bootstrap intervals are reproducible: ``n_resamples=2000`` and a fixed
``seed=0`` by default.  Degenerate inputs (n == 1, constant values, zero differences)
never raise and give documented NaN-free results; NaN marks "no data" or, for interval
bounds, "unbounded" (e.g. a median never reached, "> budget").

- ``intervals``: ``mean_ci``, ``paired_difference``, ``paired_log_ratio``.
- ``censored``: steps-to-target with censoring: ``kaplan_meier``, ``km_median``,
  ``paired_censored_comparison``.
- ``calibration``: ``calibration`` (expected calibration error, reliability bins).
- ``verdicts``: ``verdict_from_interval``, ``format_interval``.
"""

from .calibration import Calibration, calibration
from .censored import (
    CensoredComparison,
    CensoredSummary,
    KMCurve,
    kaplan_meier,
    km_median,
    paired_censored_comparison,
    resampled_km_medians,
    steps_of_runs,
)
from .intervals import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    PairedComparison,
    mean_ci,
    paired_difference,
    paired_log_ratio,
)
from .verdicts import (
    MIN_SEEDS_FOR_VERDICT,
    TOO_FEW_SEEDS,
    format_interval,
    verdict_from_interval,
)

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MIN_SEEDS_FOR_VERDICT",
    "TOO_FEW_SEEDS",
    "Calibration",
    "CensoredComparison",
    "CensoredSummary",
    "Interval",
    "KMCurve",
    "PairedComparison",
    "calibration",
    "format_interval",
    "kaplan_meier",
    "km_median",
    "mean_ci",
    "paired_censored_comparison",
    "paired_difference",
    "paired_log_ratio",
    "resampled_km_medians",
    "steps_of_runs",
    "verdict_from_interval",
]
