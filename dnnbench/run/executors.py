"""Where an experiment's units are computed: here, on a Dask cluster, or as a SLURM job array.

The unit of distributed work is a :class:`~dnnbench.run.units.Unit` (one compiled
program and its lanes). A unit's ``compute`` closes over data arrays and compiled programs,
so it is not what travels: a unit that can run elsewhere carries ``remote``, a small picklable
recipe (the experiment as data, the data set's name and fingerprint, the seeds, the program's
index) that rebuilds the same unit in the worker's process (:class:`Task`, a few KB). The
worker loads the data set itself (no shared file system needed), checks its fingerprint,
compiles with its own persistent compilation cache and program cache (the user cache folder:
shared where the workers share it, e.g. a cluster's home), trains, and returns the unit's
tables with the unit's key material as the worker computed it. The client compares that
material with its own (same code, modules, library versions, device kind, data, unit), saves
the unit file and writes the result set as with local execution, so resuming, locking and
"nothing lost, nothing duplicated" work the same way; a unit whose worker died is computed
again (Dask reschedules its task; a SLURM job that ended without a result is submitted again,
up to :data:`RETRIES` times).

The unit files are keyed by the workers' environment (probed before any unit is looked up),
so units computed on GPU workers are never taken for units of a CPU run, and vice versa.

Engines are optional dependencies: ``uv sync --extra dask`` (dask.distributed) and
``uv sync --extra slurm`` (submitit); without them :func:`start_executor` raises
:class:`ExecutorError` with the command that installs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dnnbench.run.units import Frames, Progress, Unit, UnitStore, environment_key
from dnnbench.train.arm import enable_compile_cache

EXECUTORS = ("local", "dask", "slurm")
SCHEDULER_ENV = "DNNBENCH_DASK_SCHEDULER"
RETRIES = 2  # submissions again of a SLURM job that ended without a result
INSTALL = {"dask": ("distributed", "uv sync --extra dask  (or: pip install 'dnnbench[dask]')"),
           "slurm": ("submitit", "uv sync --extra slurm  (or: pip install 'dnnbench[slurm]')")}


class ExecutorError(Exception):
    """Bad executor settings or an unreachable engine (one line; the CLI exits 2)."""


class ExecutionFailed(RuntimeError):
    """A unit could not be computed by the engine (one line; the CLI exits 1)."""


# ------------------------------------------------------------------------ the worker's side

@dataclasses.dataclass(frozen=True)
class Task:
    """What travels to a worker: ``rebuild()`` makes the unit there; the rest names its store."""

    rebuild: Callable[[], Unit]
    experiment: str
    dataset_name: str
    fingerprint: str


def run_task(task: Task) -> tuple[str, Frames]:
    """On a worker: rebuild the unit, compute it; returns (its key material here, its tables)."""
    enable_compile_cache()
    unit = task.rebuild()
    store = UnitStore(os.devnull, task.experiment, task.dataset_name, task.fingerprint)
    material = store.key_material(unit)
    return material, unit.compute()


def worker_environment() -> dict:
    """On a worker: what keys its units (library versions, backend, device kind, ...)."""
    return environment_key()


def task_for(unit: Unit, store: UnitStore) -> Task:
    if unit.remote is None:
        raise ExecutorError(f"unit {unit.label} cannot be computed on another machine")
    return Task(unit.remote, store.experiment, store.dataset_name, store.fingerprint)


def _check(unit: Unit, store: UnitStore, material: str) -> None:
    """The worker computed exactly the unit the client keys (code, data, environment, unit)."""
    ours = store.key_material(unit)
    if material == ours:
        return
    a, b = json.loads(material), json.loads(ours)
    differ = ", ".join(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
    raise ExecutionFailed(f"a worker computed unit {unit.label} with another {differ} than "
                          "this run expects (install the same dnnbench and libraries on every "
                          "worker, and give every worker the same device kind)")


# ---------------------------------------------------------------------------- the executors

class Executor:
    """Computes units elsewhere; ``environment`` keys their files (None: this process's)."""

    name = "local"
    environment: dict | None = None

    def compute(self, todo: Sequence[Unit], store: UnitStore, progress: Progress,
                stop_requested: Callable[[], bool]) -> dict[int, Frames]:
        """Compute ``todo``; save each unit as it arrives; returns {id(unit): frames}."""
        raise NotImplementedError

    def _finished(self, unit: Unit, store: UnitStore, progress: Progress, result) -> Frames:
        material, frames = result
        _check(unit, store, material)
        store.save(unit, frames)
        progress.unit_finished(unit.label, cached=False)
        return frames


class DaskExecutor(Executor):
    """Units as tasks of a ``dask.distributed`` cluster: the scheduler at ``address``, or a
    LocalCluster of ``workers`` single-threaded worker processes."""

    name = "dask"

    def __init__(self, address: str | None, workers: int | None):
        self.address, self.workers = address, workers
        self._stack = contextlib.ExitStack()
        self.client = None

    def start(self, timeout_s: float = 60.0) -> None:
        from distributed import Client, LocalCluster

        if self.address is None:
            cluster = self._stack.enter_context(LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True,
                dashboard_address=None))
            self.client = self._stack.enter_context(Client(cluster))
        else:
            try:
                self.client = self._stack.enter_context(Client(self.address, timeout="5s"))
            except (OSError, ValueError, TypeError) as e:
                raise ExecutorError(f"--scheduler {self.address}: cannot reach a Dask scheduler "
                                    f"there ({' '.join(str(e).split()) or type(e).__name__})"
                                    ) from None
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except TimeoutError:
            raise ExecutorError(f"no Dask worker joined the scheduler {self.address} within "
                                f"{timeout_s:.0f} s (start them with: dask worker "
                                f"{self.address} --nthreads 1)") from None
        envs = self.client.run(worker_environment)
        distinct = {json.dumps(e, sort_keys=True) for e in envs.values()}
        if len(distinct) > 1:
            raise ExecutorError("the Dask workers differ in libraries or devices "
                                f"({len(distinct)} kinds among {len(envs)} workers); a run's "
                                "workers must be alike")
        self.environment = next(iter(envs.values()))

    def compute(self, todo, store, progress, stop_requested):
        from distributed import as_completed

        progress.unit_started(f"{len(todo)} units on {len(self.client.scheduler_info()['workers'])}"
                              " Dask workers")
        futures = {self.client.submit(run_task, task_for(u, store), pure=False,
                                      key=f"dnnbench-{u.label}-{store.key(u)}-{os.getpid()}"): u
                   for u in todo}
        done: dict[int, Frames] = {}
        try:
            for fut in as_completed(futures):
                if stop_requested():
                    raise KeyboardInterrupt
                unit = futures[fut]
                try:
                    result = fut.result()
                except Exception as e:
                    if type(e).__name__ == "KilledWorker":
                        raise ExecutionFailed(f"unit {unit.label}: its Dask workers died "
                                              f"repeatedly ({e})") from None
                    if isinstance(e, OSError):  # the scheduler is gone (CommClosedError)
                        raise ExecutionFailed(f"unit {unit.label}: lost the Dask scheduler "
                                              f"({' '.join(str(e).split())})") from None
                    raise
                done[id(unit)] = self._finished(unit, store, progress, result)
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return done

    def close(self) -> None:
        self._stack.close()


