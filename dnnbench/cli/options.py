"""Options shared by the experiment commands, and the panels that group options in --help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.choices import DATASETS, FALLBACKS, listed

MODEL, TRAINING, DATA, OUTPUT = "Model", "Training", "Data", "Output"


def dataset(default: str):
    fallbacks = " if its files are present, else ".join(f for f in FALLBACKS if f != default)
    return Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=DATA, show_default=False,
        help=f"Data set: {listed(DATASETS)} (default: {default}; when its files are missing, "
             f"{fallbacks}, as stderr and the metadata say).")]


def seeds(default: int, quick: int, about: str):
    return Annotated[int | None, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Seeds per arm, {about} (default: {default}; {quick} with --quick).")]


def quick(about: str):
    return Annotated[bool, typer.Option(
        rich_help_panel=TRAINING, show_default=False,
        help=f"Smoke run of seconds: {about}. Options given explicitly win over these.")]


DataDir = Annotated[Path | None, typer.Option(
    rich_help_panel=DATA, show_default=False,
    help="Folder holding mnist/ and fashion-mnist/.")]
Out = Annotated[Path, typer.Option(rich_help_panel=OUTPUT, help="Folder for the result files.")]
Fresh = Annotated[bool, typer.Option(rich_help_panel=OUTPUT, show_default=False,
                                     help="Recompute everything instead of resuming.")]
Force = Annotated[bool, typer.Option(rich_help_panel=OUTPUT, show_default=False,
                                     help="Replace results in --out made with other settings.")]
Plot = Annotated[bool, typer.Option(rich_help_panel=OUTPUT, show_default=False,
                                    help="Also write figures next to the CSVs.")]


def pick(value, default, quick_default, quick: bool):
    """An option's value: as given, else its --quick default under --quick, else its default."""
    if value is not None:
        return value
    return quick_default if quick else default
