"""Figures drawn from the fixture results (tests/fixtures/results): what each one plots."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnnbench.report import figures as F
from dnnbench.report.io import SchemaError

RESULTS = Path(__file__).parent / "fixtures" / "results"


@pytest.fixture(scope="module")
def opt():
    return F.load_results(RESULTS / "optimizers-digits-runs.csv")


@pytest.fixture(scope="module")
def transfer():
    return F.load_results(RESULTS / "transfer-digits-runs.csv")


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def data_lines(ax):
    """Lines that plot data (legend proxies have none)."""
    return [ln for ln in ax.lines if len(ln.get_xdata())]


def by_label(ax, label):
    found = [ln for ln in ax.lines if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.lines]
    return found[0]


def assert_labelled(fig, n_seeds: int = 3):
    """A title with the number of seeds, labelled axes (shared axes are labelled once), a
    title per panel, a legend."""
    assert f"{n_seeds} seeds per arm" in fig._suptitle.get_text().replace("\n", " ")
    axes = visible_axes(fig)
    assert any(ax.get_xlabel() for ax in axes) and any(ax.get_ylabel() for ax in axes)
    if len(axes) > 1:
        assert all(ax.get_title() for ax in axes)
    assert fig.legends or all(ax.get_legend() for ax in axes)


def test_load_results_detects_experiments(opt, transfer):
    assert (opt.experiment, opt.dataset, opt.stem) == ("optimizers", "digits",
                                                      "optimizers-digits")
    assert transfer.experiment == "transfer" and len(transfer.curves) > 0
    assert opt.runs["reached"].dtype == bool  # an experiment file's results, checked


def test_transfer_paired(transfer):
    fig = F.transfer_paired_figure(transfer.runs, transfer.dataset)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["pair 0v1 (3 seeds)", "pair 0v2 (3 seeds)",
                                               "pair 0v3 (3 seeds)"]
    assert_labelled(fig)
    for ax in axes:  # one line per seed joining B and B-on-A, plus the mean
        assert len(data_lines(ax)) == 4
        assert "test accuracy" in ax.get_ylabel()
    t = transfer.runs[(transfer.runs["pair"] == "0v1") & (transfer.runs["seed"] == 0)]
    b = t.loc[t["arm"] == "B", "test_accuracy"].iloc[0] * 100
    ba = t.loc[t["arm"] == "B-on-A", "test_accuracy"].iloc[0] * 100
    assert data_lines(axes[0])[0].get_ydata() == pytest.approx([b, ba])


def many_pairs(runs: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` copies of the fixture's pairs under new labels (for the across-pairs figure)."""
    parts = []
    for i in range(k):
        part = runs.copy()
        part["pair"] = part["pair"] + f"-{i}"
        part["test_accuracy"] = np.clip(part["test_accuracy"] + 0.002 * i
                                        * (part["arm"] == "B-on-A"), 0, 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_transfer_gains_few_pairs(transfer):
    fig = F.transfer_gains_figure(transfer.runs, transfer.dataset)
    (ax,) = visible_axes(fig)
    assert_labelled(fig)
    assert len(ax.containers) == 3  # mean gain with CI per pair
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0v1", "0v3", "0v2"]  # by gain
    assert "B-on-A minus B" in ax.get_xlabel()


def test_transfer_gains_distribution_over_many_pairs(transfer):
    runs = many_pairs(transfer.runs, 3)  # 9 pairs
    fig = F.transfer_gains_figure(runs, "digits")
    ax, hist = visible_axes(fig)
    assert len(ax.containers) == 9
    assert sum(p.get_height() for p in hist.patches) == 9  # every pair in the histogram
    assert hist.get_xlabel() and hist.get_ylabel() == "class pairs"


def test_transfer_figures_single_pair_has_no_gain_distribution(transfer):
    rs = F.ResultSet("transfer", "digits", transfer.runs[transfer.runs["pair"] == "0v2"],
                     transfer.curves, transfer.meta, transfer.runs_path)
    assert list(F.make_figures(rs)) == ["paired-accuracy"]
    assert list(F.make_figures(transfer)) == ["paired-accuracy", "gains"]


def test_plot_results_writes_png_and_svg_next_to_the_csvs(tmp_path):
    for suffix in ("runs.csv", "curves.csv", "meta.json"):
        shutil.copy(RESULTS / f"transfer-digits-{suffix}", tmp_path)
    paths = F.plot_results(tmp_path / "transfer-digits-runs.csv")
    assert sorted(p.name for p in paths) == [
        "transfer-digits-gains.png", "transfer-digits-gains.svg",
        "transfer-digits-paired-accuracy.png", "transfer-digits-paired-accuracy.svg"]
    for p in paths:
        assert p.parent == tmp_path and p.stat().st_size > 5000
    png = (tmp_path / "transfer-digits-gains.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "transfer-digits-gains.svg").read_bytes()[:2000]


def test_plot_results_refuses_unknown_results(tmp_path):
    shutil.copy(RESULTS / "transfer-digits-runs.csv", tmp_path / "x-digits-runs.csv")
    with pytest.raises(SchemaError, match="metadata file is missing"):
        F.plot_results(tmp_path / "x-digits-runs.csv")
    (tmp_path / "x-digits-meta.json").write_text('{"schema_version": 1, "experiment": "x"}')
    with pytest.raises(SchemaError, match="unknown experiment 'x'"):
        F.plot_results(tmp_path / "x-digits-runs.csv")
    assert not list(tmp_path.glob("*.png"))
