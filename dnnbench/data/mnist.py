"""MNIST and Fashion-MNIST: one code path for the four canonical IDX files of each.

Where the files are looked for, in order (the first folder holding all four files wins):

1. ``data_dir`` (the ``--data-dir`` option): ``data_dir/<name>/``, or ``data_dir`` itself if it
   directly holds the four files (unless its train labels are the *other* family's canonical
   file: the two share file names);
2. ``$DNNBENCH_DATA_DIR``, same layout;
3. the user cache ``$XDG_CACHE_HOME/dnnbench/<name>/`` (default ``~/.cache/dnnbench``);
4. a download from the public mirrors in :data:`MIRRORS` (only when ``download=True``) into
   the cache, file by file, written atomically, its SHA-256 checked before the rename.

Integrity: the SHA-256 of every canonical ``.gz`` file is in :data:`SHA256`; a file that does
not match is never used (:class:`DataError` with expected and found hash and the way out).
Tests that write their own small IDX files pass ``expected_hashes`` (a table for the four files)
instead of the canonical table -- the check itself still runs; there is no switch to skip it.

Splits: train = the first ``n_train - 5000`` training images, validation = the last 5,000
(as in Geron's textbook), test = the 10,000 t10k images. Pixels are scaled to [0, 1] float32 and
flattened (784 features); labels are int32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dnnbench.data.base import DataError, Dataset, DataUnavailable
from dnnbench.data.cache import cache_dir
from dnnbench.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from dnnbench.files import atomic_writer, sha256_file

ENV_VAR = "DNNBENCH_DATA_DIR"
N_VAL = 5000
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}
NAMES = tuple(SHA256)

# opener(url) -> a context manager yielding a file-like object with .read(n) (urlopen's result).
Opener = Callable[[str], Any]


def _default_opener(url: str) -> Any:
    return urllib.request.urlopen(url, timeout=30)


def _check_name(name: str) -> None:
    if name not in SHA256:
        raise ValueError(f"unknown MNIST-family data set {name!r}; choose from {', '.join(NAMES)}")


def candidate_folders(name: str,
                      data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(origin, folder) pairs in lookup order; origin is "--data-dir", the env var or "cache"."""
    _check_name(name)
    out: list[tuple[str, Path]] = []
    for origin, root in (("--data-dir", data_dir), (ENV_VAR, os.environ.get(ENV_VAR) or None)):
        if root:
            root = Path(root).expanduser()
            out += [(origin, root / name), (origin, root)]
    out.append(("cache", cache_dir() / name))
    return out


def _other_family(name: str, folder: Path) -> str | None:
    """The other family whose canonical train labels ``folder`` holds (the names are shared)."""
    found = sha256_file(folder / TRAIN_LABELS)  # 28 KiB: cheap
    return next((o for o in NAMES if o != name and SHA256[o][TRAIN_LABELS] == found), None)


def locate(name: str,
           data_dir: str | os.PathLike | None = None) -> tuple[Path | None, str, list[str]]:
    """Find the first folder holding all four files: ``(folder or None, origin, places looked)``.

    A folder that holds the files directly (not in a ``<name>/`` subfolder) is skipped when they
    are the other family's canonical files.
    """
    looked = []
    for origin, folder in candidate_folders(name, data_dir):
        present = [f for f in FILES if (folder / f).is_file()]
        if len(present) < len(FILES):
            missing = ", ".join(f for f in FILES if f not in present)
            note = "missing" if not present else f"incomplete, lacks {missing}"
        elif folder.name != name and (other := _other_family(name, folder)):
            note = f"holds {other}, not {name}"
        else:
            return folder, origin, looked
        looked.append(f"{folder} ({origin}: {note})")
    return None, "", looked


def unavailable_message(name: str, looked: list[str], reason: str = "") -> str:
    return (f"data set '{name}' is not available{f' ({reason})' if reason else ''}; looked in "
            f"{'; '.join(looked)}. Options: --data-dir FOLDER (holding {name}/), "
            f"{ENV_VAR}=FOLDER, `dnnbench data fetch {name}`, "
            "or --dataset digits (bundled, offline).")


