"""The run session: run (or resume) an experiment's units into a folder and write its result
files, with the folder locked, results made with other settings never silently replaced,
Ctrl-C and SIGTERM turned into a clean stop that keeps every finished unit, and a write
failure reported with what is saved. The command line presents what it raises
(:class:`Refused`: exit 2, :class:`Failed`: exit 1, :class:`Interrupted`: exit 130).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable

from dnnbench.results import io as result_io
from dnnbench.results.runfolder import (
    DamagedMetadata,
    FolderInUse,
    LockFailed,
    RunRecord,
    locked,
    replaced_run,
    run_settings,
    settings_digest,
)
from dnnbench.run.executors import ExecutionFailed
from dnnbench.run.units import UnitStore, code_fingerprint, count_saved, run_units
from dnnbench.train.arm import enable_compile_cache


class Refused(Exception):
    """The run cannot start: the folder is in use or holds results of other settings."""


class Failed(Exception):
    """The run failed for a runtime reason (a unit's execution, a write); what is saved is
    said."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the message says what is saved and how to resume."""


def run(experiment: str, units, data, out, *, fresh: bool, meta: dict, finalize=None,
        force: bool = False, executor=None, command: str = "", progress=None,
        warn: Callable[[str], None] = lambda message: None):
    """Run (or resume) the units, write the three result files; returns (runs, curves, paths).

    ``meta`` holds the run's settings (configuration, --quick, ...): results of ``out`` made
    with other settings are not replaced unless ``force`` (:class:`Refused`), and the folder is
    locked for the run (a second run into it: :class:`Refused`). A write failure (disk full)
    is :class:`Failed`; the finished units stay saved. ``finalize(runs, curves) -> (runs,
    curves, extra_meta[, tables])``, if given, turns the units' frames into the written ones (e.g.
    columns that depend on all units; ``tables``: more files by kind, e.g. the interleaved
    ``timing``). ``executor`` (:mod:`dnnbench.run.executors`; None:
    here) computes the units elsewhere; it is not a setting (the results are the same).
    ``command`` is the command line recorded in the metadata, ``progress`` a
    :class:`dnnbench.run.units.Progress`, ``warn`` receives warnings (one line each)."""
    settings = run_settings(experiment, data.fingerprint, meta)
    try:
        with locked(out, command or experiment):
            meta_file = result_io.result_paths(out, experiment, data.name)["meta"]
            try:
                other = replaced_run(meta_file, settings)
            except DamagedMetadata as e:
                if not force:
                    raise Refused(f"the metadata file of the {experiment} results on "
                                  f"{data.name} in {out} {e} ({meta_file}); choose another "
                                  "--out, or replace them with --force") from None
                other = None
            if other is not None and not force:
                raise Refused(f"{out} holds {experiment} results on {data.name} made with "
                              f"other settings, by {other}; choose another --out, or replace "
                              "them with --force")
            return _run_locked(experiment, units, data, out, fresh=fresh, meta=meta,
                               settings=settings, finalize=finalize, executor=executor,
                               command=command, progress=progress, warn=warn)
    except FolderInUse as e:
        raise Refused(str(e)) from None
    except LockFailed as e:
        raise Failed(str(e)) from None


def _run_locked(experiment: str, units, data, out, *, fresh: bool, meta: dict, settings: dict,
                finalize, executor, command: str, progress, warn):
    enable_compile_cache(on_warning=warn)
    store = UnitStore(out, experiment, data.name, data.fingerprint, on_damaged=warn,
                      environment=getattr(executor, "environment", None))
    digest = settings_digest(settings)
    record = RunRecord(store.dir, digest)

    requested: list[int] = []  # signals received (the flag survives a swallowed exception)

    def on_signal(signum, frame):
        requested.append(signum)
        raise KeyboardInterrupt

    rearm, done = threading.Event(), threading.Event()

    def rearmer():  # sends a swallowed signal again, once outside the code that swallowed it
        while rearm.wait() and not done.is_set():
            rearm.clear()
            time.sleep(0.02)
            if not done.is_set():
                signal.pthread_kill(threading.main_thread().ident, requested[-1])

    def unraisable(info):
        """Python prints and ignores an exception raised where it cannot propagate (a gc
        callback of JAX, a finalizer): for our KeyboardInterrupt, print nothing and have the
        signal sent again (a few times; the flag also stops the run at the next unit)."""
        if not (isinstance(info.exc_value, KeyboardInterrupt) and requested):
            previous_hook(info)
        elif len(requested) < 5:
            rearm.set()

    main_thread = threading.current_thread() is threading.main_thread()
    caught = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, on_signal) for s in caught} if main_thread else {}
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    if main_thread:
        threading.Thread(target=rearmer, name="dnnbench-rearm", daemon=True).start()

    def restore():
        done.set()
        rearm.set()
        sys.unraisablehook = previous_hook
        for s, handler in previous.items():  # None: installed outside Python -> the default
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

    stage = "units"
    try:
        started, resumed = record.begin(result_io.now(), fresh=fresh)
        runs, curves, *layers = run_units(units, store, fresh=fresh,
                                          progress=progress,
                                          stop_requested=lambda: bool(requested),
                                          executor=executor)
        stage = "results"
        tables = {}
        if finalize is not None:  # (runs, curves, extra meta[, extra tables by kind])
            runs, curves, extra_meta, *more = finalize(runs, curves)
            meta = {**meta, **extra_meta}
            tables = more[0] if more else {}
        full_meta = {"command": command, "code": code_fingerprint(), "started": started,
                     "resumed": resumed, "finished": result_io.now(), "settings_digest": digest,
                     "executor": getattr(executor, "name", "local"), **meta}
        if requested:
            raise KeyboardInterrupt
        paths = result_io.write_results(out, experiment, data, runs, curves, full_meta,
                                        layers[0] if layers else None, tables)
        record.finish()
    except BaseException as e:
        # A signal can also surface as another exception (raised inside a library callback).
        interrupted = isinstance(e, KeyboardInterrupt) or bool(requested)
        if not (interrupted or isinstance(e, (OSError, ExecutionFailed))):
            raise
        restore()  # a second signal is handled as usual while the summary is printed
        saved = f"{count_saved(units, store)}/{len(units)} units are saved in {store.dir}"
        if isinstance(e, ExecutionFailed) and not interrupted:
            raise Failed(f"{e}; {saved}") from None
        if not interrupted:  # a write failure: disk full, read-only file system, ...
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise Failed(f"writing to {out} failed: {e.strerror or e}{where}; {saved}") from None
        where = ("" if stage == "units" else
                 " (all units done, but the result files were not all written)")
        resume = " ".join(t for t in command.split(" ") if t != "--fresh")
        raise Interrupted(f"Interrupted{where}: {saved}; "
                          f"to resume, run the same command again without --fresh: {resume}"
                          ) from None
    finally:
        restore()
    return runs, curves, paths
