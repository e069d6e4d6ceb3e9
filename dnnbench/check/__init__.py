"""``dnnbench check``: the regression gate for convergence speed.

- ``profiles``: ``benchmarks/regression.toml`` -> :class:`Profile` (experiment files with
  overrides, their arms, seeds, thresholds); :func:`run_profile` trains the arms with their
  experiments' programs (arms of one structure as the lanes of one vmapped program).
- ``compare``: :func:`compare_runs` (baseline vs current runs table -> :class:`CheckReport`):
  one-sided tests with a minimum effect, see that module's docstring for the statistics.
- ``baseline``: stored baselines (CSV + ``.meta.json``) and their compatibility checks.
- ``report``: JSON reports (dnnbench's and github-action-benchmark's customSmallerIsBetter).
"""

from dnnbench.check.baseline import (
    IncompatibleBaseline,
    baseline_meta,
    check_compatible,
    meta_path,
    read_baseline,
    write_baseline,
)
from dnnbench.check.compare import (
    CheckReport,
    IncompatibleRuns,
    MetricCheck,
    Thresholds,
    WallCheck,
    compare_runs,
)
from dnnbench.check.profiles import (
    Profile,
    ProfileError,
    default_profiles_path,
    load_profile_data,
    load_profiles,
    run_profile,
)
from dnnbench.check.report import JSON_FORMATS, github_action_benchmark, report_json

__all__ = [
    "JSON_FORMATS",
    "CheckReport",
    "IncompatibleBaseline",
    "IncompatibleRuns",
    "MetricCheck",
    "Profile",
    "ProfileError",
    "Thresholds",
    "WallCheck",
    "baseline_meta",
    "check_compatible",
    "compare_runs",
    "default_profiles_path",
    "github_action_benchmark",
    "load_profile_data",
    "load_profiles",
    "meta_path",
    "read_baseline",
    "report_json",
    "run_profile",
    "write_baseline",
]
