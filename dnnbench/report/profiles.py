"""The report's view of optimizer performance profiles (:mod:`dnnbench.analysis.profiles`):
the figure, and a section of the report when the results hold problems to profile."""

from __future__ import annotations

import math
from collections.abc import Sequence

from dnnbench.analysis.profiles import ProfileError, Profiles, folder_profiles

LINESTYLES = ("-", "--", "-.", ":")

XLABEL = "tau: steps to target within tau x the fastest optimizer's (log scale)"
YLABEL = "fraction of its problems"
ONE_PANEL_MAX = 4  # more optimizers: a panel each (their lines and bands would hide each other)


def profile_figure(profiles: Profiles, palette: Sequence[str] | None = None):
    """The profiles as step lines rho_o(tau) with shaded bootstrap bands, tau on a log axis
    from 1 to tau_max, y in [0, 1] -> matplotlib ``Figure`` (built directly, not through
    pyplot). Up to four optimizers share one panel with a legend (optimizer, problems,
    score); more get a panel each, the others' profiles drawn thin and grey behind it."""
    import textwrap

    from matplotlib.figure import Figure

    colors = list(palette) if palette else [f"C{i}" for i in range(10)]
    names = profiles.optimizers
    if len(names) <= ONE_PANEL_MAX:
        fig = Figure(figsize=(8.0, 5.2), layout="constrained")
        ax = fig.subplots()
        for j, o in enumerate(names):
            _draw(ax, profiles, o, colors[j % len(colors)], LINESTYLES[j % len(LINESTYLES)],
                  label=f"{o} ({profiles.n_problems(o)}, score {profiles.score(o)[0]:.2f})")
        _axes(ax, profiles, xlabel=True, ylabel=True)
        ax.legend(title="optimizer (problems, score)", fontsize=8, title_fontsize=8,
                  loc="lower right", frameon=True, framealpha=0.9)
        width = 84
    else:
        cols = 3
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(10.5, 2.5 * rows + 1.0), layout="constrained")
        axs = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True).ravel()
        for ax in axs[len(names):]:
            ax.set_visible(False)
        for j, (o, ax) in enumerate(zip(names, axs, strict=False)):
            for other in names:
                if other != o:
                    ax.step(profiles.taus, profiles.rho[other], where="post", color="#c8c8c8",
                            linewidth=0.7, zorder=1)
            _draw(ax, profiles, o, colors[j % len(colors)], "-")
            score, low, high = profiles.score(o)
            n = profiles.n_problems(o)
            ax.set_title(f"{o}: score {score:.2f} [{low:.2f}, {high:.2f}]; {n} problem"
                         f"{'s' * (n != 1)}", fontsize=9)
            _axes(ax, profiles, xlabel=False, ylabel=False)
        fig.supxlabel(XLABEL, fontsize=10)
        fig.supylabel(YLABEL, fontsize=10)
        width = 95
    n, k = len(profiles.problems), len(profiles.experiments)
    level = round(profiles.confidence * 100)
    title = (f"Optimizer performance profiles: {n} problem{'s' * (n != 1)} from {k} result "
             f"set{'s' * (k != 1)} (tuned rates where tuned; {level}% bands over seeds; "
             f"score: area up to tau = {profiles.tau_max:g})")
    fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize=12, fontweight="bold")
    return fig


def _draw(ax, profiles: Profiles, o: str, color: str, style: str, label: str | None = None):
    ax.fill_between(profiles.taus, profiles.low[o], profiles.high[o], step="post",
                    color=color, alpha=0.15, linewidth=0, zorder=2)
    ax.step(profiles.taus, profiles.rho[o], where="post", color=color, linestyle=style,
            linewidth=1.8, label=label, zorder=3)


def _axes(ax, profiles: Profiles, *, xlabel: bool, ylabel: bool) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_xlim(1.0, profiles.tau_max)
    ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4, 6, 10, 20, 50, 100) if t <= profiles.tau_max]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)
    if xlabel:
        ax.set_xlabel(XLABEL)
    if ylabel:
        ax.set_ylabel(YLABEL)


def profiles_section(results_dir, render_figures: bool = True):
    """The report's section of optimizer performance profiles over the result sets of
    ``results_dir`` (``dnnbench profiles DIR``), or None when none varies the optimizer."""
    from dnnbench.analysis.profiles import TABLE_TAUS
    from dnnbench.report.document import FigureItem, Section, TableItem
    from dnnbench.report.figures import PALETTE, figure_bytes

    try:
        p = folder_profiles(results_dir)
    except ProfileError:
        return None
    t = p.table()

    def cell(row, key):
        est, low, high = row[key], row[f"{key}_low"], row[f"{key}_high"]
        return "–" if math.isnan(est) else f"{est:.2f} [{low:.2f}, {high:.2f}]"
    table = t[["optimizer"]].assign(problems=t["problems"].astype(str))
    for tau in TABLE_TAUS:
        table[f"rho at tau = {tau:g}"] = [cell(r, f"rho@{tau:g}") for _, r in t.iterrows()]
    table["score"] = [cell(r, "score") for _, r in t.iterrows()]
    table["median ratio"] = t["median_ratio"].map(lambda v: f"{v:.2f}")
    sets = ", ".join(f"{e} on {d}" for e, d in p.experiments)
    bullets = [(f"{len(p.problems)} problem{'s' * (len(p.problems) != 1)} from {sets}: each "
               "an experiment on one data set at one level of its other factors, each "
               "optimizer at its tuned rate where the results have tuned arms.")]
    bullets += [f"Skipped {s.experiment} on {s.dataset}: {s.reason}." for s in p.skipped]
    figs = []
    if render_figures:
        figs.append(FigureItem("performance-profiles", "performance-profiles.png",
                               "rho(tau): the share of an optimizer's problems in which it "
                               "reaches the target within tau times the fastest optimizer's "
                               "median steps; bands: bootstrap over seeds.",
                               figure_bytes(profile_figure(p, PALETTE))))
    return Section(
        anchor="optimizer-profiles", title="Optimizer performance profiles",
        experiment="profiles",
        intro=("Which optimizer should one try first, over every result set here that varies "
               "the optimizer? Performance profiles (Dolan & Moré 2002), scored as AlgoPerf "
               f"does (the area under the profile up to tau = {p.tau_max:g})."),
        command=f"dnnbench profiles {results_dir}", bullets=bullets,
        tables=[TableItem("Profiles", table, caption="95% bootstrap intervals over seeds; "
                          "problems: the problems the optimizer appears in (its "
                          "denominator).")],
        figures=figs, headline="")