def file_checks(name: str, folder: str | os.PathLike,
                expected_hashes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Hash each of the four files in ``folder``: rows of file, path, expected, found, ok."""
    expected = SHA256[name] if expected_hashes is None else expected_hashes
    rows = []
    for f in FILES:
        path = Path(folder) / f
        found = sha256_file(path) if path.is_file() else "missing"
        rows.append({"file": f, "path": str(path), "expected": expected[f], "found": found,
                     "ok": found == expected[f]})
    return rows


def mismatch_message(name: str, row: Mapping[str, Any]) -> str:
    return (f"{row['path']}: SHA-256 mismatch for {name} (expected {row['expected']}, found "
            f"{row['found']}); the file was not used. Delete it and run `dnnbench data fetch "
            f"{name}`, or point --data-dir / {ENV_VAR} at a folder with the original files.")


def verified_hashes(name: str, folder: str | os.PathLike,
                    expected_hashes: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return {file: sha256} for the four files, or raise DataError on the first mismatch."""
    rows = file_checks(name, folder, expected_hashes)
    for row in rows:
        if not row["ok"]:
            raise DataError(mismatch_message(name, row))
    return {r["file"]: r["found"] for r in rows}


def _read_pair(folder: Path, images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / images_file, magic=IMAGES_MAGIC)
    labels = read_idx(folder / labels_file, magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{folder / images_file} holds {len(images)} images but "
                        f"{folder / labels_file} holds {len(labels)} labels")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DataError(f"{folder / labels_file}: label {labels[bad[0]]} at index {bad[0]} is "
                        f"out of range 0..9 ({bad.size} such labels)")
    return images.reshape(len(images), -1), labels.astype(np.int32)


DECODED = "decoded"  # the cache's subfolder of decoded arrays


def _decoded_path(name: str, hashes: Mapping[str, str]) -> Path:
    """Where the decoded arrays of files with these hashes are kept (named by a digest of the
    four hashes: other files, other arrays)."""
    key = hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()[:20]
    return cache_dir() / DECODED / f"{name}-{key}.npz"


def _read_all(name: str, folder: Path, hashes: Mapping[str, str]):
    """(x_train, y_train, x_test, y_test), pixels scaled to [0, 1]: decoded from the IDX files
    once (gunzip and parsing: ~1 s for MNIST) and then read from the cache's uncompressed copy
    of the uint8 arrays, which the files' verified hashes name (``allow_pickle=False``: plain
    arrays only). A damaged or unwritable copy is ignored (decoded again)."""
    path = _decoded_path(name, hashes)
    arrays = None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        if arrays[0].dtype != np.uint8 or len(arrays[0]) != len(arrays[1]) or \
                len(arrays[2]) != len(arrays[3]):
            arrays = None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        arrays = None
    if arrays is None:
        arrays = (*_read_pair(folder, TRAIN_IMAGES, TRAIN_LABELS),
                  *_read_pair(folder, TEST_IMAGES, TEST_LABELS))
        try:
            with atomic_writer(path) as out:
                np.savez(out, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays,
                                         strict=True)))
        except OSError:  # a read-only or full cache: decoded each time, as before
            pass
    x_train, y_train, x_test, y_test = arrays
    scale = np.float32(255)
    return (x_train.astype(np.float32) / scale, y_train, x_test.astype(np.float32) / scale,
            y_test)


def load_folder(name: str, folder: str | os.PathLike, *,
                expected_hashes: Mapping[str, str] | None = None, n_val: int = N_VAL) -> Dataset:
    """Load ``name`` from the four files in ``folder`` after checking their SHA-256 (decoded
    arrays kept in the user cache: :func:`_read_all`)."""
    _check_name(name)
    folder = Path(folder)
    hashes = verified_hashes(name, folder, expected_hashes)
    x_train, y_train, x_test, y_test = _read_all(name, folder, hashes)
    if not 0 < n_val < len(x_train):
        raise DataError(f"{folder / TRAIN_IMAGES}: {len(x_train)} training images, too few for "
                        f"a validation split of {n_val}")
    cut = len(x_train) - n_val
    return Dataset(name=name, x_train=x_train[:cut], y_train=y_train[:cut],
                   x_val=x_train[cut:], y_val=y_train[cut:], x_test=x_test, y_test=y_test,
                   n_classes=10, hashes=hashes, source=str(folder),
                   class_names=CLASS_NAMES[name])