class SlurmExecutor(Executor):
    """Units as one job array of submitit: on SLURM where ``srun`` exists, else submitit's
    local executor (jobs as processes of this machine). ``folder`` holds submitit's job files
    and logs (on SLURM it must be visible to the nodes); ``parameters`` go to
    ``update_parameters`` (e.g. timeout_min, gpus_per_node, slurm_partition)."""

    name = "slurm"

    def __init__(self, folder: str | Path, parameters: dict | None = None,
                 cluster: str | None = None, poll_s: float = 0.25):
        import submitit

        self.folder = Path(folder)
        try:
            self.executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=cluster)
            self.executor.update_parameters(**{"timeout_min": 60 * 24, **(parameters or {})})
        except (ValueError, TypeError, RuntimeError) as e:
            raise ExecutorError(f"--slurm-param: {' '.join(str(e).split())}") from None
        self.cluster = self.executor.cluster
        self.poll_s = poll_s

    def start(self) -> None:
        if self.cluster == "local":  # jobs are processes of this machine, with its python
            return
        job = self.executor.submit(worker_environment)
        try:
            self.environment = job.result()
        except Exception as e:  # noqa: BLE001 - submitit's errors carry the job's log
            raise ExecutorError(f"the first {self.cluster} job failed: "
                                f"{' '.join(str(e).split())[:300]}") from None

    def compute(self, todo, store, progress, stop_requested):
        from submitit.core.utils import FailedJobError, UncompletedJobError

        progress.unit_started(f"{len(todo)} units as a {self.cluster} job array")
        tasks = [task_for(u, store) for u in todo]
        jobs = self.executor.map_array(run_task, tasks)
        pending = {j.job_id: (j, u, t, 0) for j, u, t in zip(jobs, todo, tasks, strict=True)}
        done: dict[int, Frames] = {}
        try:
            while pending:
                if stop_requested():
                    raise KeyboardInterrupt
                for job_id, (job, unit, task, tries) in list(pending.items()):
                    if not job.done():
                        continue
                    del pending[job_id]
                    try:
                        result = job.result()
                    except FailedJobError:
                        raise  # the unit's own error (with its traceback): not retried
                    except UncompletedJobError as e:  # killed, preempted, node lost
                        if tries >= RETRIES:
                            raise ExecutionFailed(f"unit {unit.label}: job {job_id} ended without "
                                                  f"a result {tries + 1} times ({str(e)[:200]})"
                                                  ) from None
                        again = self.executor.submit(run_task, task)
                        pending[again.job_id] = (again, unit, task, tries + 1)
                        continue
                    done[id(unit)] = self._finished(unit, store, progress, result)
                if pending:
                    time.sleep(self.poll_s)
        finally:
            for job, *_ in pending.values():
                with contextlib.suppress(Exception):
                    job.cancel(check=False)
        shutil.rmtree(self.folder, ignore_errors=True)  # job files of a completed array
        return done

    def close(self) -> None:
        pass


