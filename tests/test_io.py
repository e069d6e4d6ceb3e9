"""Result files: atomic writes under injected failures, stale temp files, schema refusal,
consistency of a result set, and validation of a results folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dnnbench import files
from dnnbench.data import load_dataset
from dnnbench.results import io as rio
from dnnbench.results.io import SchemaError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", n_train=40, n_val=10, n_test=10, n_features=4)


def runs_frame(n: int = 3, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"experiment": "toy", "dataset": "synthetic", "arm": "a",
                         "seed": range(n), "value": [offset + 0.5 * i for i in range(n)]})


def curves_frame(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"arm": "a", "seed": [0] * n, "step": [10 * (i + 1) for i in range(n)]})


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------- atomic writes

class Injected(Exception):
    pass


def _raise(*args, **kwargs):
    raise Injected("injected failure")


@pytest.mark.parametrize("where", ["replace", "fsync", "write", "interrupt"])
def test_failed_write_leaves_previous_file_and_no_temp(tmp_path, monkeypatch, where):
    target = tmp_path / "x-runs.csv"
    rio.write_csv(target, runs_frame())
    before = target.read_bytes()
    if where == "replace":
        monkeypatch.setattr(rio.os, "replace", _raise)
    elif where == "fsync":  # after part of the data went to the temp file
        monkeypatch.setattr(rio.os, "fsync", _raise)
    elif where == "write":
        real_fdopen = os.fdopen

        class Failing:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])  # half written, then the disk is full
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(rio.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    else:
        def interrupted(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr(rio.os, "replace", interrupted)
    with pytest.raises((Injected, OSError, KeyboardInterrupt)):
        rio.write_csv(target, runs_frame(50, offset=7.0))
    assert target.read_bytes() == before
    assert temps(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x-runs.csv"]
    monkeypatch.undo()
    rio.write_csv(target, runs_frame(50, offset=7.0))  # and the next write succeeds
    assert len(pd.read_csv(target)) == 50


def test_new_file_is_not_created_when_its_write_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(rio.os, "replace", _raise)
    with pytest.raises(Injected):
        rio.write_json(tmp_path / "new-meta.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_failure_between_files_is_detected_by_the_reader(tmp_path, monkeypatch, dataset):
    """Each file is atomic; a set interrupted between two files must not pass as consistent."""
    rio.write_results(tmp_path, "toy", dataset, runs_frame(), curves_frame(), {"k": 1})
    runs_path = tmp_path / "toy-synthetic-runs.csv"
    rio.read_results(runs_path)  # consistent
    real = rio.atomic_write_bytes

    def fail_on_curves(path, data):
        if str(path).endswith("-curves.csv"):
            raise Injected("disk full")
        real(path, data)

    monkeypatch.setattr(rio, "atomic_write_bytes", fail_on_curves)
    with pytest.raises(Injected):
        rio.write_results(tmp_path, "toy", dataset, runs_frame(5, 1.0), curves_frame(), {"k": 2})
    monkeypatch.undo()
    with pytest.raises(SchemaError, match="does not match its metadata") as exc:
        rio.read_results(runs_path)  # new runs, old meta
    assert "\n" not in str(exc.value)
    assert temps(tmp_path) == []
    rio.write_results(tmp_path, "toy", dataset, runs_frame(5, 1.0), curves_frame(), {"k": 2})
    runs, meta = rio.read_results(runs_path)
    assert len(runs) == 5 and meta["k"] == 2 and meta["files"]["runs"]["rows"] == 5
    assert len(rio.read_curves(runs_path)) == 2


def test_crlf_checkout_still_matches(tmp_path, dataset):
    rio.write_results(tmp_path, "toy", dataset, runs_frame(), curves_frame(), {})
    p = tmp_path / "toy-synthetic-runs.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))  # git autocrlf on Windows
    assert len(rio.read_results(p)[0]) == 3


def test_stale_temp_of_a_dead_writer_is_removed_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = files._host_tag()
    stale = tmp_path / f".a-runs.csv.{host}.{dead_pid}-abc_12.tmp"
    live = tmp_path / f".a-runs.csv.{host}.{os.getppid()}-xyz.tmp"  # a running process
    other = tmp_path / ".notes.tmp"  # not ours: never touched
    for p in (stale, live, other):
        p.write_text("partial")
    assert files.remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


# ------------------------------------------------------------------------ schema refusal

def write_set(folder: Path, dataset, name: str = "toy") -> Path:
    rio.write_results(folder, name, dataset, runs_frame(), curves_frame(), {})
    return folder / f"{name}-synthetic-runs.csv"


def edit_meta(runs_path: Path, **changes) -> None:
    meta_path = rio.meta_path_of(runs_path)
    meta = json.loads(meta_path.read_text())
    for k, v in changes.items():
        if v is ...:
            meta.pop(k)
        else:
            meta[k] = v
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("version", [2, 0, "1", None, True, 1.5, ...])
def test_unknown_schema_version_is_refused(tmp_path, dataset, version):
    runs_path = write_set(tmp_path, dataset)
    edit_meta(runs_path, schema_version=version)
    with pytest.raises(SchemaError, match="unknown schema version") as exc:
        rio.read_results(runs_path)
    assert "\n" not in str(exc.value) and "meta.json" in str(exc.value)
    with pytest.raises(SchemaError, match="unknown schema version"):
        rio.find_results(tmp_path)


@pytest.mark.parametrize(("damage", "message"), [
    ("no-meta", "metadata file is missing"),
    ("bad-json", "not a readable metadata file"),
    ("list-json", "not a dnnbench metadata file"),
    ("no-runs", "no such results file"),
    ("empty-runs", "does not match its metadata"),
    ("edited-runs", "does not match its metadata"),
    ("wrong-name", "not a results file"),
])
def test_damaged_result_sets_are_refused_in_one_line(tmp_path, dataset, damage, message):
    runs_path = write_set(tmp_path, dataset)
    meta_path = rio.meta_path_of(runs_path)
    if damage == "no-meta":
        meta_path.unlink()
    elif damage == "bad-json":
        meta_path.write_text('{"schema_version": 1,')
    elif damage == "list-json":
        meta_path.write_text("[1]")
    elif damage == "no-runs":
        runs_path.unlink()
    elif damage == "empty-runs":
        runs_path.write_text("")
    elif damage == "edited-runs":
        runs_path.write_text(runs_path.read_text().replace("0.5", "0.9"))
    else:
        runs_path = runs_path.with_name("toy-synthetic.csv")
    with pytest.raises(SchemaError, match=message) as exc:
        rio.read_results(runs_path)
    assert "\n" not in str(exc.value)


def test_missing_columns_are_refused(tmp_path, dataset):
    runs_path = write_set(tmp_path, dataset)
    df, _ = rio.read_results(runs_path, required=["arm", "seed", "value"])
    assert list(df["value"]) == [0.0, 0.5, 1.0]
    with pytest.raises(SchemaError, match="missing columns: steps_to_target, reached$"):
        rio.read_results(runs_path, required=["arm", "steps_to_target", "reached"])
    with pytest.raises(SchemaError, match="missing columns: epoch"):
        rio.read_curves(runs_path, required=["step", "epoch"])
    with pytest.raises(SchemaError, match="missing columns"):
        rio.find_results(tmp_path, required=["steps_to_target"])


def test_unreadable_csv_without_recorded_digest(tmp_path, dataset):
    runs_path = write_set(tmp_path, dataset)
    edit_meta(runs_path, files=...)  # metadata of an older writer: no digests to check
    runs_path.write_text("")
    with pytest.raises(SchemaError, match="not a readable CSV file"):
        rio.read_results(runs_path)


# ------------------------------------------------------------------- results folder check

def test_find_results_lists_valid_sets(tmp_path, dataset):
    a = write_set(tmp_path, dataset, "depth-sweep")
    b = write_set(tmp_path, dataset, "optimizers")
    (tmp_path / ".dnnbench-units").mkdir()
    (tmp_path / ".dnnbench-units" / "junk-runs.csv").write_text("x\n")  # hidden: ignored
    (tmp_path / "claims.csv").write_text("claim\n")  # not a result set: ignored
    assert rio.find_results(tmp_path) == [("depth-sweep", "synthetic", a),
                                          ("optimizers", "synthetic", b)]
    sub = tmp_path / "nested"
    sub.mkdir()
    c = write_set(sub, dataset, "transfer")
    assert ("transfer", "synthetic", c) in rio.find_results(tmp_path, recursive=True)
    assert rio.find_results(tmp_path / "nested") == [("transfer", "synthetic", c)]


def test_find_results_refuses_incomplete_or_unknown_sets(tmp_path, dataset):
    with pytest.raises(SchemaError, match="no such results folder"):
        rio.find_results(tmp_path / "absent")
    runs_path = write_set(tmp_path, dataset)
    rio.meta_path_of(runs_path).unlink()
    with pytest.raises(SchemaError, match="metadata file is missing"):
        rio.find_results(tmp_path)
    runs_path = write_set(tmp_path, dataset)
    runs_path.unlink()
    with pytest.raises(SchemaError, match="its runs file toy-synthetic-runs.csv is missing"):
        rio.find_results(tmp_path)


def test_committed_fixture_results_are_valid():
    if not FIXTURES.is_dir():
        pytest.skip("no committed fixture results")
    found = rio.find_results(FIXTURES, required=["experiment", "dataset", "arm", "seed"])
    assert {exp for exp, _, _ in found} >= {"depth-sweep"}
    for exp, dataset, path in found:
        runs, meta = rio.read_results(path)
        assert meta["experiment"] == exp and set(runs["dataset"]) == {dataset}
