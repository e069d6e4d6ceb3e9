"""Helpers shared by the command modules: one-line errors with the right exit code, consoles."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def err_console() -> Console:
    from dnnbench.report import stderr_console

    return stderr_console()


def out_console() -> Console:
    """Tables on stdout; wide enough for them when stdout is not a terminal (pipes, CI logs)."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=160)


def usage_error(message: str) -> NoReturn:
    """Bad input: one clear line on stderr, exit code 2, no traceback."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def runtime_error(message: str) -> NoReturn:
    """A run that failed for a runtime reason: one line on stderr, exit code 1."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_RUNTIME)


def warn(message: str) -> None:
    err_console().print(f"[bold yellow]Warning:[/] {message}", highlight=False)


def command_line(command: str = "") -> str:
    """The command as the user typed it; when called in-process (tests), ``dnnbench COMMAND``."""
    import os
    import shlex

    path = sys.argv[0] if sys.argv else ""
    if os.path.basename(path) == "dnnbench" or path.endswith(
            os.path.join("dnnbench", "__main__.py")):  # the console script or python -m dnnbench
        return shlex.join(["dnnbench", *sys.argv[1:]])
    return f"dnnbench {command} (in-process)".replace("  ", " ")


# ---------------------------------------------------------------- shared experiment plumbing

def parse_int_list(text: str, option: str, minimum: int = 1, limit: str = "int32",
                   unique: bool = True) -> tuple[int, ...]:
    """'1-7' or '1,3,5,7' (or a mix, '1-3,5') -> (1, ...); bad input is a usage error: an empty
    item, a value below ``minimum`` or past the ``limit`` kind (checked before a range is
    expanded), and (with ``unique``) a value given twice."""
    from dnnbench.limits import check

    values: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            usage_error(f"{option}: empty item in {text!r} (give a list like 1,3,5 or a range "
                        "like 1-7)")
        try:
            lo, hi = (part.split("-", 1) if "-" in part[1:] else (part, part))
            lo, hi = int(lo), int(hi)
        except ValueError:
            usage_error(f"{option}: {part!r} is not a number or a range like 1-7")
        if lo > hi:
            usage_error(f"{option}: the range {part!r} is empty (write LOW-HIGH)")
        if lo < minimum:
            usage_error(f"{option}: values must be >= {minimum}, got {lo}")
        with within_limits():
            check(limit, hi, option)
        values.extend(range(lo, hi + 1))
    if unique:
        check_unique(values, option)
    return tuple(values)


def check_unique(values, option: str) -> None:
    """A list option must not name a value twice (it would run, and write, the arm twice)."""
    seen = set()
    for v in values:
        if v in seen:
            usage_error(f"{option}: {v} is given more than once")
        seen.add(v)


@contextmanager
def within_limits():
    """A :class:`dnnbench.limits.LimitError` raised inside becomes a usage error (exit 2)."""
    from dnnbench.limits import LimitError

    try:
        yield
    except LimitError as e:
        usage_error(str(e))


def check_positive(value: float, option: str, *, integer: bool = False,
                   limit: str = "int32") -> None:
    """A positive number the engine can represent: an int32 (or the ``limit`` kind) for an
    integer, a float32 otherwise."""
    import math

    from dnnbench.limits import check, check_float32

    if integer and value <= 0 or not integer and not (math.isfinite(value) and value > 0):
        kind = "a positive integer" if integer else "a positive finite number"
        usage_error(f"{option} must be {kind}, got {value}")
    with within_limits():
        if integer:
            check(limit, value, option)
        else:
            check_float32(value, option)


def check_target(value: float, option: str = "--target") -> None:
    if not (0 < value <= 1):
        usage_error(f"{option} must be in (0, 1], got {value}")


def check_choice(value: str, table, option: str) -> None:
    if value not in table:
        usage_error(f"{option}: unknown value {value!r}; choose from: {', '.join(table)}")


def load_data(dataset: str | None, default: str, data_dir, **kwargs):
    """The chosen data set, or the default with the offline fallback (warning on stderr).

    Exit 2 when an explicitly requested data set cannot be had; exit 1 for a corrupt file."""
    from dnnbench.data import DataError, DataUnavailable, resolve_dataset

    if dataset is not None:
        from dnnbench.data import DATASETS

        check_choice(dataset, DATASETS, "--dataset")
    try:
        return resolve_dataset(dataset, default, data_dir=data_dir,
                               on_fallback=lambda msg: warn(msg), **kwargs)
    except DataUnavailable as e:
        usage_error(str(e))
    except DataError as e:
        runtime_error(str(e))
    except OSError as e:  # no permission, a folder where a file should be, ...
        runtime_error(f"cannot read the data set: {e.filename or ''}{': ' if e.filename else ''}"
                      f"{e.strerror or e}")


def file_seeds(exp, seeds: int | None, quick: bool) -> int:
    """``--seeds``, else the experiment file's seeds (its quick table's with ``--quick``);
    exit 2 outside 1 .. the seeds limit."""
    n = seeds if seeds is not None else (exp.quick["seeds"] if quick else exp.seeds)
    check_positive(n, "--seeds", integer=True, limit="seeds")
    return n


