import gzip
import struct

import numpy as np
import pytest

from dnnbench.data import DataError
from dnnbench.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, write_idx


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4)])
def test_round_trip(tmp_path, compress, shape):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = write_idx(tmp_path / "f.idx", a, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    b = read_idx(path)
    assert b.dtype == np.uint8 and b.shape == shape
    np.testing.assert_array_equal(a, b)


def test_header_layout(tmp_path):
    path = write_idx(tmp_path / "l", np.array([3, 1, 4], np.uint8), gzip=False)
    assert path.read_bytes() == struct.pack(">II", LABELS_MAGIC, 3) + bytes([3, 1, 4])


def test_expected_magic_checked(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.zeros(4, np.uint8))
    assert read_idx(path, magic=LABELS_MAGIC).shape == (4,)
    with pytest.raises(DataError, match=r"labels\.gz: wrong magic number 0x00000801, expected "
                                        r"0x00000803"):
        read_idx(path, magic=IMAGES_MAGIC)


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 0x00000D01, 1) + b"\0" * 8))
    with pytest.raises(DataError, match=r"bad\.gz: wrong magic number 0x00000d01"):
        read_idx(path)


def test_truncated_payload(tmp_path):
    raw = struct.pack(">IIII", IMAGES_MAGIC, 10, 4, 4) + b"\0" * 100  # needs 160 bytes
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match=r"short\.gz: truncated payload.*160 bytes.*100 bytes"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(struct.pack(">II", LABELS_MAGIC, 2) + b"\0" * 3)
    with pytest.raises(DataError, match="long: trailing bytes"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "cut.gz", np.arange(200, dtype=np.uint8).reshape(2, 10, 10))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match=r"cut\.gz: truncated gzip stream"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = write_idx(tmp_path / "rot.gz", np.arange(200, dtype=np.uint8).reshape(2, 10, 10))
    raw = bytearray(path.read_bytes())
    raw[12:30] = b"\xff" * 18  # clobber the deflate stream
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"rot\.gz: corrupt gzip stream"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: cannot read"):
        read_idx(tmp_path / "nope.gz")
