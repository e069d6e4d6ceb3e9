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
def depth():
    return F.load_results(RESULTS / "depth-sweep-digits-runs.csv")


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


def test_load_results_detects_experiments(depth, opt, transfer):
    assert (depth.experiment, depth.dataset, depth.stem) == ("depth-sweep", "digits",
                                                            "depth-sweep-digits")
    assert opt.experiment == "optimizers" and transfer.experiment == "transfer"
    assert depth.runs["bn"].dtype == bool and len(depth.curves) > 0


def test_steps_vs_depth(depth):
    fig = F.depth_steps_figure(depth.runs, depth.dataset)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["activation: relu", "activation: sigmoid"]
    assert_labelled(fig)
    assert all("steps to 90% test accuracy" in ax.get_ylabel() for ax in axes)
    relu, sigmoid = axes
    for ax in axes:  # two median lines (no BN, BN) and the budget
        assert len(ax.lines) == 3
        assert len(ax.collections) >= 2  # one interval band per arm
        assert ax.get_yscale() == "log"  # medians span tens to thousands of steps
        assert ax.get_ylim()[1] > 80  # the budget is in view
    bn = by_label(relu, "BN: median")
    assert list(bn.get_xdata()) == [1, 2, 3]
    assert list(bn.get_ydata()) == [30, 20, 25]  # KM medians of the fixture
    # sigmoid without BN never reaches its median: open triangles at the budget, no line
    assert np.isnan(by_label(sigmoid, "no BN: median").get_ydata()).all()
    (missing,) = [c for c in sigmoid.collections if c.get_label() == "no BN: not reached"]
    assert missing.get_offsets().tolist() == [[1, 80], [2, 80], [3, 80]]
    assert fig.legends, "a figure-level legend"


def inside_figure(fig, artist) -> bool:
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return (box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1
            and box.y1 <= page.y1 + 1)


def test_steps_vs_depth_single_activation_fits_its_data(depth):
    """One activation, every median and interval bounded: the legend fits in the figure and
    the y axis ends just above the data, not at the budget far above it."""
    relu = depth.runs[depth.runs["activation"] == "relu"]
    fig = F.depth_steps_figure(relu, depth.dataset)
    (ax,) = visible_axes(fig)
    assert inside_figure(fig, fig.legends[0])
    s = F.depth_summary(relu)
    top = np.nanmax(s[["median_steps", "steps_low", "steps_high"]].to_numpy(float))
    assert s["steps_high"].notna().all() and top < relu["max_steps"].max()
    assert top <= ax.get_ylim()[1] <= 1.5 * top
    assert "step budget" not in [ln.get_label() for ln in ax.lines]


def test_timing_vs_depth(depth):
    fig = F.depth_timing_figure(depth.runs, depth.dataset)
    step_ax, ttt_ax = visible_axes(fig)
    assert_labelled(fig)
    assert len(step_ax.lines) == len(ttt_ax.lines) == 4  # (relu, sigmoid) x (no BN, BN)
    assert "ms per training step" in step_ax.get_ylabel()
    line = by_label(step_ax, "relu, BN")
    expected = depth.runs[(depth.runs["activation"] == "relu") & depth.runs["bn"]] \
        .groupby("depth")["step_ms"].first().to_numpy()
    assert np.allclose(line.get_ydata(), expected)
    # time to target = median steps x step time; NaN where the median is not reached
    assert np.isnan(by_label(ttt_ax, "sigmoid, no BN").get_ydata()).all()
    assert ttt_ax.get_yscale() == "log"  # slow arms must not squash the fast ones


def test_learning_curves_at_deepest_depth(depth):
    fig = F.depth_curves_figure(depth.runs, depth.curves, depth.dataset)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["activation: relu, depth 3",
                                               "activation: sigmoid, depth 3"]
    assert_labelled(fig)
    for ax in axes:
        assert ax.get_ylabel() == "test accuracy"
        for band in ax.collections:  # interquartile bands of accuracies: within [0, 1]
            y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
            assert np.nanmin(y) >= 0 and np.nanmax(y) <= 1
    med = by_label(axes[0], "BN: median of the seeds still training")
    c = depth.curves[depth.curves["arm"] == "act=relu,depth=3,bn=on"]
    steps = np.sort(depth.curves[depth.curves["arm"].str.startswith("act=relu,depth=3")]
                    ["step"].unique())
    table = c.pivot_table(index="step", columns="seed", values="test_accuracy").reindex(steps)
    # a seed that reached the target stopped: it is not carried on at its last value
    running = table.notna().sum(axis=1).to_numpy()
    assert running.max() == 3 and running.min() < 3
    expected = np.where(running >= 2, table.median(axis=1).to_numpy(), np.nan)
    assert np.allclose(med.get_ydata(), expected, equal_nan=True)
    assert fig.legends and inside_figure(fig, fig.legends[0])


