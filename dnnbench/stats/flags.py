"""Flags (true/false columns) of result tables, as booleans or as the text a CSV holds."""

from __future__ import annotations

import numpy as np

TRUE_TEXT = ("true", "1", "1.0", "yes", "on")


def flag(series) -> np.ndarray:
    """A column of flags as a boolean array: booleans as they are, text by TRUE_TEXT (any
    other value, an empty cell included, is false)."""
    if series.dtype == bool:
        return series.to_numpy(bool)
    return series.astype(str).str.strip().str.lower().isin(TRUE_TEXT).to_numpy()
