"""Unit files without pickle (issue 28): frames round-trip through an .npz archive with a JSON
manifest, and a crafted file can neither run code nor pass as a table."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest

from dnnbench.results import frames


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "arm": ["a=1", "a=2", "a=3"], "seed": np.array([0, 1, 2], dtype=np.int64),
        "acc": [0.5, np.nan, np.inf], "ok": [True, False, True],
        "steps": pd.array([10, None, 30], dtype="Int64"),
        "maybe": pd.array([True, None, False], dtype="boolean"),
        "level": pd.Series(["x", None, np.nan], dtype=object), "mixed": [1, 2.5, "z"], "shape": [(1, 2), [3], None],
        "f32": np.array([0.1, 0.2, 0.3], dtype=np.float32), "empty": [None, None, None]})


def test_frames_round_trip_with_dtypes_and_missing_values():
    runs, curves = _frame(), pd.DataFrame({"step": [1, 2], "loss": [2.3, 1.1]})
    shifted = runs.set_index(pd.Index([5, 6, 7]))
    header, back = frames.decode(frames.encode(
        {"runs": runs, "curves": curves, "shifted": shifted, "none": runs.iloc[0:0]},
        {"material": "m", "n": 2}))
    assert header == {"material": "m", "n": 2}
    pd.testing.assert_frame_equal(back["runs"], runs)
    pd.testing.assert_frame_equal(back["curves"], curves)
    pd.testing.assert_frame_equal(back["shifted"], shifted)
    assert list(back["none"].columns) == list(runs.columns) and back["none"].empty
    assert back["runs"]["level"].tolist()[1] is None and np.isnan(back["runs"]["level"][2])


def test_a_crafted_or_foreign_file_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    for blob in (pickle.dumps({"runs": Evil()}), b"not a zip", b""):
        with pytest.raises(ValueError, match="not a table archive"):
            frames.decode(blob)
    # an .npz holding an object array (a pickle inside) is refused too
    buf = io.BytesIO()
    np.savez(buf, manifest=np.frombuffer(b'{"header": {}, "frames": {}}', dtype=np.uint8),
             c0=np.array([Evil()], dtype=object))
    with pytest.raises(ValueError, match="not a table archive"):
        frames.decode(buf.getvalue())
    assert not marker.exists()


def test_values_that_cannot_be_stored_plainly_are_refused():
    with pytest.raises(TypeError, match="cannot be stored without pickle"):
        frames.encode({"runs": pd.DataFrame({"x": [object()]})})
