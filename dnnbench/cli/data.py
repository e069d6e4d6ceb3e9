"""``dnnbench data``: list, verify, fetch and inspect the data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.choices import DATASETS, FILE_DATASETS, listed
from dnnbench.cli.common import out_console, runtime_error, usage_error

NAMES_HELP = listed(DATASETS)
FILE_SETS_HELP = listed(FILE_DATASETS)

data_app = typer.Typer(help="List, verify, fetch and inspect the data sets.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Folder holding mnist/ and fashion-mnist/ subfolders (or the four IDX "
    "files directly); searched before $DNNBENCH_DATA_DIR and the user cache.",
    show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _check_name(name: str, allowed) -> None:
    if name not in allowed:
        usage_error(f"unknown data set '{name}'; choose from {', '.join(allowed)}")


@data_app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """Table of the data sets: input shape, classes, and where their files are (or missing)."""
    from rich.markup import escape
    from rich.table import Table

    from dnnbench.data import DATASETS, dataset_status

    table = Table(title="Data sets")
    for col in ("name", "shape", "classes"):
        table.add_column(col, no_wrap=True)
    table.add_column("status", overflow="fold")
    for name in DATASETS:
        s = dataset_status(name, data_dir)
        table.add_row(s["name"], s["shape"], str(s["classes"]), escape(s["status"]))
    out_console().print(table)


@data_app.command()
def verify(
    name: Annotated[str | None, typer.Argument(
        help=f"Data set to check ({FILE_SETS_HELP}); default: every one whose files are present.",
        show_default=False)] = None,
    data_dir: DataDir = None,
) -> None:
    """Check the SHA-256 of every file against the canonical value; exit 1 on any mismatch."""
    from rich.markup import escape
    from rich.table import Table

    from dnnbench.data import DATASETS, mnist

    if name is not None:
        _check_name(name, DATASETS)
        if name not in mnist.NAMES:
            usage_error(f"'{name}' has no files to verify; verify applies to {FILE_SETS_HELP}")
    names = [name] if name else [n for n in mnist.NAMES if mnist.locate(n, data_dir)[0]]
    if not names:
        hint = f" --data-dir {data_dir}" if data_dir else ""
        typer.echo("Nothing to verify: no MNIST-family files found "
                   f"(see `dnnbench data list{hint}`).", err=True)
        return
    failures = []
    for n in names:
        folder, _, looked = mnist.locate(n, data_dir)
        if folder is None:
            usage_error(mnist.unavailable_message(n, looked))
        try:
            rows = mnist.file_checks(n, folder)
        except OSError as e:  # a file that cannot be read (permissions, a folder, I/O error)
            runtime_error(f"{n}: cannot read {e.filename or folder}: {e.strerror or e}")
        table = Table(title=escape(f"{n}: {folder}"), caption="SHA-256, first 12 hex digits")
        table.add_column("file", no_wrap=True)
        for col in ("expected", "found", "ok"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["file"], _short(r["expected"]), _short(r["found"]),
                          "[green]ok[/]" if r["ok"] else "[bold red]MISMATCH[/]")
        out_console().print(table)
        bad = [r["file"] for r in rows if not r["ok"]]
        if bad:
            msg = f"{n}: {len(bad)} of {len(rows)} files in {folder} failed verification"
            failures.append((n, f"{msg} ({', '.join(bad)})"))
    if failures:
        fetch_cmds = " / ".join(f"`dnnbench data fetch {n}`" for n, _ in failures)
        runtime_error("; ".join(msg for _, msg in failures) + ". Expected and found SHA-256 are in "
                      f"the table above. Delete the bad files and run {fetch_cmds}, or point "
                      "--data-dir / DNNBENCH_DATA_DIR at the original files.")


def _short(digest: str) -> str:
    return digest[:12] + "…" if len(digest) == 64 else digest


@data_app.command()
def fetch(
    name: Annotated[str, typer.Argument(help=f"Data set to download ({FILE_SETS_HELP}).",
                                        show_default=False)],
) -> None:
    """Download a data set's files into the user cache ($XDG_CACHE_HOME/dnnbench), hash-checked."""
    from dnnbench.data import DATASETS, DataError, mnist

    _check_name(name, DATASETS)
    if name not in mnist.NAMES:
        typer.echo(f"'{name}' needs no download (it is "
                   f"{'bundled with scikit-learn' if name == 'digits' else 'generated'}).")
        return
    try:
        dest = mnist.fetch(name)
    except DataError as e:
        runtime_error(str(e))
    typer.echo(f"{name}: {len(mnist.FILES)} files verified in {dest}")


@data_app.command()
def info(
    name: Annotated[str, typer.Argument(help=f"Data set to describe ({NAMES_HELP}).",
                                        show_default=False)],
    data_dir: DataDir = None,
    download: Annotated[bool, typer.Option(
        help="Download missing MNIST-family files into the user cache first.")] = False,
) -> None:
    """Examples per class in each split (train / val / test), and where the data came from."""
    from rich.markup import escape
    from rich.table import Table

    from dnnbench.data import DATASETS, DataError, DataUnavailable, load_dataset

    _check_name(name, DATASETS)
    try:
        ds = load_dataset(name, data_dir=data_dir, download=download)
    except DataUnavailable as e:
        usage_error(str(e))
    except DataError as e:
        runtime_error(str(e))
    splits = [ds.split(s)[1] for s in ("train", "val", "test")]
    counts = [[int((y == c).sum()) for y in splits] for c in range(ds.n_classes)]
    table = Table(title=escape(f"{ds.name}: {ds.n_features} features, {ds.n_classes} classes"))
    table.add_column("class")
    table.add_column("name")
    for s in ("train", "val", "test"):
        table.add_column(s, justify="right")
    names = ds.class_names or tuple(str(c) for c in range(ds.n_classes))
    for c, row in enumerate(counts):
        table.add_row(str(c), escape(names[c]), *map(str, row))
    table.add_row("all", "", *(str(len(y)) for y in splits), style="bold")
    console = out_console()
    console.print(table)
    console.print(f"source: {escape(ds.source)}", highlight=False)
