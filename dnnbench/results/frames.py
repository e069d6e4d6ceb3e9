"""Tables as bytes that load without running code: what the unit store keeps on disk.

A pickle executes whatever a crafted file tells it to when it is loaded; a checksum only
guards against damage. :func:`encode` writes data frames as a NumPy ``.npz`` archive (a zip of
plain arrays, read with ``allow_pickle=False``) plus a JSON manifest: per column its name, its
kind and dtype, so that :func:`decode` gives back the same frames (dtypes, missing values,
column order and index), as ``pandas.testing.assert_frame_equal`` checks in the tests.

Column kinds: ``array`` (a NumPy dtype: floats, integers, booleans), ``masked`` (a pandas
nullable dtype such as ``Int64``: values and a mask), ``string`` (pandas' string dtypes),
``str`` (object columns of strings, their
missing values kept as None, NaN or NA) and ``json`` (object columns of other plain values:
numbers, booleans, strings, lists of them). Anything else is refused (TypeError): a frame
that cannot be written this way is not cached at all rather than cached lossily.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping

import numpy as np
import pandas as pd

MANIFEST = "manifest"


def _null_code(v) -> int:
    """0 for a value; a missing value of an object column: 1 None, 2 NaN, 3 NA."""
    if v is None:
        return 1
    if v is pd.NA:
        return 3
    if isinstance(v, float) and math.isnan(v):
        return 2
    return 0


def _null_value(code: int):
    return {1: None, 2: math.nan, 3: pd.NA}[code]


def _plain(v):
    """``v`` as a JSON value (TypeError for anything that would not come back the same)."""
    if isinstance(v, (bool, np.bool_)):
        return {"b": bool(v)}
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return {"f": float(v).hex()}  # exact, and inf/nan too
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return {"l" if isinstance(v, list) else "t": [_plain(x) for x in v]}
    raise TypeError(f"a value of type {type(v).__name__} cannot be stored without pickle")


def _unplain(v):
    if not isinstance(v, dict):
        return v
    (k, x), = v.items()
    if k == "b":
        return bool(x)
    if k == "f":
        return float.fromhex(x)
    items = [_unplain(y) for y in x]
    return items if k == "l" else tuple(items)


def _column(name: str, s: pd.Series, arrays: dict) -> dict:
    key = f"c{len(arrays)}"
    if isinstance(s.dtype, pd.StringDtype):  # (pandas' string dtypes: "str", "string")
        mask = s.isna().to_numpy()
        arrays[key] = np.array(["" if m else v for v, m in zip(s.tolist(), mask, strict=True)],
                               dtype=str if (~mask).any() else "<U1")
        arrays[key + "m"] = mask
        return {"name": name, "kind": "string", "key": key,
                "dtype": {"storage": s.dtype.storage,
                          "na": "nan" if s.dtype.na_value is not pd.NA else "na"}}
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
        mask = s.isna().to_numpy()
        base = s.dtype.numpy_dtype if hasattr(s.dtype, "numpy_dtype") else np.dtype(object)
        if base == np.dtype(object):
            raise TypeError(f"column {name!r}: dtype {s.dtype} cannot be stored without pickle")
        arrays[key] = s.to_numpy(dtype=base, na_value=base.type(0))
        arrays[key + "m"] = mask
        return {"name": name, "kind": "masked", "dtype": str(s.dtype), "key": key}
    if s.dtype.kind in "fiub":
        arrays[key] = s.to_numpy()
        return {"name": name, "kind": "array", "dtype": s.dtype.str, "key": key}
    if s.dtype != object:
        raise TypeError(f"column {name!r}: dtype {s.dtype} cannot be stored without pickle")
    values = s.tolist()
    codes = np.array([_null_code(v) for v in values], dtype=np.uint8)
    arrays[key + "m"] = codes
    present = [v for v, c in zip(values, codes, strict=True) if not c]
    if all(isinstance(v, str) for v in present):
        arrays[key] = np.array([v if not c else "" for v, c in zip(values, codes, strict=True)],
                               dtype=str if present else "<U1")
        return {"name": name, "kind": "str", "key": key}
    return {"name": name, "kind": "json", "key": key,
            "values": [None if c else _plain(v) for v, c in zip(values, codes, strict=True)]}


def _series(col: dict, n: int, arrays) -> pd.Series:
    kind, key = col["kind"], col["key"]
    if kind == "string":
        dtype = pd.StringDtype(storage=col["dtype"]["storage"],
                               na_value=np.nan if col["dtype"]["na"] == "nan" else pd.NA)
        values = arrays[key].astype(object)
        values[arrays[key + "m"].astype(bool)] = None
        return pd.Series(values, dtype=dtype)
    if kind == "array":
        return pd.Series(arrays[key].astype(np.dtype(col["dtype"]), copy=False))
    if kind == "masked":
        out = pd.Series(arrays[key]).astype(col["dtype"])
        out[arrays[key + "m"].astype(bool)] = pd.NA
        return out
    codes = arrays[key + "m"]
    values = arrays[key].tolist() if kind == "str" else [
        _unplain(v) for v in col["values"]]
    if len(values) != n or len(codes) != n:
        raise ValueError(f"column {col['name']!r} holds {len(values)} values, not {n}")
    return pd.Series([_null_value(c) if c else v for v, c in zip(values, codes, strict=True)],
                     dtype=object)


def encode(frames: Mapping[str, pd.DataFrame], header: Mapping | None = None) -> bytes:
    """``frames`` (name -> frame) and a JSON-able ``header`` as the bytes of an .npz archive."""
    arrays: dict[str, np.ndarray] = {}
    manifest = {"header": dict(header or {}), "frames": {}}
    for fname, df in frames.items():
        if not all(isinstance(c, str) for c in df.columns):
            raise TypeError(f"frame {fname!r}: column names must be strings")
        index = None
        if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
                and df.index.step == 1):
            index = _column("index", df.index.to_series(), arrays)
        manifest["frames"][fname] = {
            "rows": len(df), "index": index,
            "columns": [_column(c, df[c], arrays) for c in df.columns]}
    arrays[MANIFEST] = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode(blob: bytes) -> tuple[dict, dict[str, pd.DataFrame]]:
    """(header, frames) of :func:`encode`'s bytes; ValueError when they are not such an
    archive (never runs code: ``allow_pickle=False``)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        manifest = json.loads(arrays.pop(MANIFEST).tobytes().decode("utf-8"))
        frames = {}
        for fname, spec in manifest["frames"].items():
            n = int(spec["rows"])
            df = pd.DataFrame({c["name"]: _series(c, n, arrays) for c in spec["columns"]},
                              columns=[c["name"] for c in spec["columns"]])
            if spec["index"] is not None:
                df.index = pd.Index(_series(spec["index"], n, arrays))
            elif not spec["columns"]:
                df = pd.DataFrame(index=pd.RangeIndex(n))
            frames[fname] = df
        return manifest["header"], frames
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, UnicodeDecodeError,
            OSError, EOFError, json.JSONDecodeError) as e:
        raise ValueError(f"not a table archive ({type(e).__name__}: {e})") from None
