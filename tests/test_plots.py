"""The generic figure kinds (dnnbench.report.plots), drawn from the depth-sweep fixture in the
common schema (tests/fixtures/results): what each one plots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from _figures import by_label, fixture_input, inside_figure, visible_axes

from dnnbench import definition
from dnnbench.analysis.summary import summarize
from dnnbench.report import figure_kinds, plots


@pytest.fixture(scope="module")
def depth():
    return fixture_input("depth-sweep-digits")


def test_fixture_layout(depth):
    assert plots.layout(depth.exp) == ("depth", "bn", "activation")
    assert depth.exp.figures == ("metric", "kaplan-meier", "curves", "timing")


def test_metric_steps_vs_depth_marks_medians_not_reached(depth):
    (fig,) = plots.metric_figure(depth).values()
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["activation=relu", "activation=sigmoid"]
    assert "3 seeds per arm" in fig._suptitle.get_text()
    summary = summarize(depth.exp, depth.runs)
    for ax, act in zip(axes, ("relu", "sigmoid"), strict=True):
        assert [int(float(t.get_text())) for t in ax.get_xticklabels()] == [1, 2, 3]
        for k, (bn, line) in enumerate(zip(("off", "on"), ax.containers, strict=True)):
            s = summary[(summary["activation"] == act) & (summary["bn"] == bn)]
            y = line.lines[0].get_ydata()
            assert np.allclose(y, s["median_steps"].to_numpy(float), equal_nan=True)
    # medians not reached (by half of the seeds): open triangles at the budget
    s = summary[(summary["activation"] == "sigmoid") & (summary["bn"] == "off")]
    missing = s.loc[s["median_steps"].isna(), "depth"].astype(float).to_numpy()
    assert len(missing)  # the fixture has some
    (marks,) = [c for c in axes[1].collections if type(c).__name__ == "PathCollection"]
    assert np.allclose(marks.get_offsets()[:, 1], 80)
    assert np.allclose(marks.get_offsets()[:, 0], missing, atol=0.1)


def test_kaplan_meier_a_curve_per_bn_level_a_panel_per_other_combination(depth):
    fig = plots.km_figure(depth)
    axes = visible_axes(fig)
    assert len(axes) == 6  # 3 depths x 2 activations
    assert len(fig.legends) == 1 and inside_figure(fig, fig.legends[0])
    for ax in axes:  # bn off, on, and the half-of-the-seeds level
        assert len(ax.lines) == 3 and ax.get_xscale() == "log" and ax.get_xlim()[0] > 0
    ax = next(a for a in axes if a.get_title().startswith("activation=sigmoid, depth=1"))
    g = depth.runs[(depth.runs["activation"] == "sigmoid") & (depth.runs["depth"] == 1)]
    for bn in ("off", "on"):
        share = g[g["bn"] == bn]["reached"].mean()
        assert by_label(ax, f"bn={bn}").get_ydata()[-1] == pytest.approx(share)
        assert f"{bn} {int(share * 3)}/3" in ax.get_title()


def test_kaplan_meier_panels_stay_readable_with_seven_depths(depth):
    runs = pd.concat([depth.runs.assign(depth=depth.runs["depth"] + k) for k in (0, 3)]
                     + [depth.runs[depth.runs["depth"] == 1].assign(depth=7)])
    exp = definition.override(depth.exp, {"depth": [1, 2, 3, 4, 5, 6, 7]})
    fig = plots.km_figure(dataclasses.replace(depth, exp=exp, runs=runs))
    axes = visible_axes(fig)
    assert len(axes) == 14 and len(fig.legends) == 1
    fig.canvas.draw()
    assert min(ax.get_window_extent().width for ax in axes) > 150  # pixels
    titles = [ax.title.get_window_extent() for ax in axes]  # no title runs into another
    assert not any(a.overlaps(b) for i, a in enumerate(titles) for b in titles[i + 1:])


def test_curves_at_the_deepest_net_median_of_running_seeds(depth):
    fig = plots.curves_figure(depth)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["activation=relu", "activation=sigmoid"]
    assert "at depth=3" in fig._suptitle.get_text()
    med = by_label(axes[0], "bn=on")
    steps = np.sort(depth.curves["step"].unique())
    table = depth.curves[depth.curves["arm"] == "depth=3,bn=on,activation=relu"].pivot_table(
        index="step", columns="seed", values="eval_accuracy").reindex(steps)
    running = table.notna().sum(axis=1).to_numpy()
    assert running.max() == 3 and running.min() < 3  # stopped seeds are not carried on
    expected = np.where(running >= 2, table.median(axis=1).to_numpy(), np.nan)
    assert np.allclose(med.get_ydata(), expected, equal_nan=True)
    for band in axes[0].collections:  # interquartile bands of accuracies: within [0, 1]
        y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
        assert np.nanmin(y) >= 0 and np.nanmax(y) <= 1


def test_timing_step_time_and_time_to_target(depth):
    fig = plots.timing_figure(depth)
    step_ax, ttt_ax = visible_axes(fig)
    assert len(step_ax.lines) == len(ttt_ax.lines) == 4  # (bn off/on) x (relu, sigmoid)
    line = by_label(step_ax, "bn=on, activation=relu")
    r = depth.runs
    expected = r[(r["activation"] == "relu") & (r["bn"] == "on")].groupby("depth")[
        "step_ms"].first().to_numpy()
    assert np.allclose(line.get_ydata(), expected)
    s = summarize(depth.exp, r)
    s = s[(s["activation"] == "sigmoid") & (s["bn"] == "off")]
    assert np.allclose(by_label(ttt_ax, "bn=off, activation=sigmoid").get_ydata(),
                       s["median_steps"] * s["step_ms"] / 1e3, equal_nan=True)
    assert ttt_ax.get_yscale() == "log"


def test_declared_and_automatic_kinds_are_drawn_and_saved(depth, tmp_path):
    drawn = figure_kinds.draw(depth)
    assert list(drawn) == ["steps-to-target", "kaplan-meier", "curves", "timing"]
    assert all(caption for _fig, caption in drawn.values())
    one = dataclasses.replace(depth, exp=dataclasses.replace(depth.exp, figures=("timing",)))
    paths = figure_kinds.save(one, tmp_path / "x-digits-runs.csv")
    assert [p.name for p in paths] == ["x-digits-timing.png", "x-digits-timing.svg"]


def test_a_file_names_only_known_figures():
    with pytest.raises(definition.ExperimentError, match="unknown figure 'pie'.*kaplan-meier"):
        definition.parse({"name": "x", "factors": {"learning_rate": [0.1, 0.2]},
                     "figures": ["pie"]}, "<test>")
    with pytest.raises(definition.ExperimentError, match="figures: unknown figure 'layers'"):
        definition.parse({"name": "x", "figures": ["layers"]}, "<test>")  # automatic, not declared
