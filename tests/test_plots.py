"""The generic figure kinds (dnnbench.report.plots), drawn from the depth-sweep fixture in the
common schema (tests/fixtures/results): what each one plots."""

from __future__ import annotations

import dataclasses
import itertools

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


def test_curves_a_panel_per_depth_and_activation_median_of_all_seeds_stopped_ones_held(depth):
    fig, caption = plots.curves_figure(depth)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == [f"activation={a}, depth={d}"
                                               for a in ("relu", "sigmoid") for d in (1, 2, 3)]
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == 2  # a row per activation
    assert "held at their last value" in fig._suptitle.get_text()
    assert "counted at its last value" in caption and "dot where one reached" in caption
    med = by_label(axes[2], "bn=on")
    arm = "depth=3,bn=on,activation=relu"
    table = depth.curves[depth.curves["arm"] == arm].pivot_table(
        index="step", columns="seed", values="eval_accuracy")
    running = table.notna().sum(axis=1).to_numpy()
    assert running.max() == 3 and running.min() < 3  # the fixture has seeds that stopped
    held = table.ffill()  # (one budget for every seed: held to the end of the arm's steps)
    assert np.allclose(med.get_xdata(), table.index.to_numpy(float))
    assert np.allclose(med.get_ydata(), held.median(axis=1).to_numpy(), equal_nan=True)
    # at the end the median is that of every seed's last value, not of the seeds left
    lasts = [table[s].dropna().iloc[-1] for s in table.columns]
    assert med.get_ydata()[-1] == pytest.approx(np.median(lasts))
    for band in axes[2].collections:  # interquartile bands of accuracies: within [0, 1]
        y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
        assert np.nanmin(y) >= 0 and np.nanmax(y) <= 1


def test_the_median_does_not_fall_to_chance_when_seeds_that_reached_the_target_stop():
    """3 of 5 seeds reach 0.9 by step 3 and stop; 2 stay at chance to the budget: the median
    stays at 0.9 (held last values), not 0.1 (the two seeds left running)."""
    steps = np.arange(1, 11)
    rows = [{"arm": "a", "seed": s, "step": int(t), "eval_accuracy": 0.5 + 0.2 * t}
            for s in range(3) for t in steps[:2]]
    rows += [{"arm": "a", "seed": s, "step": 3, "eval_accuracy": 0.9 + 0.01 * s}
             for s in range(3)]
    rows += [{"arm": "a", "seed": s, "step": int(t), "eval_accuracy": 0.1}
             for s in (3, 4) for t in steps]
    curves = pd.DataFrame(rows)
    table = plots._seed_table(curves, "a", "eval_accuracy")
    assert table.notna().sum(axis=1).iloc[-1] == 2  # only the failing seeds run on
    held = plots.carried(table, {s: 10 for s in range(5)})
    assert held.notna().all().all()
    assert held.loc[10, [0, 1, 2]].tolist() == pytest.approx([0.9, 0.91, 0.92])
    assert held.median(axis=1).loc[10] == pytest.approx(0.9)
    assert table.median(axis=1).loc[10] == pytest.approx(0.1)  # what dropping them shows
    # a seed is held only up to its own budget
    short = plots.carried(table, {0: 5})
    assert short.loc[5, 0] == pytest.approx(0.9) and np.isnan(short.loc[6, 0])


def test_curves_of_named_levels_a_panel_per_level_and_all_arms_in_view():
    """Optimizers (a named first factor): a panel per optimizer, a colour per lr_source;
    the y range keeps every seed's last value in view."""
    opt = fixture_input("optimizers-digits")
    fig, _caption = plots.curves_figure(opt)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == [f"optimizer={o}" for o in
                                               ("sgd", "momentum", "adam", "rmsprop")]
    assert "at optimizer" not in fig._suptitle.get_text()
    for ax in axes:
        assert {ln.get_label() for ln in ax.lines if ln.get_linewidth() > 2} == {
            "lr_source=default", "lr_source=tuned"}
    lasts = opt.curves.sort_values("step").groupby(["arm", "seed"])["eval_accuracy"].last()
    assert axes[0].get_ylim()[0] <= lasts.min()


