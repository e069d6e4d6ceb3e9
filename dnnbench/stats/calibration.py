"""Calibration of classifier predictions: expected calibration error over equal-width bins of
confidence (Guo et al. 2017, "On calibration of modern neural networks").

A prediction's confidence is its top probability; bin ``b`` of ``n_bins`` holds the
confidences in ``(b / n_bins, (b + 1) / n_bins]`` (a confidence of exactly 0 falls in bin 0).
ECE = sum over bins of (examples in the bin / all examples) x |accuracy - mean confidence|.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

N_BINS = 15


class Calibration(NamedTuple):
    ece: float
    count: np.ndarray  # (n_bins,) examples per bin
    confidence: np.ndarray  # (n_bins,) mean confidence per bin (NaN where empty)
    accuracy: np.ndarray  # (n_bins,) accuracy per bin (NaN where empty)


def calibration(confidence, correct, n_bins: int = N_BINS) -> Calibration:
    """The reliability diagram's bins and the ECE of predictions with these confidences
    (top probabilities in [0, 1]) and correctness (bool or 0/1)."""
    conf = np.asarray(confidence, float)
    hit = np.asarray(correct, float)
    if conf.shape != hit.shape or conf.ndim != 1 or not conf.size:
        raise ValueError("calibration: confidence and correct must be equal-length 1-d arrays")
    if np.any((conf < 0) | (conf > 1)):
        raise ValueError("calibration: confidences must lie in [0, 1]")
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, conf, n_bins) / count
        accuracy = np.bincount(bins, hit, n_bins) / count
    gaps = np.where(count > 0, np.abs(accuracy - mean_conf), 0.0)
    return Calibration(float(np.sum(count / conf.size * gaps)), count.astype(int), mean_conf,
                       accuracy)
