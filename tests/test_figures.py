"""Loading result sets for figures and writing figures (dnnbench.report.figures); what each
figure kind plots is tested with its maker (tests/test_plots.py, tests/test_transfer.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from dnnbench.report import figures as F
from dnnbench.results.io import SchemaError
from dnnbench.results.resultset import load_result

RESULTS = Path(__file__).parent / "fixtures" / "results"


def test_load_results_reads_the_common_schema():
    opt = load_result(RESULTS / "optimizers-digits-runs.csv")
    assert (opt.experiment, opt.dataset, opt.stem) == ("optimizers", "digits",
                                                      "optimizers-digits")
    assert opt.runs["reached"].dtype == bool  # an experiment file's results, checked
    transfer = load_result(RESULTS / "transfer-digits-runs.csv")
    assert (transfer.experiment, transfer.dataset) == ("transfer", "digits")
    assert transfer.runs["diverged"].dtype == bool and "stage" in transfer.runs.columns


def test_save_figure_writes_png_and_svg_and_the_same_figure_gives_the_same_bytes(tmp_path):
    def figure():
        fig = Figure(figsize=(3, 2))
        fig.subplots().plot([0, 1, 2], [1, 0, 2])
        return fig

    paths = F.save_figure(figure(), tmp_path / "x")
    assert [p.name for p in paths] == ["x.png", "x.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in paths[1].read_bytes()[:2000]
    assert F.figure_bytes(figure(), "png") == paths[0].read_bytes()
    assert F.figure_bytes(figure(), "svg") == paths[1].read_bytes()


def test_load_results_refuses_unknown_results(tmp_path):
    shutil.copy(RESULTS / "transfer-digits-runs.csv", tmp_path / "x-digits-runs.csv")
    with pytest.raises(SchemaError, match="metadata file is missing"):
        load_result(tmp_path / "x-digits-runs.csv")
    (tmp_path / "x-digits-meta.json").write_text('{"schema_version": 1, "experiment": "x"}')
    with pytest.raises(SchemaError, match="unknown experiment 'x'"):
        load_result(tmp_path / "x-digits-runs.csv")
    assert load_result(tmp_path / "x-digits-runs.csv", require_known=False).experiment == "x"