def missing_engine(kind: str) -> str | None:
    """None when the engine of ``kind`` is installed; else the line that says how."""
    import importlib.util

    if kind not in INSTALL:
        return None
    module, command = INSTALL[kind]
    if importlib.util.find_spec(module) is not None:
        return None
    return f"--executor {kind} needs the optional package {module}: {command}"


def start_executor(kind: str, *, scheduler: str | None = None, workers: int | None = None,
                   folder: str | Path = ".dnnbench-submitit",
                   slurm_parameters: dict | None = None) -> Executor | None:
    """The started executor of ``kind`` (None for local; close it after use); ExecutorError
    for bad settings, a missing engine or an unreachable scheduler."""
    if kind not in EXECUTORS:
        raise ExecutorError(f"--executor: unknown value {kind!r}; choose from: "
                            f"{', '.join(EXECUTORS)}")
    if kind != "dask" and scheduler is not None:
        raise ExecutorError("--scheduler is for --executor dask")
    if kind == "local":
        return None
    problem = missing_engine(kind)
    if problem is not None:
        raise ExecutorError(problem)
    if kind == "dask":
        ex: Executor = DaskExecutor(scheduler or os.environ.get(SCHEDULER_ENV) or None, workers)
    else:
        ex = SlurmExecutor(folder, slurm_parameters)
    try:
        ex.start()
    except BaseException:
        ex.close()
        raise
    return ex
