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
        "--quick", rich_help_panel=TRAINING, show_default=False,
        help=f"Smoke run of seconds: {about}. Options given explicitly win over these.")]


DataDir = Annotated[Path | None, typer.Option(
    rich_help_panel=DATA, show_default=False,
    help="Folder holding mnist/ and fashion-mnist/.")]
Out = Annotated[Path, typer.Option(rich_help_panel=OUTPUT, help="Folder for the result files.")]
Fresh = Annotated[bool, typer.Option("--fresh", rich_help_panel=OUTPUT, show_default=False,
                                     help="Recompute everything instead of resuming.")]
Force = Annotated[bool, typer.Option("--force", rich_help_panel=OUTPUT, show_default=False,
                                     help="Replace results in --out made with other settings.")]
Plot = Annotated[bool, typer.Option("--plot", rich_help_panel=OUTPUT, show_default=False,
                                    help="Also write figures next to the CSVs.")]


def file_default(doc: dict, key: str) -> str:
    """The help's words for a preset option's default: the packaged file's ``[base]`` value of
    ``key`` (and its ``[quick]`` one), e.g. "default: 0.01; 100 with --quick, the bn-depth
    file's"."""
    quick = doc.get("quick", {}).get("set", {}).get(key)
    return (f"default: {doc['base'][key]:g}" + (f"; {quick:g} with --quick" if quick else "")
            + f", the {doc['name']} file's")


def pick(value, default, quick_default, quick: bool):
    """An option's value: as given, else its --quick default under --quick, else its default."""
    if value is not None:
        return value
    return quick_default if quick else default


# ------------------------------------------------- options of the commands that take a file

ExperimentFile = Annotated[str, typer.Argument(
    metavar="NAME_OR_FILE", show_default=False,
    help="A packaged experiment (see `dnnbench list`) or the path of an experiment file "
         "(.toml).")]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", rich_help_panel=TRAINING, show_default=False,
    help="Override a setting (repeatable): a base setting (--set max_steps=500), or a "
         "factor's levels (--set learning_rate=0.001,0.01); a list for a base setting makes "
         "it a factor.")]
FileSeeds = Annotated[int | None, typer.Option(
    rich_help_panel=TRAINING, show_default=False,
    help="Paired seeds per arm (default: the file's; its quick table's with --quick).")]
FileQuick = Annotated[bool, typer.Option(
    "--quick", rich_help_panel=TRAINING, show_default=False,
    help="The file's smoke variant (its quick table: fewer seeds and steps, a data subset). "
         "Options given explicitly win.")]
FileDataset = Annotated[str | None, typer.Option(
    metavar="NAME", rich_help_panel=DATA, show_default=False,
    help="Data set (default: the file's; mnist falls back to digits offline).")]