def file_data(exp, dataset: str | None, data_dir, quick: bool):
    """The data set of an experiment file (``--dataset`` wins), its subset with ``--quick``
    unless the file's quick table says ``subset = false``."""
    data = load_data(dataset, exp.dataset, data_dir)
    return quick_subset(data) if quick and exp.quick.get("subset", True) else data


def quick_subset(data, n_train: int = 4000, n_eval: int = 1000):
    """A smaller copy of ``data`` for --quick smoke runs (first n examples of each split)."""
    import dataclasses

    return dataclasses.replace(
        data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train],
        x_val=data.x_val[:n_eval], y_val=data.y_val[:n_eval], x_test=data.x_test[:n_eval],
        y_test=data.y_test[:n_eval], source=f"{data.source} (--quick subset)")


def check_writable_folder(path, option: str) -> None:
    """Exit 2 (one line) unless files can be written into folder ``path``: before any work."""
    from dnnbench.files import folder_problem

    problem = folder_problem(path)
    if problem is not None:
        usage_error(f"{option} {path}: {problem}")


def check_writable_file(path, option: str) -> None:
    """Exit 2 (one line) unless file ``path`` can be written: before any work."""
    from dnnbench.files import file_problem

    problem = file_problem(path)
    if problem is not None:
        usage_error(f"{option} {path}: {problem}")


def run_experiment(experiment: str, units, data, out, *, fresh: bool, meta: dict,
                   finalize=None, force: bool = False, executor=None):
    """Run (or resume) the units, write the three result files; Ctrl-C/SIGTERM -> exit 130.

    ``meta`` holds the run's settings (configuration, --quick, ...): results of ``out`` made
    with other settings are not replaced unless ``force`` (exit 2), and the folder is locked
    for the run (a second run into it: exit 2). A write failure (disk full) exits 1; the
    finished units stay saved. ``finalize(runs, curves) -> (runs, curves, extra_meta)``, if
    given, turns the units' frames into the written ones (e.g. columns that depend on all
    units). ``executor`` (:mod:`dnnbench.experiments.executors`; None: here) computes the
    units elsewhere; it is not a setting (the results are the same). Returns (runs, curves,
    paths)."""
    from dnnbench.report.io import result_paths
    from dnnbench.runfolder import FolderInUse, locked, replaced_run, run_settings

    check_writable_folder(out, "--out")
    settings = run_settings(experiment, data.fingerprint, meta)
    try:
        with locked(out, command_line(experiment)):
            other = replaced_run(result_paths(out, experiment, data.name)["meta"], settings)
            if other is not None and not force:
                usage_error(f"{out} holds {experiment} results on {data.name} made with other "
                            f"settings, by {other}; choose another --out, or replace them "
                            "with --force")
            return _run_locked(experiment, units, data, out, fresh=fresh, meta=meta,
                               settings=settings, finalize=finalize, executor=executor)
    except FolderInUse as e:
        usage_error(str(e))


def _run_locked(experiment: str, units, data, out, *, fresh: bool, meta: dict, settings: dict,
                finalize, executor=None):
    import signal
    import threading
    import time

    from dnnbench.cli.interrupt import announce
    from dnnbench.experiments.executors import ExecutionFailed
    from dnnbench.experiments.units import UnitStore, count_saved, run_units
    from dnnbench.report.console import RichProgress
    from dnnbench.report.io import now, write_results
    from dnnbench.runfolder import RunRecord, settings_digest
    from dnnbench.train.arm import enable_compile_cache

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
        started, resumed = record.begin(now(), fresh=fresh)
        runs, curves, *layers = run_units(units, store, fresh=fresh,
                                          progress=RichProgress(title=experiment),
                                          stop_requested=lambda: bool(requested),
                                          executor=executor)
        stage = "results"
        if finalize is not None:
            runs, curves, extra_meta = finalize(runs, curves)
            meta = {**meta, **extra_meta}
        full_meta = {"command": command_line(experiment), "started": started,
                     "resumed": resumed, "finished": now(), "settings_digest": digest,
                     "executor": getattr(executor, "name", "local"), **meta}
        if requested:
            raise KeyboardInterrupt
        paths = write_results(out, experiment, data, runs, curves, full_meta,
                              layers[0] if layers else None)
        record.finish()
    except BaseException as e:
        # A signal can also surface as another exception (raised inside a library callback).
        interrupted = isinstance(e, KeyboardInterrupt) or bool(requested)
        if not (interrupted or isinstance(e, (OSError, ExecutionFailed))):
            raise
        restore()  # a second signal is handled as usual while the summary is printed
        saved = f"{count_saved(units, store)}/{len(units)} units are saved in {store.dir}"
        if isinstance(e, ExecutionFailed) and not interrupted:
            runtime_error(f"{e}; {saved}")
        if not interrupted:  # a write failure: disk full, read-only file system, ...
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            runtime_error(f"writing to {out} failed: {e.strerror or e}{where}; {saved}")
        where = ("" if stage == "units" else
                 " (all units done, but the result files were not all written)")
        resume = " ".join(t for t in command_line(experiment).split(" ") if t != "--fresh")
        announce(f"Interrupted{where}: {saved}; "
                 f"to resume, run the same command again without --fresh: {resume}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        restore()
    err_console().print("Wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)
    return runs, curves, paths
