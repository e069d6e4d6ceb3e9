"""Resumable units of work: nothing finished is lost when a sweep is interrupted.

A *unit* is one compiled program's share of an experiment: the arms of one structure with all
their seeds as lanes (or a part of them, ``lanes_per_unit``), or, for transfer, the arms that
share one model A. It is keyed by everything that determines its numbers (:meth:`UnitStore.key_material`):

- the unit's ``key_parts`` (arm name, spec hash, seeds, labels, train keyword arguments),
  encoded by :func:`canonical` -- a stable encoding: arrays by content digest, functions by
  module, name, bytecode and closure, never by memory address (which differs per process);
- the dnnbench version and digests of the code that computes the numbers: the training core
  (:data:`CODE_PACKAGES`) and the modules of the unit's own functions (its experiment module,
  :func:`module_digests`), so results of edited code are never reused;
- the data set fingerprint (a digest of all its arrays);
- the versions of jax, jaxlib, flax and optax, the backend and device kind, x64 and XLA_FLAGS.

When a unit finishes, its DataFrames are saved atomically (temp file + rename) under
``<out>/.dnnbench-units/<experiment>-<dataset>/<key>.unit``, with a header that carries the
SHA-256 of the payload, and the payload the full key material. A file that is damaged, of
another format, or whose material differs from the unit's is recomputed, never trusted.
Re-running the same command skips finished units, so the final files equal those of an
uninterrupted run (timing columns aside: they measure the run that computed the unit).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import itertools
import json
import math
import threading
import types
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import dnnbench
from dnnbench import package_root
from dnnbench.files import atomic_write_bytes, remove_stale_temps, sha256_file
from dnnbench.results import frames as frames_codec
from dnnbench.train.programs import environment, source_digest

# (runs, curves), or (runs, curves, layers): the per-layer diagnostics of the units that make
# them (spec.diagnostics)
Frames = tuple[pd.DataFrame, ...]

UNIT_FORMAT = 3  # 3: tables as an .npz archive with a JSON manifest, no pickle
MAGIC = b"dnnbench-unit\n"
# The parts of the package whose code determines a unit's numbers (paths relative to it).
# (The data code is covered by the data set fingerprint; the experiment module of a unit by
# :func:`module_digests`.)
CODE_PACKAGES = ("train", "models", "registry.py", "spec.py", "run/units.py")


@dataclass(frozen=True)
class Unit:
    label: str  # shown in progress, e.g. "depth=5 bn=on"
    key_parts: tuple  # everything that determines the unit's numbers (besides version and data)
    compute: Callable[[], Frames]
    # Work that ``compute`` needs and that may run ahead, on another thread, while the previous
    # unit computes (compiling its program); ``compute`` must call it too (see ``Once``).
    prepare: Callable[[], object] | None = None
    # A small picklable recipe that rebuilds this unit in another process (an executor's
    # worker, see :mod:`dnnbench.run.executors`); None: it runs here only.
    remote: Callable[[], Unit] | None = None
    # Units with equal ``program`` run one compiled program (parts of one structure's lanes);
    # None: a program of its own.
    program: Hashable | None = None


class Once:
    """``fn()`` computed at most once, by whichever thread asks first (the others wait);
    its result, or its exception, is given to every caller until ``take`` hands it over."""

    def __init__(self, fn: Callable[[], object]):
        self._fn = fn
        self._lock = threading.Lock()
        self._result: tuple | None = None  # (value, error)

    def __call__(self):
        with self._lock:
            if self._result is None:
                try:
                    self._result = (self._fn(), None)
                except Exception as e:  # noqa: BLE001 - handed to the caller below
                    self._result = (None, e)
            value, error = self._result
        if error is not None:
            raise error
        return value

    def take(self):
        """The value, after which the cell forgets it (a later call computes it anew)."""
        try:
            return self()
        finally:
            with self._lock:
                self._result = None


# ------------------------------------------------------------------------ stable key encoding

def _array_digest(a) -> dict:
    a = np.ascontiguousarray(np.asarray(a))
    if a.dtype == object:
        return {"object_array": [canonical(x) for x in a.ravel().tolist()],
                "shape": list(a.shape)}
    return {"array": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": a.dtype.str,
            "shape": list(a.shape)}


def _float(x: float):
    return x if math.isfinite(x) else {"float": repr(x)}


def _function(f, seen) -> dict:
    code = getattr(f, "__code__", None)
    out = {"function": f"{getattr(f, '__module__', None)}.{getattr(f, '__qualname__', None)}"}
    if code is not None:
        out["code"] = hashlib.sha256(code.co_code).hexdigest()[:16]
        out["consts"] = [canonical(c, seen) for c in code.co_consts
                         if not isinstance(c, types.CodeType)]
    if getattr(f, "__defaults__", None):
        out["defaults"] = canonical(f.__defaults__, seen)
    if getattr(f, "__kwdefaults__", None):
        out["kwdefaults"] = canonical(f.__kwdefaults__, seen)
    if getattr(f, "__closure__", None):
        cells = []
        for cell in f.__closure__:
            try:
                cells.append(canonical(cell.cell_contents, seen))
            except ValueError:  # an empty cell
                cells.append("<empty>")
        out["closure"] = cells
    return out


def canonical(obj, _seen: frozenset = frozenset()):
    """A JSON-able encoding of ``obj`` that is equal across processes iff ``obj`` is.

    TypeError for an object with no stable encoding (its default repr carries a memory
    address): pass plain values, dataclasses, arrays or functions as unit key parts."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, enum.Enum):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj))
    if isinstance(obj, np.generic):
        return canonical(obj.item(), _seen)
    if id(obj) in _seen:
        return "<cycle>"
    seen = _seen | {id(obj)}
    if isinstance(obj, enum.Enum):
        return {"enum": f"{type(obj).__qualname__}.{obj.name}"}
    if isinstance(obj, bytes):
        return {"bytes": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, Path):
        return {"path": str(obj)}
    if isinstance(obj, (np.ndarray,)) or type(obj).__module__.startswith(("jax", "jaxlib")) and (
            hasattr(obj, "__array__") and hasattr(obj, "shape")):
        return _array_digest(obj)
    if isinstance(obj, Mapping):
        items = [[canonical(k, seen), canonical(v, seen)] for k, v in obj.items()]
        return {"mapping": sorted(items, key=lambda kv: json.dumps(kv, sort_keys=True))}
    if isinstance(obj, (set, frozenset)):
        return {"set": sorted((canonical(x, seen) for x in obj),
                              key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(obj, (list, tuple)):
        return [canonical(x, seen) for x in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"dataclass": f"{type(obj).__module__}.{type(obj).__qualname__}",
                "fields": {f.name: canonical(getattr(obj, f.name), seen)
                           for f in dataclasses.fields(obj)}}
    if isinstance(obj, functools.partial):
        return {"partial": canonical(obj.func, seen), "args": canonical(obj.args, seen),
                "keywords": canonical(obj.keywords, seen)}
    if isinstance(obj, types.MethodType):
        return {"method": _function(obj.__func__, seen), "self": canonical(obj.__self__, seen)}
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
        return _function(obj, seen)
    if isinstance(obj, pd.DataFrame):
        return {"dataframe": hashlib.sha256(
            pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes()
            + json.dumps([str(c) for c in obj.columns]).encode()).hexdigest()}
    text = repr(obj)
    if " at 0x" in text or " object at " in text:
        raise TypeError(f"unit key part of type {type(obj).__qualname__} has no stable "
                        "encoding (its repr holds a memory address); pass plain values, "
                        "dataclasses, arrays or functions instead")
    return {"repr": f"{type(obj).__module__}.{type(obj).__qualname__}", "value": text}


_file_digest = functools.cache(sha256_file)


def code_fingerprint() -> str:
    """Digest of the package's source files that compute every unit's numbers (CODE_PACKAGES)."""
    return source_digest(CODE_PACKAGES)


def _functions_of(f, depth: int = 3) -> list:
    """``f`` and the functions it closes over or takes as defaults (a few levels deep)."""
    found = [f]
    if depth == 0:
        return found
    f = getattr(f, "func", f)  # functools.partial
    values = [c.cell_contents for c in (getattr(f, "__closure__", None) or ())
              if _cell_filled(c)]
    values += list(getattr(f, "__defaults__", None) or ())
    for v in values:
        if isinstance(v, (types.FunctionType, functools.partial)):
            found += _functions_of(v, depth - 1)
    return found


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - probing an empty cell raises
    except ValueError:
        return False
    return True


def module_digests(compute: Callable) -> dict[str, str]:
    """Source digests of the dnnbench modules whose functions make up ``compute`` (e.g. the
    experiment module that turns a trained arm into its rows), so that editing them is never
    answered with results computed by the old code."""
    import sys

    root = package_root()
    out = {}
    for f in _functions_of(compute):
        name = getattr(getattr(f, "func", f), "__module__", None) or ""
        mod = sys.modules.get(name)
        path = getattr(mod, "__file__", None)
        if name.startswith("dnnbench.") and path and Path(path).resolve().is_relative_to(root):
            out[name] = _file_digest(Path(path).resolve())[:16]
    return out


def environment_key() -> dict:
    """Library versions, the device and, on a CPU, its model and vector instructions (XLA's
    CPU kernels differ between them, and so the last bits of float32 results): a change may
    change the numbers of a unit, so a unit stored on one kind of CPU is not reused on
    another."""
    from dnnbench.results.io import cpu_model

    env = environment()
    return env | {"cpu": cpu_model()} if env.get("backend") == "cpu" else env


# ------------------------------------------------------------------------------- the store

class UnitStore:
    """One file per finished unit under ``<out>/.dnnbench-units/<experiment>-<dataset>/``.

    ``on_damaged(message)`` is called for every unit file that exists but cannot be trusted
    (it is then recomputed)."""

    def __init__(self, out: str | Path, experiment: str, dataset_name: str, fingerprint: str,
                 on_damaged: Callable[[str], None] | None = None,
                 environment: dict | None = None):
        self.environment = environment  # the workers' (executors); None: this process's
        self.dir = Path(out) / ".dnnbench-units" / f"{experiment}-{dataset_name}"
        self.experiment = experiment
        self.dataset_name = dataset_name
        self.fingerprint = fingerprint
        self.on_damaged = on_damaged
        self.damaged: list[str] = []  # labels of the units whose files were not trusted
        self._keys: dict[int, tuple[Unit, str, str]] = {}

    def key_material(self, unit: Unit) -> str:
        """The canonical JSON of everything that determines the unit's numbers."""
        return self._entry(unit)[2]

    def _entry(self, unit: Unit) -> tuple[Unit, str, str]:
        hit = self._keys.get(id(unit))
        if hit is not None and hit[0] is unit:
            return hit
        material = json.dumps({
            "format": UNIT_FORMAT, "dnnbench": dnnbench.__version__, "code": code_fingerprint(),
            "modules": module_digests(unit.compute),
            "environment": self.environment or environment_key(), "experiment": self.experiment,
            "dataset": self.dataset_name, "fingerprint": self.fingerprint,
            "parts": canonical(unit.key_parts)}, sort_keys=True, separators=(",", ":"))
        entry = (unit, hashlib.sha256(material.encode()).hexdigest()[:24], material)
        self._keys[id(unit)] = entry
        return entry

    def key(self, unit: Unit) -> str:
        return self._entry(unit)[1]

    def path(self, unit: Unit) -> Path:
        return self.dir / f"{self.key(unit)}.unit"

    def _damaged(self, unit: Unit, path: Path, why: str) -> None:
        self.damaged.append(unit.label)
        if self.on_damaged is not None:
            self.on_damaged(f"unit file {path} ({unit.label}) {why}; recomputing it")

    def load(self, unit: Unit, *, report: bool = True) -> Frames | None:
        """The unit's saved frames, or None if absent or not trustworthy (then recomputed)."""
        p = self.path(unit)
        try:
            blob = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            if report:
                self._damaged(unit, p, f"cannot be read ({e.strerror})")
            return None
        why = None
        head, digest, payload = blob[:len(MAGIC)], blob[len(MAGIC):len(MAGIC) + 32], \
            blob[len(MAGIC) + 32:]
        if head != MAGIC or len(digest) != 32:
            why = "is not a dnnbench unit file"
        elif hashlib.sha256(payload).digest() != digest:
            why = "is damaged (checksum mismatch)"
        else:
            try:  # plain arrays and JSON: loading cannot run code (dnnbench.results.frames)
                header, tables = frames_codec.decode(payload)
                runs, curves = tables["runs"], tables["curves"]
                extra = tuple(tables[f"extra{i}"] for i in range(int(header.get("extra", 0))))
                if header.get("material") != self.key_material(unit):
                    why = "belongs to another unit"
            except (ValueError, KeyError, TypeError):
                why = "does not hold result tables"
        if why is not None:
            if report:
                self._damaged(unit, p, why)
            return None
        return (runs, curves, *extra)

    def save(self, unit: Unit, frames: Frames) -> None:
        tables = {"runs": frames[0], "curves": frames[1],
                  **{f"extra{i}": f for i, f in enumerate(frames[2:])}}
        payload = frames_codec.encode(tables, {"material": self.key_material(unit),
                                               "label": unit.label, "extra": len(frames) - 2})
        atomic_write_bytes(self.path(unit), MAGIC + hashlib.sha256(payload).digest() + payload)

    def has(self, unit: Unit) -> bool:
        """Whether a trustworthy saved copy of ``unit`` exists."""
        return self.load(unit, report=False) is not None

    def discard(self, units: Sequence[Unit]) -> None:
        """Delete the saved files of ``units`` (``--fresh``)."""
        for u in units:
            self.path(u).unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete every unit file of this experiment and data set."""
        for p in (*self.dir.glob("*.unit"), *self.dir.glob("*.pkl")):  # (.pkl: format 2)
            p.unlink()


class Progress:
    """What the runner tells its presenter; the CLI passes a Rich implementation."""

    def start(self, total: int, done: int) -> None: ...
    def unit_started(self, label: str) -> None: ...
    def unit_finished(self, label: str, cached: bool) -> None: ...
    # inside a unit that trains locally: after each call of its arm's program (about 4 s;
    # see dnnbench.train.arm.reporting_progress), the evaluation periods done of its budget
    def inside_unit(self, label: str, evaluations: int, of: int) -> None: ...
    def stop(self) -> None: ...


def run_units(units: Sequence[Unit], store: UnitStore, *, fresh: bool = False,
              progress: Progress | None = None,
              stop_requested: Callable[[], bool] | None = None, executor=None) -> Frames:
    """Compute (or load) every unit in order and concatenate their frames in that order
    (runs, curves, and layers when any unit has diagnostics).

    Each unit is saved as soon as it finishes; ``fresh`` deletes the saved copies of these
    units first, so everything is recomputed. ``stop_requested()`` is checked before each unit
    and at the end (KeyboardInterrupt when true): a signal handler that raises
    KeyboardInterrupt can see it swallowed (Python prints and ignores an exception raised
    while a finalizer runs), and its flag then still stops the run at the next unit boundary.
    An ``executor`` (:mod:`dnnbench.run.executors`) computes the units to do
    elsewhere (each saved as it arrives); the order of the tables is the same."""
    from dnnbench.train.arm import reporting_progress  # (flax: only where units train)

    progress = progress or Progress()
    stop_requested = stop_requested or (lambda: False)
    remove_stale_temps(store.dir)
    if fresh:
        store.discard(units)
    loaded = [store.load(u) for u in units]
    progress.start(len(units), sum(f is not None for f in loaded))
    todo = [u for u, f in zip(units, loaded, strict=True) if f is None]
    nxt = {id(u): v for u, v in itertools.pairwise(todo)}  # the unit computed after u
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dnnbench-prepare")
    frames: list[Frames] = []
    try:
        remote = {} if executor is None or not todo else executor.compute(
            todo, store, progress, stop_requested)
        for unit, cached in zip(units, loaded, strict=True):
            if stop_requested():
                raise KeyboardInterrupt
            cached = remote.get(id(unit), cached)
            if cached is None:
                progress.unit_started(unit.label)
                if unit.prepare is not None:
                    unit.prepare()  # (done already if it was prepared ahead)
                following = nxt.get(id(unit))
                if following is not None and following.prepare is not None:
                    ahead.submit(following.prepare)  # compile it while this unit trains
                with reporting_progress(functools.partial(progress.inside_unit, unit.label)):
                    cached = unit.compute()
                store.save(unit, cached)
                progress.unit_finished(unit.label, cached=False)
            frames.append(cached)
        if stop_requested():
            raise KeyboardInterrupt
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)
        progress.stop()
    runs = pd.concat([f[0] for f in frames], ignore_index=True)
    curves = pd.concat([f[1] for f in frames], ignore_index=True)
    layers = [f[2] for f in frames if len(f) > 2]
    return (runs, curves) + ((pd.concat(layers, ignore_index=True),) if layers else ())


def count_saved(units: Sequence[Unit], store: UnitStore) -> int:
    """How many of ``units`` have a trustworthy saved copy."""
    return sum(store.has(u) for u in units)