def test_the_report_draws_learning_curves_for_every_experiment_with_curves():
    opt = fixture_input("optimizers-digits")
    assert "curves" not in opt.exp.figures
    assert "curves" not in figure_kinds.draw(opt)  # `run --plot`: what the file declares
    drawn = figure_kinds.draw(opt, report=True)
    assert list(drawn)[:4] == ["steps-to-target", "speed-vs-quality", "train-loss", "curves"]
    assert "median over all the arm's seeds" in drawn["curves"][1]
    no_curves = dataclasses.replace(opt, curves=None)
    assert "curves" not in figure_kinds.draw(no_curves, report=True)


def test_named_levels_are_points_not_joined_by_lines():
    """The optimizers' names have no order: the metric figure draws a point per level, the
    lr_source levels side by side, no line from one optimizer to the next; a numeric factor
    (depth) keeps its lines."""
    opt = fixture_input("optimizers-digits")
    (fig,) = plots.metric_figure(opt).values()
    (ax,) = visible_axes(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sgd", "momentum", "adam",
                                                           "rmsprop"]
    assert len(ax.containers) == 2
    xs = []
    for bars in ax.containers:
        data = bars.lines[0]
        assert data.get_linestyle() == "None" and data.get_marker() == "o"
        xs.append(data.get_xdata())
    assert np.all(np.abs(xs[0] - np.arange(4)) < 0.3) and np.all(xs[0] < xs[1])
    depth = fixture_input("depth-sweep-digits")
    (fig,) = plots.metric_figure(depth).values()
    assert all(b.lines[0].get_linestyle() == "-" for b in visible_axes(fig)[0].containers)


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


def test_timing_against_named_levels_draws_points(depth):
    """The timing figure over a named first factor: markers side by side, no line from one
    level to the next, the time to target's interval as bars."""
    names = {1: "one", 2: "two", 3: "three"}
    exp = dataclasses.replace(depth.exp, factors={**depth.exp.factors,
                                                  "depth": ("one", "two", "three")})
    named = dataclasses.replace(depth, exp=exp,
                                runs=depth.runs.assign(depth=depth.runs["depth"].map(names)))
    step_ax, ttt_ax = visible_axes(plots.timing_figure(named))
    assert [t.get_text() for t in step_ax.get_xticklabels()] == ["one", "two", "three"]
    assert len(step_ax.lines) == 4
    assert all(ln.get_linestyle() == "None" for ln in step_ax.lines)
    assert len(ttt_ax.containers) == 4
    assert all(c.lines[0].get_linestyle() == "None" for c in ttt_ax.containers)
    step_ax, _ = visible_axes(plots.timing_figure(depth))  # numeric depth: lines
    assert {ln.get_linestyle() for ln in step_ax.lines} == {"-", "--"}


def test_curves_with_too_many_panels_show_the_first_factor_at_its_last_level(depth,
                                                                             monkeypatch):
    monkeypatch.setattr(plots, "MAX_PANELS", 4)  # 3 depths x 2 activations: too many
    fig, caption = plots.curves_figure(depth)
    assert [ax.get_title() for ax in visible_axes(fig)] == ["activation=relu",
                                                            "activation=sigmoid"]
    assert "at depth=3" in fig._suptitle.get_text() and "at depth=3" in caption


def test_factors_beyond_the_third_join_the_line_and_the_legend_names_each():
    """A fourth varying factor (transfer-reuse's `reused`) is joined to the line's factor:
    one line per combination, its legend entry naming both factors and their levels."""
    factors = {"learning_rate": [0.1, 1.0], "norm": ["batch", "none"], "depth": [1, 3],
               "activation": ["relu", "elu"]}
    exp = definition.parse({"name": "j", "dataset": "synthetic", "factors": factors}, "<t>")
    table = pd.DataFrame([dict(zip(factors, values, strict=True)) for values in
                          itertools.product(*factors.values())])
    out, line = plots.joined(exp, table, "norm")
    assert line == "norm, activation"
    assert sorted(set(out[line])) == ["norm=batch, activation=elu",
                                      "norm=batch, activation=relu",
                                      "norm=none, activation=elu", "norm=none, activation=relu"]
    assert plots.legend_label(line, "norm=batch, activation=elu") == "norm=batch, activation=elu"
    assert plots.legend_label("norm", "batch") == "norm=batch"
    three = definition.parse({"name": "j", "dataset": "synthetic", "factors": {
        k: v for k, v in factors.items() if k != "activation"}}, "<t>")
    assert plots.joined(three, table, "norm") == (table, "norm")  # nothing to join
