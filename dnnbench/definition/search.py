"""Hyper-parameter search in experiment files: the ``[search]`` section.

A search draws ``n`` points per design, repetition and stage; every point is a named level
of the experiment's last factor, ``point``, so points cross the file's ``[factors]`` grid
(structures) and points of one structure train as the lanes of ONE compiled program (the
usual grouping by ``spec.structure_key``; stages are kept in separate programs, so a later
stage never changes the units of an earlier one)::

    [search]
    n = 25                 # points per design and repetition (stage 1)
    fine_n = 25            # points per design and repetition of each later stage (n)
    seed = 0               # the sampling seed (not a training seed)
    repeats = 1            # independent searches (sampling seeds seed, seed+1, ...)
    metric = "final_eval_accuracy"   # the outcome a point is chosen by (loss: lower wins)
    report = "final_test_accuracy"   # what a chosen point is judged by (an unseen split)
    stages = 1             # 2+: coarse to fine (see `refine`)
    top_k = 5              # a fine stage samples inside the box around the best k points
    margin = 0.05          # ... widened by this share of each parameter's range on each side
    [search.params]        # each parameter's sampler
    learning_rate = { scale = "log", low = -4, high = 0 }     # 10^r, r ~ U(low, high)
    b1 = { scale = "one-minus-log", low = -3, high = -1 }     # 1 - 10^r
    dropout = { scale = "uniform", low = 0, high = 0.5 }
    depth = { scale = "int", low = 1, high = 4 }               # uniform integers
    batch_size = { scale = "choice", values = [32, 128] }
    [search.designs.grid]  # (optional) named designs; default: one design "random"
    method = "grid"        # levels (i + u) / m of each range, u ~ U(0, 1) per repetition
    [search.designs.random]
    params = { b1 = { scale = "uniform", low = 0.9, high = 0.999 } }  # replaced samplers

Every parameter draws its own uniform numbers from a generator seeded by (seed, stage,
repetition, parameter name): designs of equal ``n`` share them, so two designs that differ
only in one parameter's scale are paired point by point.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from dnnbench.definition.settings import METRICS

SCALES = ("uniform", "log", "one-minus-log", "int", "choice")


METHODS = ("random", "grid")


SEARCH_KEYS = {"n", "fine_n", "seed", "repeats", "metric", "report", "stages", "top_k", "margin",
               "params", "designs", "points", "boxes_"}


DESIGN_KEYS = {"method", "n", "params"}


PARAM_KEYS = {"scale", "low", "high", "values"}


POINT = "point"  # the factor that holds the points


REFINE_RULE = ("stage s+1 of a design and repetition samples uniformly (on each parameter's "
               "sampling scale) inside the box spanned by the top_k points of stage s (ranked "
               "by the mean of the metric over seeds and factor levels), widened on each side "
               "by margin x the parameter's full range and clipped to it; a choice parameter "
               "draws from the values among those points")


class SearchError(ValueError):
    """A bad [search] section; one line."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter's sampler: ``low``/``high`` bound r (log scales: the exponent)."""

    scale: str
    low: float = 0.0
    high: float = 1.0
    values: tuple = ()

    def value(self, u: float):
        """The value at the uniform number ``u`` in [0, 1)."""
        if self.scale == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.scale == "int":
            return int(min(math.floor(self.low + u * (self.high - self.low + 1)), self.high))
        if self.scale == "one-minus-log":  # beta increases with u, as on the other scales
            return 1.0 - 10.0 ** (self.high - u * (self.high - self.low))
        r = self.low + u * (self.high - self.low)
        return 10.0 ** r if self.scale == "log" else r

    def coord(self, value) -> float:
        """``value`` on its sampling scale (log: the exponent; choice: its index)."""
        if self.scale == "choice":
            return float(self.values.index(value))
        if self.scale == "log":
            return math.log10(value)
        if self.scale == "one-minus-log":
            return math.log10(1.0 - value)
        return float(value)

    @property
    def log_axis(self) -> bool:
        return self.scale in ("log", "one-minus-log")


@dataclasses.dataclass(frozen=True)
class Design:
    name: str
    method: str
    n: int
    params: dict[str, Param]


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    stage: int
    design: str
    repeat: int
    index: int
    values: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Search:
    n: int
    fine_n: int
    seed: int
    repeats: int
    metric: str
    report: str
    stages: int
    top_k: int
    margin: float
    params: dict[str, Param]
    designs: tuple[Design, ...]
    points: tuple[Point, ...] = ()
    boxes: tuple[dict, ...] = ()  # the boxes of the fine stages drawn so far
    source: dict = dataclasses.field(default_factory=dict)  # the section as written

    @property
    def higher_is_better(self) -> bool:
        return not self.metric.endswith("loss")

    def stage_points(self, stage: int) -> list[Point]:
        return [p for p in self.points if p.stage == stage]

    @property
    def planned_points(self) -> int:
        """The points of every stage (the fine stages' are drawn once the one before ends)."""
        per_stage = (self.stages - 1) * self.fine_n * len(self.designs)
        return self.repeats * (sum(d.n for d in self.designs) + per_stage)

    @property
    def drawn_stages(self) -> int:
        return max((p.stage for p in self.points), default=0)


