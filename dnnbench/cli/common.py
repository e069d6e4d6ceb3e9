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
        from dnnbench.data.user import is_user_dataset

        if not is_user_dataset(dataset):
            check_choice(dataset, DATASETS, "--dataset")
    try:
        return resolve_dataset(dataset, default, data_dir=data_dir,
                               on_fallback=lambda msg: warn(msg), **kwargs)
    except DataUnavailable as e:
        usage_error(str(e))
    except DataError as e:  # a user's own arrays that fail the checks are the user's input
        from dnnbench.data.user import is_user_dataset

        (usage_error if dataset is not None and is_user_dataset(dataset) else runtime_error)(
            str(e))
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
    """Run (or resume) the units and write the result files (:func:`dnnbench.run.session.run`),
    with a progress bar; its refusals are one line and exit 2, its failures exit 1, and an
    interruption (Ctrl-C, SIGTERM) prints one line and exits 130. Returns (runs, curves,
    paths)."""
    from dnnbench.cli.interrupt import announce
    from dnnbench.report.console import RichProgress
    from dnnbench.run import session

    check_writable_folder(out, "--out")
    try:
        runs, curves, paths = session.run(
            experiment, units, data, out, fresh=fresh, meta=meta, finalize=finalize,
            force=force, executor=executor, command=command_line(experiment),
            progress=RichProgress(title=experiment), warn=warn)
    except session.Refused as e:
        usage_error(str(e))
    except session.Failed as e:
        runtime_error(str(e))
    except session.Interrupted as e:
        announce(str(e))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    err_console().print("Wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)
    return runs, curves, paths


def renamed(value, old_value, new: str, old: str):
    """The value of an option renamed after the setting it sets: the old spelling ``old``
    still works, with a one-line note on stderr; both at once is a usage error."""
    if old_value is None or old_value == []:
        return value
    if value is not None and value != []:
        usage_error(f"give {new} only ({old} is its old spelling)")
    typer.echo(f"note: {old} is now {new}, the name of the setting it sets; {old} will go "
               "away", err=True)
    return old_value
