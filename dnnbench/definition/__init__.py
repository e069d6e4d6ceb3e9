"""The vocabulary of dnnbench, importing nothing above itself (nor JAX at import time).

- :mod:`.settings`: the run settings and their allowed values, checked;
- :mod:`.experiment`: the experiment file: parse, expand into arms, quick variant, overrides,
  ``to_doc`` (the definition recorded in a run's metadata);
- :mod:`.specs`: an arm's settings -> its run specification;
- :mod:`.claims`: the ONE claim type, its forms, the evaluators' parameters, the verdict words;
- :mod:`.search`: a ``[search]`` section's declaration and sampling;
- :mod:`.figures`: the figure kinds' names; :mod:`.protocols`: the protocols' declarations.

The names most callers need are importable from here (``definition.load(name)``).
"""

from dnnbench.definition.experiment import (
    CATALOGUE_FOLDER,
    POINT,
    ArmSettings,
    Experiment,
    Tune,
    as_packaged_now,
    catalogue,
    describe,
    expand,
    find,
    format_level,
    load,
    override,
    parse,
    parse_assignment,
    quick_variant,
    recorded_source,
    settings_table,
    to_doc,
    tune_sweep,
    with_search,
)
from dnnbench.definition.settings import (
    COLUMN_ORDER,
    METRICS,
    SETTINGS,
    TUNE_FACTOR,
    ExperimentError,
    Setting,
    check_setting,
    lower_is_better,
)
from dnnbench.definition.specs import make_spec

__all__ = [
    "CATALOGUE_FOLDER",
    "COLUMN_ORDER",
    "METRICS",
    "POINT",
    "SETTINGS",
    "TUNE_FACTOR",
    "ArmSettings",
    "Experiment",
    "ExperimentError",
    "Setting",
    "Tune",
    "as_packaged_now",
    "catalogue",
    "check_setting",
    "describe",
    "expand",
    "find",
    "format_level",
    "load",
    "lower_is_better",
    "make_spec",
    "override",
    "parse",
    "parse_assignment",
    "quick_variant",
    "recorded_source",
    "settings_table",
    "to_doc",
    "tune_sweep",
    "with_search",
]
