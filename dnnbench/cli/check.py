"""`dnnbench check`: the regression gate (exit 0 pass, 1 regression, 2 usage/incompatible)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dnnbench import limits
from dnnbench.cli.common import (
    EXIT_INTERRUPTED,
    check_writable_file,
    command_line,
    err_console,
    out_console,
    runtime_error,
    usage_error,
    within_limits,
)

JSON_FORMAT_HELP = "dnnbench (full report) or github-action-benchmark (customSmallerIsBetter)"


def check(
    profile: Annotated[str, typer.Option(help="Profile of the profiles file to run.")] = "smoke",
    baseline: Annotated[Path | None, typer.Option(
        help="Baseline runs CSV (its metadata sits beside it as NAME.meta.json) "
        "(default: benchmarks/baselines/PROFILE.csv).", show_default=False)] = None,
    profiles: Annotated[Path | None, typer.Option(
        help="Profiles file (default: benchmarks/regression.toml).", show_default=False)] = None,
    update_baseline: Annotated[bool, typer.Option(
        "--update-baseline", help="Run the profile on the baseline's seed block and write a "
        "new baseline (CSV + metadata) instead of checking.")] = False,
    seed_offset: Annotated[int | None, typer.Option(
        help="First seed of the block to train. Check: a block of fresh seeds, default the "
        "one recorded in the baseline metadata; with --update-baseline: the baseline's block "
        "(default: from the profile).", show_default=False)] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Also write a machine-readable report to this file.",
        show_default=False)] = None,
    json_format: Annotated[str, typer.Option(help=f"Format of --json: {JSON_FORMAT_HELP}.")]
    = "dnnbench",
    save_current: Annotated[Path | None, typer.Option(
        help="Also write the current runs (CSV + metadata) here, e.g. as a CI artifact.",
        show_default=False)] = None,
    current: Annotated[Path | None, typer.Option(
        hidden=True, help="Compare this stored runs CSV instead of training (with its "
        ".meta.json if present).")] = None,
    max_steps_ratio: Annotated[float | None, typer.Option(
        help="Fail when median steps rise by more than this factor (default: profile's, "
        "1.15).", show_default=False)] = None,
    max_accuracy_drop: Annotated[float | None, typer.Option(
        help="Fail when final accuracy falls by more than this (0.01 = 1 point) "
        "(default: profile's).", show_default=False)] = None,
    alpha: Annotated[float | None, typer.Option(
        help="One-sided significance level of the gate (default: profile's, 0.01).",
        show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding mnist/ and fashion-mnist/ (profiles on those data sets).",
        show_default=False)] = None,
) -> None:
    """Run a regression profile with fresh seeds and compare it with a stored baseline.

    Per arm, steps to the target (primary) and final test accuracy are compared with
    one-sided tests against a minimum effect: the gate fails (exit 1) only when median steps
    rise by more than 15% or final accuracy falls by more than 1 point, each with p < 0.01.
    Wall time is reported but advisory. Exit 2: bad options or an incompatible baseline
    (different data set, profile settings or schema).
    """
    from dnnbench.check import (
        JSON_FORMATS,
        IncompatibleBaseline,
        IncompatibleRuns,
        ProfileError,
        Thresholds,
        baseline_meta,
        check_compatible,
        compare_runs,
        default_profiles_path,
        github_action_benchmark,
        load_profile_data,
        load_profiles,
        read_baseline,
        report_json,
        run_profile,
        write_baseline,
    )
    from dnnbench.data import DataError

    if json_format not in JSON_FORMATS:
        usage_error(f"--json-format: unknown value {json_format!r}; choose from: "
                    f"{', '.join(JSON_FORMATS)}")
    if update_baseline and current is not None:
        usage_error("--update-baseline trains the baseline; it cannot be combined with --current")
    for opt, v, lo in (("--max-steps-ratio", max_steps_ratio, 1.0),
                       ("--max-accuracy-drop", max_accuracy_drop, 0.0)):
        if v is not None and (not math.isfinite(v) or v < lo):
            usage_error(f"{opt} must be a finite number >= {lo:g}, got {v}")
    if alpha is not None and not 0 < alpha < 1:
        usage_error(f"--alpha must be in (0, 1), got {alpha}")
    if seed_offset is not None and seed_offset < 0:
        usage_error(f"--seed-offset must be >= 0, got {seed_offset}")
    if seed_offset is not None:
        with within_limits():  # before any work (PRNG seeds are 32-bit)
            limits.check("seed", seed_offset, "--seed-offset")
    for option, path in (("--json", json_path), ("--save-current", save_current)):
        if path is not None:
            check_writable_file(path, option)

    try:
        table = load_profiles(profiles or default_profiles_path())
    except ProfileError as e:
        usage_error(str(e))
    if profile not in table:
        usage_error(f"--profile: unknown profile {profile!r}; choose from: {', '.join(table)}")
    prof = table[profile]
    baseline = baseline or Path("benchmarks") / "baselines" / f"{profile}.csv"
    if update_baseline:
        check_writable_file(baseline, "--baseline")

    def load_data():
        try:
            return load_profile_data(prof, data_dir)
        except DataError as e:
            usage_error(f"profile {profile!r} needs data set {prof.dataset!r}: {e}")

    def train(seeds):
        err = err_console()
        err.print(f"Profile {prof.name}: {len(prof.arms)} arms x {len(seeds)} seeds "
                  f"({seeds[0]}..{seeds[-1]}) on {prof.dataset}", highlight=False)
        from dnnbench.train.arm import enable_compile_cache

        enable_compile_cache()
        try:
            return run_profile(prof, data, seeds, on_arm=lambda a, s: err.print(
                f"  {a}: {s:.1f} s", highlight=False))
        except KeyboardInterrupt:
            typer.echo("Interrupted: nothing written.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    if update_baseline:
        data = load_data()
        seeds = prof.baseline_seed_list(seed_offset)
        if set(seeds) & set(prof.current_seed_list()):
            usage_error(f"--seed-offset {seed_offset}: the baseline block overlaps the fresh "
                        f"block of check runs (seeds {prof.seed_offset}.."
                        f"{prof.seed_offset + prof.seeds - 1})")
        runs = train(seeds)
        # the advisory wall-time comparison needs the step time at the check's seed count
        err_console().print(f"Timing the arms with {prof.seeds} vmapped seeds (the check size)",
                            highlight=False)
        timed = train(seeds[: prof.seeds])
        wall = {"seeds": prof.seeds, "step_ms": {
            a: float(g["step_ms"].iloc[0]) for a, g in timed.groupby("arm", sort=False)}}
        meta = baseline_meta(prof, data, seeds, prof.seed_offset,
                             {"command": command_line("check"), "wall": wall})
        paths = write_baseline(baseline, runs, meta)
        err_console().print("Wrote " + ", ".join(map(str, paths)), highlight=False)
        out_console().print(_baseline_table(runs, prof))
        return

    try:
        base_runs, base_meta = read_baseline(baseline)
        check_compatible(base_meta, prof)
    except FileNotFoundError as e:
        usage_error(str(e))
    except IncompatibleBaseline as e:
        usage_error(f"incompatible baseline: {e}")

    if current is not None:
        import pandas as pd

        from dnnbench.check import meta_path

        try:
            cur_runs, cur_meta = read_baseline(current) if meta_path(current).exists() else (
                _read_plain(current), None)
            if cur_meta is not None:
                check_compatible(cur_meta, prof, what="current run")
        except (FileNotFoundError, IncompatibleBaseline, ValueError) as e:
            usage_error(f"--current: {e}")
        seeds_used = (sorted(set(pd.to_numeric(cur_runs["seed"], errors="coerce").dropna()
                                 .astype(int))) if "seed" in cur_runs.columns else [])
    else:
        data = load_data()
        try:
            check_compatible(base_meta, prof, data)
        except IncompatibleBaseline as e:
            usage_error(f"incompatible baseline: {e}")
        offset = seed_offset if seed_offset is not None else int(
            base_meta.get("current_seed_offset", prof.seed_offset))
        seeds_used = prof.current_seed_list(offset)
        with within_limits():
            limits.check("seed", max(seeds_used), f"--seed-offset {offset} + {len(seeds_used)} seeds")
        overlap = set(seeds_used) & set(base_runs["seed"].astype(int))
        if overlap:
            usage_error(f"--seed-offset {offset}: seeds {min(overlap)}.. are in the baseline; "
                        "a check needs fresh seeds")
        cur_runs = train(seeds_used)
        if save_current is not None:
            meta = baseline_meta(prof, data, seeds_used, offset, {"command": command_line("check"),
                                                                   "role": "current"})
            write_baseline(save_current, cur_runs, meta)

    th = Thresholds(
        max_steps_ratio=prof.max_steps_ratio if max_steps_ratio is None else max_steps_ratio,
        max_accuracy_drop=(prof.max_accuracy_drop if max_accuracy_drop is None
                           else max_accuracy_drop),
        alpha=prof.alpha if alpha is None else alpha)
    try:
        report = compare_runs(base_runs, cur_runs, th, baseline_wall=base_meta.get("wall"))
    except IncompatibleRuns as e:
        usage_error(f"incompatible baseline: {e}")
    except (ValueError, KeyError) as e:
        runtime_error(f"comparison failed: {e}")

    context = {"profile": prof.name, "dataset": prof.dataset, "baseline": str(baseline),
               "baseline_seeds": base_meta.get("seeds"),
               "current_seeds": {"offset": seeds_used[0] if seeds_used else None,
                                 "count": len(seeds_used)},
               "command": command_line("check")}
    out_console().print(check_table(report, prof.name, prof.dataset))
    if json_path is not None:
        from dnnbench.results.io import write_json

        doc = (report_json(report, context) if json_format == "dnnbench"
               else github_action_benchmark(report, context))
        write_json(json_path, doc)
    verdict = "PASS" if report.passed else f"FAIL: {len(report.regressions)} regression(s)"
    err_console().print(f"check {prof.name}: {verdict}", highlight=False)
    raise typer.Exit(report.exit_code)


def _read_plain(path: Path):
    import pandas as pd

    if not Path(path).is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None


def _fmt(x, spec="{:.0f}", missing="n/a") -> str:
    return missing if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def _p(p: float) -> str:
    """A p-value with two digits; never a bare "1" (it is a probability, not a certainty)."""
    return "n/a" if math.isnan(p) else ">0.99" if p > 0.99 else f"{p:.2g}"


VERDICT_STYLE = {"ok": "green", "regression": "bold red", "improvement": "cyan"}


def check_table(report, profile: str, dataset: str, title: str | None = None,
                names: tuple[str, str] = ("baseline", "current")):
    """Rich table: arm, metric, baseline, current, ratio/difference, interval, p, verdict."""
    from rich.markup import escape

    from dnnbench.report.console import table

    rows = []
    th = report.thresholds
    for m in report.metrics:
        if m.metric == "steps":
            base = f"{_fmt(m.baseline)} ({m.reached_baseline}/{m.n_baseline})"
            cur = f"{_fmt(m.current)} ({m.reached_current}/{m.n_current})"
            eff = _fmt(m.effect, "×{:.2f}", "n/a")
            ci = f"[{_fmt(m.low, '{:.2f}', '0')}, {_fmt(m.high, '{:.2f}', '∞')}]"
        else:
            base, cur = _fmt(100 * m.baseline, "{:.1f}%"), _fmt(100 * m.current, "{:.1f}%")
            eff = _fmt(100 * m.effect, "{:+.2f} pt")
            ci = f"[{_fmt(100 * m.low, '{:+.2f}')}, {_fmt(100 * m.high, '{:+.2f}')}]"
            if math.isnan(m.low):
                ci = "n/a"
        style = VERDICT_STYLE.get(m.verdict, "")
        rows.append([escape(m.arm), m.metric, base, cur, eff, ci, _p(m.p_difference),
                     _p(m.p_gate), f"[{style}]{m.verdict}[/]"])
    wall = [w for w in report.wall if not math.isnan(w.ratio)]
    wall_txt = ""
    if wall:
        worst = max(wall, key=lambda w: w.ratio)
        basis = ("same seed count" if all(w.n_baseline == w.n_current for w in wall)
                 else "per seed")
        wall_txt = (f" Wall time (advisory, not gated): step time {names[1]}/{names[0]} ({basis}) "
                    f"from ×{min(w.ratio for w in wall):.2f} to ×{worst.ratio:.2f} "
                    f"({worst.arm}).")
    status = "PASS" if report.passed else "FAIL"
    return table(
        title or f"dnnbench check {profile} on {dataset}: {status} ({report.n_current_seeds} "
        f"fresh seeds per arm vs a baseline of {report.n_baseline_seeds})",
        ["arm", "metric", *names, "ratio / diff", "95% interval", "p any",
         "p gate", "verdict"], rows,
        caption=(f"steps: Kaplan-Meier median steps to target (reached/seeds); ratio {names[1]}/"
                 f"{names[0]}. accuracy: mean final test accuracy; difference in points. p any: "
                 "two-sided Mann-Whitney test of any difference (not gated). p gate: one-sided "
                 f"Mann-Whitney test against the minimum effect (steps ×{th.max_steps_ratio:g}, "
                 f"accuracy -{100 * th.max_accuracy_drop:g} pt) in the direction of the change, "
                 "near 1 while the change lies well inside that tolerance; a regression needs "
                 f"p gate < {th.alpha:g} and a point effect beyond that minimum."
                 + wall_txt),
        justify_right_from=2)


def _baseline_table(runs, prof):
    from rich.markup import escape

    from dnnbench.report.console import table
    from dnnbench.stats import km_median, steps_of_runs

    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        km = km_median(*steps_of_runs(g))
        acc = g["final_test_accuracy"].astype(float)
        rows.append([escape(str(arm)), escape(f"{_fmt(km.median)} [{_fmt(km.low)}, "
                                              f"{_fmt(km.high, missing='∞')}]"),
                     f"{km.n_reached}/{km.n}", f"{100 * acc.mean():.1f}%",
                     _fmt(float(g["step_ms"].iloc[0]), "{:.2f}")])
    n = int(runs.groupby("arm").size().max())
    return table(f"New baseline for profile {prof.name} on {prof.dataset} ({n} seeds per arm)",
                 ["arm", "median steps [95% CI]", "reached", "final test acc", "step ms"], rows)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