def _fail(where: str, message: str):
    raise SearchError(f"{where}: {message}")


def _int(doc, key, default, where, minimum=1, maximum=100_000) -> int:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= maximum:
        _fail(where, f"[search] {key} must be an integer from {minimum} to {maximum}, got {v!r}")
    return v


def parse_param(name: str, doc, where: str) -> Param:
    at = f"{where} [search.params] {name}"
    if not isinstance(doc, Mapping):
        _fail(at, "must be a table, e.g. { scale = \"log\", low = -4, high = 0 }")
    unknown = sorted(set(doc) - PARAM_KEYS)
    if unknown:
        _fail(at, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(PARAM_KEYS))}")
    scale = doc.get("scale")
    if scale not in SCALES:
        _fail(at, f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if scale == "choice":
        values = doc.get("values")
        if not isinstance(values, list) or not values or len(set(map(repr, values))) != len(
                values):
            _fail(at, "a choice needs values = [a non-empty list without repeats]")
        return Param(scale, values=tuple(tuple(v) if isinstance(v, list) else v
                                         for v in values))
    low, high = doc.get("low"), doc.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in (low, high)) or low > high:
        _fail(at, f"needs numbers low <= high, got low={low!r}, high={high!r}")
    if scale == "int" and not (float(low).is_integer() and float(high).is_integer()):
        _fail(at, "an int scale needs integer low and high")
    if scale == "one-minus-log" and high >= 0:
        _fail(at, "one-minus-log needs high < 0 (beta = 1 - 10^r stays below 1)")
    return Param(scale, float(low), float(high))


def parse(doc, where: str, check) -> Search:
    """The [search] section; ``check(key, value, where)`` checks a sampled value as a run
    setting (settings.check_setting)."""
    if not isinstance(doc, Mapping):
        _fail(where, "[search] must be a table")
    unknown = sorted(set(doc) - SEARCH_KEYS)
    if unknown:
        _fail(where, f"[search]: unknown key {unknown[0]!r}; allowed: "
                     f"{', '.join(sorted(SEARCH_KEYS))}")
    n = _int(doc, "n", 25, where)
    metric, report = doc.get("metric", "final_eval_accuracy"), doc.get("report",
                                                                       "final_test_accuracy")
    for key, m in (("metric", metric), ("report", report)):
        if m not in METRICS or m in ("steps_to_target", "time_to_target_s"):
            _fail(where, f"[search] {key}: an accuracy or loss column, got {m!r}")
    margin = doc.get("margin", 0.05)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin <= 1:
        _fail(where, f"[search] margin must be a number in [0, 1], got {margin!r}")
    params_doc = doc.get("params", {})
    if not isinstance(params_doc, Mapping) or not params_doc:
        _fail(where, "[search] needs [search.params]: at least one parameter")
    params = {k: parse_param(k, v, where) for k, v in params_doc.items()}
    designs_doc = doc.get("designs", {"random": {}})
    if not isinstance(designs_doc, Mapping) or not designs_doc:
        _fail(where, "[search] designs must be a table of named designs")
    designs = []
    for name, d in designs_doc.items():
        at = f"{where} [search.designs] {name}"
        if not isinstance(d, Mapping):
            _fail(at, "must be a table")
        bad = sorted(set(d) - DESIGN_KEYS)
        if bad:
            _fail(at, f"unknown key {bad[0]!r}; allowed: {', '.join(sorted(DESIGN_KEYS))}")
        method = d.get("method", "random")
        if method not in METHODS:
            _fail(at, f"method must be one of {', '.join(METHODS)}, got {method!r}")
        own = {**params, **{k: parse_param(k, v, at) for k, v in d.get("params", {}).items()}}
        dn = _int(d, "n", n, at)
        if method == "grid":
            m = round(dn ** (1 / len(own)))
            if m ** len(own) != dn:
                _fail(at, f"a grid of {len(own)} parameters needs n = m^{len(own)}, got {dn}")
        designs.append(Design(name, method, dn, own))
    search = Search(n=n, fine_n=_int(doc, "fine_n", n, where), seed=_int(doc, "seed", 0, where, 0, 2**31 - 1),
                    repeats=_int(doc, "repeats", 1, where), metric=metric, report=report,
                    stages=_int(doc, "stages", 1, where, 1, 10),
                    top_k=_int(doc, "top_k", 5, where), margin=float(margin),
                    params=params, designs=tuple(designs),
                    source={k: v for k, v in doc.items() if k not in ("points", "boxes_")})
    if "points" in doc:  # points already drawn (recorded in a run's metadata)
        search = dataclasses.replace(search, points=tuple(_read_point(p, where)
                                                          for p in doc["points"]),
                                     boxes=tuple(doc.get("boxes_", ())))
    else:
        search = dataclasses.replace(search, points=tuple(draw(search, 1)))
    for p in search.points:
        for k, v in p.values.items():
            check(k, v, f"{where} [search] point {p.name}")
    return search