def _download_file(url: str, target: Path, expected: str, opener: Opener, progress: Any) -> None:
    h = hashlib.sha256()
    with contextlib.closing(opener(url)) as resp, atomic_writer(target) as out:
        headers = getattr(resp, "headers", None)
        total = headers.get("Content-Length") if headers is not None else None
        task = progress.add_task(target.name, total=int(total) if total else None)
        try:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                h.update(chunk)
                out.write(chunk)
                progress.advance(task, len(chunk))
        finally:
            progress.remove_task(task)
        if h.hexdigest() != expected:
            raise DataError(f"SHA-256 mismatch (expected {expected}, found {h.hexdigest()})")


def fetch(name: str, *, dest: str | os.PathLike | None = None, opener: Opener | None = None,
          expected_hashes: Mapping[str, str] | None = None, progress: bool = True,
          mirrors: tuple[str, ...] | None = None) -> Path:
    """Download the four files of ``name`` into ``dest`` (default: the cache) and return it.

    Files already there with the right hash are kept. Each file is tried on every mirror in turn;
    it is streamed into a temporary file, hashed, and renamed into place only when the hash
    matches, so a failed or interrupted download never leaves a partial file. ``opener`` (default
    ``urllib.request.urlopen``) is injectable for tests. Raises DataUnavailable if a file cannot
    be had from any mirror.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    _check_name(name)
    dest = Path(dest) if dest is not None else cache_dir() / name
    expected = SHA256[name] if expected_hashes is None else expected_hashes
    opener = opener or _default_opener
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(stderr=True), disable=not progress,
                   transient=True)
    with bar:
        for f in FILES:
            target = dest / f
            if target.is_file() and sha256_file(target) == expected[f]:
                continue
            errors = []
            for mirror in mirrors or MIRRORS[name]:
                try:
                    _download_file(mirror + f, target, expected[f], opener, bar)
                    break
                except Exception as e:  # noqa: BLE001 -- network, HTTP or hash: try the next mirror
                    errors.append(f"{mirror + f}: {e}")
            else:
                raise DataUnavailable(f"could not download {f} for {name}: {'; '.join(errors)}")
    return dest


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True,
         expected_hashes: Mapping[str, str] | None = None, n_val: int = N_VAL,
         opener: Opener | None = None, progress: bool = True) -> Dataset:
    """Find (or, if ``download``, fetch into the cache) and load MNIST or Fashion-MNIST."""
    folder, origin, looked = locate(name, data_dir)
    if folder is None:
        origin = "cache"
        if not download:
            raise DataUnavailable(unavailable_message(name, looked, "download disabled"))
        try:
            folder = fetch(name, opener=opener, expected_hashes=expected_hashes, progress=progress)
        except DataUnavailable as e:
            raise DataUnavailable(unavailable_message(name, looked, str(e))) from None
    ds = load_folder(name, folder, expected_hashes=expected_hashes, n_val=n_val)
    # recorded in the results' metadata: where the files came from, without this machine's
    # absolute paths (the SHA-256 hashes identify the data)
    shown = {ENV_VAR: f"${ENV_VAR}/{name}", "cache": f"the dnnbench cache ({name})"}
    return dataclasses.replace(ds, source=shown.get(origin, str(folder)))


def status(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Status for ``data list``: "found: FOLDER", "cached: FOLDER" or "missing" (not hashed)."""
    folder, origin, _ = locate(name, data_dir)
    if folder is None:
        return "missing"
    return f"{'cached' if origin == 'cache' else 'found'}: {folder}"
