"""Read and write IDX files (the MNIST format), gzipped or not, with clear errors.

An IDX file is a big-endian header -- two zero bytes, a type code (0x08 = unsigned byte) and
the number of dimensions -- then one 32-bit size per dimension, then the payload. MNIST-family
files use two magic numbers: ``0x00000803`` (images, 3-D uint8) and ``0x00000801`` (labels,
1-D uint8). Every problem raises :class:`DataError` with the file name and what is wrong.
"""

from __future__ import annotations

import gzip as _gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dnnbench.data.base import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
KNOWN_MAGICS = {IMAGES_MAGIC: "images (3-D uint8)", LABELS_MAGIC: "labels (1-D uint8)"}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzipped
        return raw
    try:
        return _gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (the download was probably cut short)")
    except (OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip stream ({e})") from None


def read_idx(path: str | os.PathLike, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a uint8 array.

    ``magic`` is the expected magic number (``IMAGES_MAGIC`` / ``LABELS_MAGIC``); without it
    either is accepted. Raises DataError for an unreadable file, a corrupt or truncated gzip
    stream, a wrong magic number, or a payload whose size does not match the header.
    """
    path = Path(path)
    try:
        data = _read_bytes(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    (found,) = struct.unpack(">I", data[:4])
    allowed = {magic: KNOWN_MAGICS.get(magic, "")} if magic is not None else KNOWN_MAGICS
    if found not in allowed:
        want = " or ".join(f"0x{m:08x} {d}".strip() for m, d in allowed.items())
        raise DataError(f"{path}: wrong magic number 0x{found:08x}, expected {want}")
    ndim = found & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected, got = int(np.prod(shape, dtype=np.int64)), len(data) - header
    if got != expected:
        what = "truncated payload" if got < expected else "trailing bytes after payload"
        raise DataError(f"{path}: {what}: header declares shape {shape} ({expected} bytes), "
                        f"file holds {got} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> Path:
    """Write a uint8 array as an IDX file (magic ``0x0000080N``, N = ndim), gzipped by default.

    Used by tests to create data files; the written bytes are deterministic (gzip mtime 0).
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer supports uint8 only, got {array.dtype}")
    payload = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    payload += np.ascontiguousarray(array).tobytes()
    if gzip:
        payload = _gzip.compress(payload, mtime=0)
    path = Path(path)
    path.write_bytes(payload)
    return path