def test_learning_curves_at_chosen_depth(depth):
    fig = F.depth_curves_figure(depth.runs, depth.curves, depth.dataset, depth=1)
    assert visible_axes(fig)[0].get_title() == "activation: relu, depth 1"
    with pytest.raises(ValueError, match="no runs at depth 9"):
        F.depth_curves_figure(depth.runs, depth.curves, depth.dataset, depth=9)


def test_kaplan_meier_curves(depth):
    fig = F.depth_km_figure(depth.runs, depth.dataset)
    axes = visible_axes(fig)
    assert len(axes) == 6  # 2 activations x 3 depths
    assert_labelled(fig)
    for ax in axes:  # no BN, BN, and the median level
        assert len(ax.lines) == 3
        assert ax.get_xscale() == "log" and ax.get_xlim()[0] > 0
    ax = axes[3]
    assert ax.get_title() == "sigmoid, depth 1\nreached: no BN 1/3, BN 3/3"
    no_bn = by_label(ax, "no BN")
    assert no_bn.get_ydata()[-1] == pytest.approx(1 / 3)  # one of three seeds reached
    assert by_label(ax, "BN").get_ydata()[-1] == pytest.approx(1.0)


def test_kaplan_meier_seven_depths_stay_readable(depth):
    """Seven depths: at most four panels a row, one figure legend of readable size."""
    runs = pd.concat([depth.runs.assign(depth=depth.runs["depth"] + k) for k in (0, 3)]
                     + [depth.runs[depth.runs["depth"] == 1].assign(depth=7)])
    fig = F.depth_km_figure(runs, depth.dataset)
    axes = visible_axes(fig)
    assert len(axes) == 14 and len(fig.legends) == 1
    assert all(ax.get_legend() is None for ax in axes)
    assert min(t.get_fontsize() for t in fig.legends[0].get_texts()) >= 8
    assert min(ax.title.get_fontsize() for ax in axes) >= 8
    fig.canvas.draw()
    assert min(ax.get_window_extent().width for ax in axes) > 150  # pixels
    assert inside_figure(fig, fig.legends[0])
    titles = [ax.title.get_window_extent() for ax in axes]  # no title runs into another
    assert not any(a.overlaps(b) for i, a in enumerate(titles) for b in titles[i + 1:])


def test_optimizer_loss_curves(opt):
    fig = F.optimizer_loss_figure(opt.runs, opt.curves, opt.dataset)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["training loss", "validation loss"]
    assert_labelled(fig)
    n_arms = opt.runs["arm"].nunique()
    assert n_arms == 8
    for ax in axes:
        assert len(ax.lines) == n_arms and ax.get_yscale() == "log"
        assert "95% CI" in ax.get_ylabel()
    labels = {ln.get_label() for ln in axes[0].lines}
    assert {"sgd lr=0.001", "adam (tuned) lr=0.01"} <= labels
    # the line is the geometric mean across seeds of the curve at each step
    c = opt.curves[opt.curves["arm"] == "sgd/default"]
    expected = c.groupby("step")["train_loss"].apply(lambda v: np.exp(np.log(v).mean()))
    assert np.allclose(by_label(axes[0], "sgd lr=0.001").get_ydata(), expected.to_numpy())


def test_speed_vs_quality(opt):
    fig = F.optimizer_tradeoff_figure(opt.runs, opt.dataset)
    (ax,) = visible_axes(fig)
    assert_labelled(fig)
    assert len(ax.containers) == 8  # one errorbar per arm
    assert "Kaplan-Meier median" in ax.get_xlabel() and "93.1%" in ax.get_xlabel()
    assert "final validation accuracy" in ax.get_ylabel()
    s = F.optimizer_summary(opt.runs)
    budget = opt.runs["max_steps"].max()
    adam = s[s["arm"] == "adam/tuned"].iloc[0]
    (bar,) = [b for b in ax.containers if b.get_label().startswith("adam (tuned)")]
    x, y = bar.lines[0].get_data()
    # at its median, spread sideways by at most a few DODGEs when medians tie
    assert x[0] == pytest.approx(adam["median_steps"], abs=4 * F.DODGE * budget)
    assert y[0] == pytest.approx(adam["acc"])
    # an arm that never reached its median sits at the budget
    (sgd,) = [b for b in ax.containers if b.get_label().startswith("sgd lr=0.001")]
    assert sgd.lines[0].get_xdata()[0] == pytest.approx(budget, abs=4 * F.DODGE * budget)
    # no marker hides another: centres at least half a marker apart on the page
    fig.canvas.draw()
    pts = np.array([ax.transData.transform([b.lines[0].get_xdata()[0],
                                            b.lines[0].get_ydata()[0]]) for b in ax.containers])
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(pts)) * 1e9
    assert gaps.min() > 5
    assert len(ax.texts) == len(s)  # every marker named


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
