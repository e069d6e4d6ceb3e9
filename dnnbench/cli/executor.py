"""The executor options of the experiment commands: where their units are computed."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import quick_subset, usage_error
from dnnbench.limits import LIMITS

PANEL = "Execution"

Executor = Annotated[str, typer.Option(
    metavar="local|dask|slurm", rich_help_panel=PANEL,
    help="Where the units (one compiled program and its lanes each) are computed: here; on "
         "a Dask cluster (--scheduler, else a local cluster of worker processes; needs "
         "`uv sync --extra dask`); or as one submitit job array (SLURM where `srun` exists, "
         "else local processes; needs `uv sync --extra slurm`). Results are the same.")]
Scheduler = Annotated[str | None, typer.Option(
    metavar="ADDRESS", rich_help_panel=PANEL, show_default=False,
    help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: $DNNBENCH_DASK_SCHEDULER;"
         " none: a local cluster).")]
Workers = Annotated[int | None, typer.Option(
    min=1, max=LIMITS["workers"][0], rich_help_panel=PANEL, show_default=False,
    help="Worker processes of the local Dask cluster (default: one per CPU core; at most "
         f"{LIMITS['workers'][0]}: {LIMITS['workers'][1]}).")]
LanesPerUnit = Annotated[int | None, typer.Option(
    min=1, metavar="N", rich_help_panel=PANEL, show_default=False,
    help="Cut each program into units of at most N lanes (whole arms: an arm's seeds stay "
         "together), so that a search over numbers, one program, spreads over several workers;"
         " equal parts share one compiled program. Default: one unit per program.")]
SlurmParam = Annotated[list[str] | None, typer.Option(
    "--slurm-param", metavar="KEY=VALUE", rich_help_panel=PANEL, show_default=False,
    help="A submitit parameter of the job array (repeatable), e.g. timeout_min=120, "
         "gpus_per_node=1, slurm_partition=gpu, slurm_array_parallelism=64.")]


@dataclasses.dataclass(frozen=True)
class WorkerData:
    """Loads, in a worker's process, the data set the client used (picklable: names only),
    and checks that it is the same data (its fingerprint)."""

    name: str
    data_dir: str | None
    quick: bool
    fingerprint: str

    def __call__(self):
        from dnnbench.data import resolve_dataset

        if _loaded and _loaded[0] == self:  # a worker's next unit of the same run
            return _loaded[1]
        data = resolve_dataset(self.name, self.name, data_dir=self.data_dir)
        if self.quick:
            data = quick_subset(data)
        if data.fingerprint != self.fingerprint:
            import socket

            raise RuntimeError(f"the data set {self.name} on worker {socket.gethostname()} "
                               f"differs from the client's (fingerprint {data.fingerprint}, "
                               f"expected {self.fingerprint}); give the workers the same files")
        _loaded[:] = [self, data]
        return data


_loaded: list = []  # [WorkerData, its data set]: the last one loaded in this process


def worker_data(data, data_dir, quick: bool) -> WorkerData:
    return WorkerData(data.name, None if data_dir is None else str(data_dir), quick,
                      data.fingerprint)


def _parameters(items: list[str] | None) -> dict:
    import json

    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            usage_error(f"--slurm-param: {item!r} is not KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


@contextlib.contextmanager
def executor_for(kind: str, *, scheduler: str | None, workers: int | None,
                 slurm_param: list[str] | None, out: Path):
    """The started executor (None for local) for the command's lifetime; bad settings, a
    missing engine or an unreachable scheduler: one line, exit 2."""
    from dnnbench.run.executors import ExecutorError, start_executor

    if workers is not None and kind != "dask":
        usage_error("--workers is for --executor dask")
    if slurm_param and kind != "slurm":
        usage_error("--slurm-param is for --executor slurm")
    try:
        ex = start_executor(kind, scheduler=scheduler, workers=workers,
                            folder=Path(out) / ".dnnbench-submitit",
                            slurm_parameters=_parameters(slurm_param))
    except ExecutorError as e:
        usage_error(str(e))
    try:
        yield ex
    finally:
        if ex is not None:
            ex.close()
