"""Results never silently replaced, and faults answered with one line (issue 15).

Each class of fault is checked for its exit code, its one-line message, the absence of a
traceback and of partial files. The tests run as root, where permissions (chmod) stop
nothing: an unwritable place is a path below a regular file, or ``os.access`` / a writer
monkeypatched to refuse; a full disk is a writer that raises ``OSError(ENOSPC)``.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench import files
from dnnbench.cli import app
from dnnbench.results import runfolder
from dnnbench.run import units as U
from dnnbench.train import compile_cache, programs

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "results"
# One unit (depth 1, BN only) of a quick synthetic sweep: a few seconds.
SWEEP = ["depth-sweep", "--quick", "--dataset", "synthetic", "--depths", "1", "--only-bn",
         "--max-steps", "20", "--eval-every", "10"]
META = "depth-sweep-synthetic-meta.json"
RUNS = "depth-sweep-synthetic-runs.csv"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(res, code: int, *fragments: str, after_progress: bool = False) -> str:
    """The result exited ``code`` with exactly one line on stderr (or, ``after_progress``,
    one last line after the progress of a run), holding ``fragments``."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    err = lines[-1]
    assert len(lines) == 1 or after_progress, lines
    assert err.startswith("Error: ") and sum("Error" in ln for ln in lines) == 1, lines
    for f in fragments:
        assert f in err, (f, err)
    return err


