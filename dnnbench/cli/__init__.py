"""Command-line interface: Typer only. Parse -> look up -> call -> present; no JAX math here.

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(JAX, pandas) happen inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="dnnbench",
    help="Measure the classic experiments of training deep neural networks: BN vs depth, "
    "optimizers, transfer learning. Multi-seed, paired, with confidence intervals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = ["data", "depth_sweep", "optimizers", "transfer", "claims", "check", "compare",
                   "report"]

for _mod in COMMAND_MODULES:
    importlib.import_module(f"dnnbench.cli.{_mod}").register(app)


def main() -> None:  # console-script entry point
    app()
