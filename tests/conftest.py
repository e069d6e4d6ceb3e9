"""Shared fixtures. Data tests never touch the network or the user's real cache."""

from __future__ import annotations

import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from dnnbench.data.idx import write_idx
from dnnbench.data.mnist import FILES, sha256_file


def make_mnist_files(folder: Path, *, n_train: int = 60, n_test: int = 20, side: int = 4,
                     seed: int = 0) -> dict[str, str]:
    """Write the four MNIST-family files (tiny, random) into ``folder``; return their SHA-256s.

    The returned table is what tests pass as ``expected_hashes`` to the loaders, since these
    files cannot match the canonical hashes.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
              (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
              (np.arange(n_test) % 10).astype(np.uint8)]
    for name, array in zip(FILES, arrays, strict=True):
        write_idx(folder / name, array)
    return {name: sha256_file(folder / name) for name in FILES}


class FakeOpener:
    """Stands in for ``urllib.request.urlopen``: serves ``files`` (file name -> bytes) from memory
    under every mirror URL except those starting with a prefix in ``broken``; records calls."""

    def __init__(self, files: dict[str, bytes], broken=()):
        self.files, self.broken, self.calls = files, tuple(broken), []

    def __call__(self, url: str):
        self.calls.append(url)
        if self.broken and url.startswith(self.broken):
            raise urllib.error.URLError("connection refused")
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """No DNNBENCH_DATA_DIR, an empty user cache under tmp_path; returns the cache root."""
    monkeypatch.delenv("DNNBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "dnnbench"


@pytest.fixture
def fake_mnist(tmp_path, data_env) -> tuple[Path, dict[str, str]]:
    """A data folder ``root`` whose ``mnist/`` holds tiny generated files; (root, their hashes)."""
    root = tmp_path / "data"
    return root, make_mnist_files(root / "mnist")


FAST_COMPILE = "--xla_backend_optimization_level=0"


def pytest_configure(config):
    """The default tier compiles at XLA's backend optimization level 0 (in this process, its
    workers and the CLI processes tests start): compiles take ~35% less time and the tests'
    nets are tiny, so a cold suite is mostly compiles. The slow tier (``-m slow``), and every
    real run, compile with XLA's defaults; DNNBENCH_TEST_XLA_DEFAULTS=1 keeps them for the
    default tier too. (XLA_FLAGS is part of the compile-cache and kept-program keys: the two
    never share an entry.)"""
    if "not slow" in (config.option.markexpr or "") and \
            os.environ.get("DNNBENCH_TEST_XLA_DEFAULTS") != "1" and \
            FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()


@pytest.fixture(scope="session", autouse=True)
def _compile_cache():
    """Share JAX's persistent compilation cache across tests (and test runs): identical programs
    compiled by different tests are compiled once."""
    from dnnbench.train.arm import enable_compile_cache

    enable_compile_cache()