def no_partial_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def read_meta(out: Path) -> dict:
    return json.loads((out / META).read_text())


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A finished one-unit sweep (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("swept") / "out"
    res = invoke(*SWEEP, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def copy_of(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "out"))


# --------------------------------------------------------- results are never silently replaced

def test_other_settings_are_refused_same_settings_resume_force_replaces(swept, tmp_path):
    out = copy_of(swept, tmp_path)
    before = (out / RUNS).read_bytes()
    res = invoke(*SWEEP, "--out", out, "--learning-rate", "0.02")
    one_line_error(res, 2, "made with other settings", str(out / META), "--force",
                   "another --out", "dnnbench depth-sweep")
    assert (out / RUNS).read_bytes() == before  # untouched
    assert not list(U.UnitStore(out, "depth-sweep", "synthetic", "x").dir.parent.glob(
        "*/run.json"))  # nothing started
    res = invoke(*SWEEP, "--out", out)  # the same settings: resumes, every unit saved
    assert res.exit_code == 0, res.output
    assert "Resuming: 1/1" in " ".join(res.stderr.split())
    digest = read_meta(out)["settings_digest"]
    res = invoke(*SWEEP, "--out", out, "--learning-rate", "0.02", "--force")
    assert res.exit_code == 0, res.output
    assert read_meta(out)["settings_digest"] != digest
    assert read_meta(out)["config"]["base"]["learning_rate"] == 0.02


def test_quick_run_into_a_full_runs_folder_is_refused(swept, tmp_path):
    out = copy_of(swept, tmp_path)
    res = invoke(*[a for a in SWEEP if a != "--quick"], "--seeds", "2", "--out", out)
    one_line_error(res, 2, "made with other settings")


def test_metadata_without_a_digest_is_compared_by_its_settings(swept, tmp_path):
    """Result sets written before the digest existed (the committed ones) are still guarded."""
    out = copy_of(swept, tmp_path)
    meta = read_meta(out)
    del meta["settings_digest"]
    (out / META).write_text(json.dumps(meta))
    assert invoke(*SWEEP, "--out", out).exit_code == 0
    meta = read_meta(out)
    del meta["settings_digest"]
    (out / META).write_text(json.dumps(meta))
    one_line_error(invoke(*SWEEP, "--out", out, "--max-steps", "30"), 2, "other settings")


def test_settings_digest_is_stable_and_sees_every_setting():
    a = runfolder.run_settings("x", "f00d", {"config": {"depths": (1, 2)}, "quick": True})
    b = runfolder.run_settings("x", "f00d", {"config": {"depths": [1, 2]}, "quick": True})
    assert runfolder.settings_digest(a) == runfolder.settings_digest(b) == \
        runfolder.settings_digest(json.loads(json.dumps(a)))
    changed = [runfolder.run_settings("x", "beef", {"config": {"depths": (1, 2)},
                                                    "quick": True}),
               {**a, "quick": False}, {**a, "config": {"depths": (1, 3)}}, {**a, "experiment": "y"}]
    for c in changed:
        assert runfolder.settings_digest(c) != runfolder.settings_digest(a)


def test_a_locked_folder_is_refused_without_doing_any_work(tmp_path):
    out = tmp_path / "out"
    with runfolder.locked(out, "dnnbench depth-sweep (the first run)"):
        res = invoke(*SWEEP, "--out", out)
    one_line_error(res, 2, "in use by another dnnbench run", f"pid {os.getpid()}",
                   "the first run", "another --out")
    assert not (out / ".dnnbench-units").exists() and not (out / RUNS).exists()
    res = invoke(*SWEEP, "--out", out)  # the lock is gone with its holder
    assert res.exit_code == 0, res.output


def test_the_lock_excludes_another_process(tmp_path):
    """flock between two processes, not only two opens in one."""
    code = ("import sys, time; from dnnbench.results.runfolder import locked\n"
            "with locked(sys.argv[1], 'holder'):\n    print('held', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(runfolder.FolderInUse, match=f"pid {proc.pid}: holder"), \
                runfolder.locked(tmp_path, "second"):
            pass
    finally:
        proc.kill()
        proc.wait()
    with runfolder.locked(tmp_path, "third"):  # released when its holder died
        pass


def test_resume_keeps_the_first_start_and_records_each_resume(tmp_path, monkeypatch):
    import typer

    from dnnbench.cli.common import run_experiment
    from dnnbench.data import load_dataset
    from dnnbench.results import io as rio

    clock = iter(f"2026-01-01T00:00:{s:02d}+00:00" for s in range(60))
    monkeypatch.setattr(rio, "now", lambda: next(clock))
    data = load_dataset("synthetic", n_train=40, n_val=10, n_test=10, n_features=4)
    stop = {"on": True}

    def unit(i):
        def compute():
            if i == 1 and stop["on"]:
                raise KeyboardInterrupt
            return (pd.DataFrame({"arm": [f"a{i}"], "seed": [0], "x": [float(i)]}),
                    pd.DataFrame({"arm": [f"a{i}"], "seed": [0], "step": [10]}))
        return U.Unit(f"unit {i}", ("robust", i), compute)

    units = [unit(0), unit(1)]
    for _ in range(2):  # interrupted twice
        with pytest.raises(typer.Exit) as exc:
            run_experiment("toy", units, data, tmp_path, fresh=False, meta={"quick": True})
        assert exc.value.exit_code == 130
    stop["on"] = False
    run_experiment("toy", units, data, tmp_path, fresh=False, meta={"quick": True})
    meta = json.loads((tmp_path / "toy-synthetic-meta.json").read_text())
    assert meta["started"] == "2026-01-01T00:00:00+00:00"
    assert meta["resumed"] == ["2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"]
    assert meta["finished"] == "2026-01-01T00:00:03+00:00"
    assert not list(tmp_path.rglob("run.json"))  # finished: the next run starts anew
    run_experiment("toy", units, data, tmp_path, fresh=False, meta={"quick": True})
    meta = json.loads((tmp_path / "toy-synthetic-meta.json").read_text())
    assert meta["started"] == "2026-01-01T00:00:04+00:00" and meta["resumed"] == []


# ------------------------------------------------------------------ unusable output locations

@pytest.mark.parametrize("where", ["file", "below a file", "unwritable"])
def test_unusable_out_is_refused_before_any_work(tmp_path, monkeypatch, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"file": blocker, "below a file": blocker / "sub" / "out",
           "unwritable": tmp_path / "ro" / "out"}[where]
    if where == "unwritable":  # root ignores chmod: refuse through os.access
        (tmp_path / "ro").mkdir()
        real = os.access
        monkeypatch.setattr(files.os, "access", lambda p, mode: False if Path(p) == tmp_path / "ro"
                            else real(p, mode))
    trained = []
    # (the session's own name: patching the units module's while the session is first
    # imported would bind the stub there for every later test of this worker)
    from dnnbench.run import session
    monkeypatch.setattr(session, "run_units", lambda *a, **k: trained.append(1))
    res = invoke(*SWEEP, "--out", out)
    one_line_error(res, 2, f"--out {out}", {"file": "is a file, not a folder",
                                            "below a file": "is a file",
                                            "unwritable": "is not writable"}[where])
    assert not trained
    assert blocker.read_text() == "x"


def test_claims_out_report_out_and_check_json_are_checked(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(invoke("claims", FIXTURES, "--out", blocker / "c"), 2, "is a file")
    one_line_error(invoke("report", FIXTURES, "--out", blocker), 2, "is a file")
    one_line_error(invoke("check", "--json", blocker / "r.json"), 2, "--json", "is a file")
    one_line_error(invoke("check", "--json", tmp_path), 2, "--json", "is a folder")
    assert blocker.read_text() == "x"


def test_claims_never_replace_other_claims_silently(tmp_path):
    res = invoke("claims", FIXTURES, "--out", tmp_path)
    assert res.exit_code == 0, res.output
    target = tmp_path / "claims.csv"
    written = target.read_bytes()
    assert invoke("claims", FIXTURES, "--out", tmp_path).exit_code == 0  # same: fine
    target.write_bytes(written.replace(b"supported", b"contradicted", 1))
    other = target.read_bytes()
    one_line_error(invoke("claims", FIXTURES, "--out", tmp_path), 2, "holds other claims",
                   "--force", "--out DIR")
    assert target.read_bytes() == other
    assert invoke("claims", FIXTURES, "--out", tmp_path, "--force").exit_code == 0
    assert target.read_bytes() == written


# ------------------------------------------------------------------- write failures mid-run

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing_results_exits_1_and_keeps_the_units(tmp_path, monkeypatch):
    from dnnbench.results import io as rio

    out = tmp_path / "out"
    monkeypatch.setattr(rio, "atomic_write_bytes", _disk_full)
    monkeypatch.setattr(rio, "atomic_write_text", _disk_full)
    res = invoke(*SWEEP, "--out", out)
    one_line_error(res, 1, "No space left on device", "1/1 units are saved",
                   after_progress=True)
    assert len(list(out.rglob("*.unit"))) == 1  # the finished unit is kept
    assert not (out / RUNS).exists() and not (out / META).exists()
    no_partial_files(out)
    monkeypatch.undo()
    res = invoke(*SWEEP, "--out", out)  # space again: resumes from the kept unit
    assert res.exit_code == 0 and "Resuming: 1/1" in " ".join(res.stderr.split())


def test_disk_full_while_saving_a_unit_exits_1_with_one_line(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(U, "atomic_write_bytes", _disk_full)
    res = invoke(*SWEEP, "--out", out)
    one_line_error(res, 1, f"writing to {out} failed", "No space left on device",
                   "0/1 units are saved", after_progress=True)
    assert not list(out.rglob("*.unit")) and not (out / RUNS).exists()
    no_partial_files(out)


def test_a_unit_path_that_is_a_folder_gives_one_line(swept, tmp_path):
    out = copy_of(swept, tmp_path)
    (unit,) = out.rglob("*.unit")
    unit.unlink()
    unit.mkdir()
    one_line_error(invoke(*SWEEP, "--out", out), 1, "writing to", "Is a directory",
                   after_progress=True)


def test_an_unreadable_data_file_gives_one_line(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    from dnnbench.data import mnist

    def denied(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(mnist, "sha256_file", denied)  # root reads everything: refuse here
    res = invoke(*SWEEP[:2], "--dataset", "mnist", "--data-dir", root, "--out",
                 root.parent / "out")
    one_line_error(res, 1, "cannot read the data set", "Permission denied", str(root))


# ------------------------------------------------------------------------------------ caches

class _DictCache:
    """JAX's file cache, as CheckedCache sees it (get/put of bytes, files in ``_path``)."""

    def __init__(self, path: Path):
        self._path = path

    def get(self, key):
        p = self._path / f"{key}-cache"
        return p.read_bytes() if p.exists() else None

    def put(self, key, value):
        p = self._path / f"{key}-cache"
        if not p.exists():  # like JAX: an existing entry is never overwritten
            p.write_bytes(value)


def test_damaged_jax_cache_entries_are_deleted_and_warned_about_once(tmp_path):
    warned: list[str] = []
    cache = compile_cache.CheckedCache(_DictCache(tmp_path), compile_cache._Once(warned.append))
    cache.put("a", b"executable a")
    cache.put("b", b"executable b")
    assert cache.get("a") == b"executable a"
    for key in "ab":  # flip a byte of the payload of each entry
        p = tmp_path / f"{key}-cache"
        blob = bytearray(p.read_bytes())
        blob[-1] ^= 0xFF
        p.write_bytes(bytes(blob))
    assert cache.get("a") is None and cache.get("b") is None  # a miss: compiled again
    assert not (tmp_path / "a-cache").exists()
    assert len(warned) == 1 and "damaged" in warned[0]
    cache.put("a", b"executable a")  # replaced by the new compile
    assert cache.get("a") == b"executable a"


def test_damaged_jax_cache_in_a_real_process_warns_once_then_is_replaced(tmp_path):
    code = ("import jax, jax.numpy as jnp, sys\n"
            "from dnnbench.train.compile_cache import enable_compile_cache\n"
            "enable_compile_cache(sys.argv[1])\n"
            "for i in range(4):\n"
            "    jax.jit(lambda x, i=i: x * i + 1)(jnp.ones(3)).block_until_ready()\n")
    folder = tmp_path / "jax"

    def run():
        return subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                              text=True, timeout=120, cwd=REPO, check=False)

    first = run()
    assert first.returncode == 0, first.stderr
    entries = sorted(folder.rglob("*-cache"))  # (in the folder of this kind of CPU)
    assert len(entries) >= 4
    for p in entries:
        p.write_bytes(p.read_bytes()[:40] + b"garbage")
    second = run()
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("Warning:") == 1 and "damaged" in second.stderr
    assert "Error reading persistent compilation cache" not in second.stderr
    third = run()
    assert third.returncode == 0 and "Warning" not in third.stderr, third.stderr


def test_damaged_kept_program_is_rebuilt_with_one_warning(tmp_path, monkeypatch):
    import jax.numpy as jnp

    warned: list[tuple[str, str]] = []
    monkeypatch.setattr(programs, "_folder", tmp_path)
    monkeypatch.setattr(programs, "_warn", lambda key, msg: warned.append((key, msg)))
    args = (jnp.ones(3),)
    key = programs.program_key({"test": "robustness"}, args)
    fn = lambda x: x * 2 + 1
    assert float(programs.compile_program(fn, args, key)(*args)[0]) == 3.0
    (path,) = tmp_path.glob("*.jaxexport")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert float(programs.compile_program(fn, args, key)(*args)[0]) == 3.0
    assert len(warned) == 1 and "damaged (checksum mismatch)" in warned[0][1]
    assert programs._read(path) is not None  # rebuilt and valid
    assert len(warned) == 1


def test_kept_programs_that_cannot_be_written_warn_once_and_go_on(tmp_path, monkeypatch):
    import jax.numpy as jnp

    warned: list[str] = []
    monkeypatch.setattr(programs, "_folder", tmp_path)
    monkeypatch.setattr(programs, "_warn", lambda key, msg: warned.append(msg))
    monkeypatch.setattr(programs, "atomic_write_bytes", _disk_full)
    for i in range(2):
        args = (jnp.ones(2 + i),)
        out = programs.compile_program(lambda x: x + 1, args, programs.program_key({}, args))
        assert float(out(*args)[0]) == 2.0
    assert len(warned) == 1 and "No space left on device" in warned[0]


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_unusable_cache_folder_runs_without_it_and_warns_once(tmp_path, monkeypatch, where):
    blocker = tmp_path / "cache"
    blocker.write_text("x")
    monkeypatch.setattr(compile_cache, "_enabled", None)
    monkeypatch.setattr(programs, "_folder", programs._folder)
    warned: list[str] = []
    folder = blocker if where == "a file" else blocker / "dnnbench" / "jax"
    assert compile_cache.enable_compile_cache(folder, on_warning=warned.append) is None
    assert len(warned) == 1 and "running without it" in warned[0]
    assert programs._folder is None and blocker.read_text() == "x"


# ----------------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_in_a_terminal_exits_130_with_one_line_and_nothing_after(tmp_path):
    """SIGINT to the process group (what a terminal's ^C sends) once the sweep is under way,
    its output in a pseudo-terminal (benchmarks/interrupt.py types ^C 20 times at random
    moments, through ``uv run``). No fork here: pytest's process runs JAX threads."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dnnbench", *SWEEP[:4], "--depths", "1-2", "--max-steps",
            "100", "--eval-every", "10", "--target", "1.0", "--out", str(out)]
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
                            start_new_session=True, env={**os.environ, "COLUMNS": "200"})
    os.close(slave)
    chunks, sent, t0 = [], False, time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 120:
        if select.select([master], [], [], 0.02)[0]:
            try:
                chunks.append(os.read(master, 65536))
            except OSError:
                pass
        if not sent and b"depth-sweep" in b"".join(chunks):  # the units have started
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGINT)
            sent = True
    if proc.poll() is None:
        proc.kill()
        pytest.fail("the sweep did not end within 120 s")
    while select.select([master], [], [], 0.05)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    assert sent and proc.returncode == 130, text
    assert "Traceback" not in text
    assert sum("Interrupted" in ln for ln in lines) == 1, text
    assert lines[-1].startswith("Interrupted: ") and "units are saved" in lines[-1], text


def test_interrupt_run_ends_the_process_with_its_code():
    code = ("import typer, sys\nfrom dnnbench.cli.interrupt import run\n"
            "app = typer.Typer()\n@app.command()\ndef c(code: int):\n"
            "    print('out', flush=True)\n    raise typer.Exit(code)\nrun(app)")
    for want, last in ((0, "out"), (3, "out"), (130, "Interrupted")):
        res = subprocess.run([sys.executable, "-c", code, str(want)], capture_output=True,
                             text=True, timeout=60, check=False)
        assert res.returncode == want
        assert (res.stdout + res.stderr).strip().splitlines()[-1] == last


def test_interrupt_inside_a_finalizer_prints_no_traceback_and_stops_at_once(tmp_path, capsys):
    """A signal handled inside a gc callback or finalizer (JAX's ``_xla_gc_callback``) raises
    KeyboardInterrupt where Python can only print and ignore it: no traceback, and the run
    still stops in the unit it was in (not after it)."""
    import typer

    from dnnbench.cli.common import run_experiment

    finished = []

    class SignalsWhenCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler raises KeyboardInterrupt in here

    def unit(i):
        def compute():
            if i == 1:
                SignalsWhenCollected()  # collected at once: the signal lands in __del__
                time.sleep(2)
            finished.append(i)
            return (pd.DataFrame({"arm": [f"a{i}"], "seed": [0]}),
                    pd.DataFrame({"arm": [f"a{i}"], "step": [10]}))
        return U.Unit(f"unit {i}", ("finalizer", i), compute)

    data = types.SimpleNamespace(name="toy", fingerprint="f00d")
    hook = sys.unraisablehook
    with pytest.raises(typer.Exit) as exc:
        run_experiment("fake-exp", [unit(0), unit(1), unit(2)], data, tmp_path, fresh=False,
                       meta={})
    assert exc.value.exit_code == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert finished == [0]  # unit 1 was stopped inside, not run to its end
    assert "Interrupted: 1/3 units are saved" in " ".join(err.split())
    assert sys.unraisablehook is hook  # restored


# ------------------------------------ damaged result tables: every reader refuses them alike

def _damage(out: Path, how: str) -> None:
    """Damage a result set as a hand edit or a cut write would (digests recomputed, so that
    only the content itself can give it away)."""
    from dnnbench.results.io import content_digest

    runs, meta = out / RUNS, read_meta(out)
    if how == "not a number":
        df = pd.read_csv(runs).astype({"steps_to_target": object})
        df.loc[0, "steps_to_target"] = "abc"
        df.to_csv(runs, index=False)
    elif how == "not a flag":
        df = pd.read_csv(runs).astype({"reached": object})
        df.loc[0, "reached"] = "maybe"
        df.to_csv(runs, index=False)
    elif how == "cut mid-row":
        text = runs.read_text()
        runs.write_text(text[: text.rstrip("\n").rfind(",")] + "\n")
    elif how in OUT_OF_RANGE:  # a number where one is due, but one that cannot be
        column, value = OUT_OF_RANGE[how]
        df = pd.read_csv(runs).astype({column: object})
        df.loc[0, column] = value
        df.to_csv(runs, index=False)
    elif how == "no rows":  # (its metadata saying so too)
        runs.write_text(runs.read_text().splitlines()[0] + "\n")
        meta["files"]["runs"]["rows"] = 0
    if how == "files not a table":
        meta["files"] = ["runs"]
    else:
        meta["files"]["runs"]["sha256"] = content_digest(runs.read_bytes())
    (out / META).write_text(json.dumps(meta))


OUT_OF_RANGE = {"seed not whole": ("seed", 1.5), "negative steps": ("steps_to_target", -5),
                "accuracy above 1": ("final_test_accuracy", 1.7),
                "infinite step time": ("step_ms", "inf"),
                "setting not a number": ("learning_rate", "x")}


@pytest.mark.parametrize("how, said", [("not a number", "not numbers"),
                                       ("not a flag", "not true or false"),
                                       ("cut mid-row", "fields"),
                                       ("files not a table", "'files' entry"),
                                       ("seed not whole", "not a whole number >= 0 (1.5"),
                                       ("negative steps", "not a whole number >= 0 (-5"),
                                       ("accuracy above 1", "not in [0, 1] (1.7"),
                                       ("infinite step time", "not a finite number >= 0 (inf"),
                                       ("setting not a number", "'learning_rate' holds values that are not numbers"),
                                       ("no rows", "has no runs")])
def test_a_damaged_result_table_is_refused_by_every_reader(swept, tmp_path, how, said):
    out = copy_of(swept, tmp_path)
    _damage(out, how)
    for args in (("claims", out, "--out", tmp_path / "c"), ("report", out, "--out",
                                                            tmp_path / "r"),
                 ("compare", out, out)):
        one_line_error(invoke(*args), 2, said)
    assert not (tmp_path / "c").exists() and not (tmp_path / "r" / "report.html").exists()


@pytest.mark.parametrize("args, said", [
    (["check", "--seed-offset", "99999999999999999999"], "--seed-offset"),
    (["check", "--seed-offset", str(2**32 - 10)], "seeds"),  # the block runs past 32 bits
    (["run", "bn-depth", "--quick", "--executor", "dask", "--workers", "100000"], "--workers"),
    (["run", "bn-depth", "--quick", "--executor", "dask", "--workers", "0"], "--workers"),
])
def test_numbers_past_their_limits_are_refused_before_any_work(tmp_path, args, said):
    if "run" in args:
        pytest.importorskip("distributed")
        args = [*args, "--out", str(tmp_path / "out")]
    one_line_error(invoke(*args), 2, said)
    assert not (tmp_path / "out").exists()


def test_messages_say_what_is_wrong_with_the_path_or_file(swept, tmp_path):
    """A damaged metadata file is said to be damaged (not "other settings"); a baseline path
    that is a folder is said to be a folder (not "not found")."""
    out = copy_of(swept, tmp_path)
    (out / META).write_text('{"cut": ')
    one_line_error(invoke(*SWEEP, "--out", out), 2, "is not valid JSON", str(META))
    one_line_error(invoke("check", "--baseline", tmp_path), 2, "is a folder")
    one_line_error(invoke("check", "--baseline", "/dev/null"), 2, "is not a regular file")
    one_line_error(invoke("merge", swept, out, "--out", tmp_path / "m"), 2,
                   "not a readable metadata file")


def test_a_full_disk_at_the_lock_file_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    from dnnbench.results import runfolder

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runfolder.os, "pwrite", full)
    out = tmp_path / "out"
    one_line_error(invoke(*SWEEP, "--out", out), 1, "cannot write the lock file",
                   "No space left")
    assert not (out / runfolder.LOCK_NAME).exists()
