"""Command-line interface: Typer only. Parse -> look up -> call -> present; no JAX math here.

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(JAX, pandas) happen inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Annotated

import typer
import typer.core

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from dnnbench import __version__

# Typer's type labels -> the placeholders shown in help (flags show none)
METAVARS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "list[str]": "TEXT",
            "path": "PATH"}


def unwrap(text: str | None) -> str | None:
    """Join the hard-wrapped lines of each paragraph of a docstring: Rich wraps them again
    to the terminal (a line kept as written would be wrapped twice)."""
    if not text:
        return text
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n"))
                       for p in inspect.cleandoc(text).split("\n\n"))


def polish(command) -> None:
    """Help of ``command`` and its subcommands: paragraphs wrapped once, placeholders in the
    words of click (INTEGER, TEXT, PATH...) instead of Typer's <int>/<str>, none for flags."""
    command.help = unwrap(command.help)
    for param in command.params:
        _placeholder(param)
    help_option = command.get_help_option  # made at help time: polish it then
    command.get_help_option = lambda ctx: _placeholder(help_option(ctx))
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


def _placeholder(param):
    if isinstance(param, typer.core.TyperArgument):  # its name says it: no type column
        param.metavar = param.metavar or param.name.upper()
        param.display_type_rich = lambda ctx: None
    elif isinstance(param, typer.core.TyperOption) and param.metavar is None:
        label = "" if param.is_flag else param.display_type(None).strip("<>")
        param.metavar = METAVARS.get(label, label.upper())
    return param


def one_line(error: Exception) -> str:
    """A click usage error as one line: 'Error: MESSAGE (see: dnnbench COMMAND -h)'."""
    message = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)
    see = f" (see: {ctx.command_path} -h)" if ctx is not None else ""
    return f"Error: {message}{see}"


class Group(typer.core.TyperGroup):
    """The app: every usage error that Typer (or click) finds, e.g. ``--seeds abc``, is one
    line on stderr with exit code 2, as the commands' own checks (``common.usage_error``) are:
    no usage banner, no box. Works under ``typer.testing.CliRunner`` too (it calls ``main``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        polish(self)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.ClickException as e:
            if not standalone_mode:
                raise
            if type(e).__name__ == "NoArgsIsHelpError":  # the help is printed already
                typer.echo(e.format_message(), err=True, nl=False)
            else:
                typer.echo(one_line(e), err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)  # Typer returns the code of a typer.Exit


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dnnbench {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="dnnbench",
    cls=Group,
    help="Measure the classic experiments of training deep neural networks: BN vs depth, "
    "optimizers, transfer learning. Multi-seed, paired, with confidence intervals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _app(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", is_eager=True,
        callback=_version)] = False) -> None:
    pass


# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = ["run", "lr_find", "data", "depth_sweep", "optimizers", "transfer", "claims",
                   "check", "compare", "profiles", "report", "merge", "summary"]

for _mod in COMMAND_MODULES:
    importlib.import_module(f"dnnbench.cli.{_mod}").register(app)


BYTECODE_HINT = ("note: Python may not write bytecode here (PYTHONDONTWRITEBYTECODE) and JAX "
                 "has none compiled, so every start parses JAX, SciPy and pandas from source "
                 "(~6 s); run `uv sync --compile-bytecode` once")


def bytecode_hint() -> str | None:
    """The one-line hint when bytecode can neither be written nor found (JAX's __init__
    uncompiled: a fresh environment where PYTHONDONTWRITEBYTECODE is set), else None. Reads
    file names only: imports nothing."""
    import importlib.util

    if not sys.dont_write_bytecode:
        return None
    spec = importlib.util.find_spec("jax")
    if spec is None or not spec.origin:
        return None
    compiled = importlib.util.cache_from_source(spec.origin)
    return None if os.path.exists(compiled) else BYTECODE_HINT


def main() -> None:  # console-script entry point
    from dnnbench.cli.interrupt import run

    hint = bytecode_hint()
    if hint:
        typer.echo(hint, err=True)
    run(app)  # Ctrl-C: one "Interrupted" line, exit 130