def _read_point(doc, where: str) -> Point:
    try:
        return Point(doc["name"], int(doc["stage"]), doc["design"], int(doc["repeat"]),
                     int(doc["index"]), {k: tuple(v) if isinstance(v, list) else v
                                         for k, v in doc["values"].items()})
    except (KeyError, TypeError, ValueError):
        _fail(where, f"[search] points: a recorded point needs name, stage, design, repeat, "
                     f"index and values, got {doc!r}")


def uniforms(seed: int, stage: int, repeat: int, name: str, n: int, grid_offset=False):
    """The uniform numbers of one parameter (seeded by seed, stage, repetition and name)."""
    import numpy as np  # (only when points are drawn: `dnnbench --help` loads this module)

    rng = np.random.default_rng([seed, stage, repeat, zlib.crc32(name.encode()),
                                 int(grid_offset)])
    return rng.random(n)


def design_uniforms(search: Search, design: Design, stage: int, repeat: int
                    ) -> dict[str, np.ndarray]:
    """name -> the n uniform numbers of each parameter: random, or the grid's levels
    (i + u) / m with one random offset u per parameter and repetition, every combination."""
    import numpy as np  # (only when points are drawn: `dnnbench --help` loads this module)

    names = list(design.params)
    if design.method == "random":
        return {k: uniforms(search.seed, stage, repeat, k, design.n) for k in names}
    m = round(design.n ** (1 / len(names)))
    levels = [(np.arange(m) + uniforms(search.seed, stage, repeat, k, 1, True)[0]) / m
              for k in names]
    mesh = np.meshgrid(*levels, indexing="ij")
    return {k: g.ravel() for k, g in zip(names, mesh, strict=True)}


def draw(search: Search, stage: int, boxes: Mapping[tuple[str, int], dict] | None = None
         ) -> list[Point]:
    """The points of ``stage`` of every design and repetition (``boxes``: (design, repeat) ->
    parameter -> Param restricted to its box, for the fine stages)."""
    points = []
    for design in search.designs:
        for rep in range(search.repeats):
            params = {**design.params, **((boxes or {}).get((design.name, rep), {}))}
            n = design.n if stage == 1 else search.fine_n
            method = design.method if stage == 1 else "random"
            d = dataclasses.replace(design, params=params, n=n, method=method)
            u = design_uniforms(search, d, stage, rep)
            for i in range(n):
                values = {k: p.value(float(u[k][i])) for k, p in params.items()}
                points.append(Point(f"s{stage}-{design.name}-r{rep:02d}-p{i:03d}", stage,
                                    design.name, rep, i, values))
    return points


def format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    return str(v)


def point_levels(search: Search) -> dict[str, dict[str, Any]]:
    """The ``point`` factor's named levels: point name -> its settings."""
    return {p.name: dict(p.values) for p in search.points}


def to_doc(search: Search) -> dict:
    """The section as written, plus the points drawn and the fine stages' boxes."""
    doc = dict(search.source)
    doc["points"] = [{"name": p.name, "stage": p.stage, "design": p.design,
                      "repeat": p.repeat, "index": p.index,
                      "values": {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in p.values.items()}} for p in search.points]
    if search.boxes:
        doc["boxes_"] = list(search.boxes)
    return doc


def restrict(param: Param, values, margin: float) -> Param:
    """``param`` restricted to the box around ``values`` (see :data:`REFINE_RULE`)."""
    if param.scale == "choice":
        kept = tuple(v for v in param.values if v in set(values))
        return dataclasses.replace(param, values=kept)
    coords = [param.coord(v) for v in values]
    width = param.high - param.low
    low = max(param.low, min(coords) - margin * width)
    high = min(param.high, max(coords) + margin * width)
    if param.scale == "int":
        low, high = math.floor(low), math.ceil(high)
    return dataclasses.replace(param, low=float(low), high=float(high))


def box_doc(p: Param) -> dict:
    if p.scale == "choice":
        return {"scale": p.scale, "values": [list(v) if isinstance(v, tuple) else v
                                             for v in p.values]}
    return {"scale": p.scale, "low": p.low, "high": p.high}
