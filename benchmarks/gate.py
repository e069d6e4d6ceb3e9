"""Proof that the `dnnbench check` gate is neither flaky nor blind.

    uv run python benchmarks/gate.py [--blocks 20] [--profile smoke]
        [--baseline benchmarks/baselines/smoke.csv] [--variants none,steps*1.3,lr*0.5,...]
        [--json gate.json]

Re-runs the profile against its stored baseline with K fresh seed blocks (K = --blocks, each
block as many seeds as a check run uses, all disjoint from the baseline's seeds and from the
default check block) and counts how many blocks the gate fails:

* ``none``: the unchanged code.  Every failure is a false alarm (target: at most 1 of 20).
* injected regressions (target: detected in at least 19 of 20 blocks for a 30% slowdown):
  ``steps*1.3``   every run's steps-to-target multiplied by exactly 1.3 (a run pushed beyond
                  the budget becomes censored), applied to the ``none`` runs: a pure 30%
                  slowdown in steps, with nothing else changed;
  ``lr*0.5``      every learning rate halved (real training): the experiments' base value,
                  a factor's levels and named levels' settings;
  ``lr*0.77``     every learning rate divided by 1.3 (real training; roughly a 30%
                  slowdown for plain SGD, less for adaptive optimizers: the measured median
                  ratio per arm is printed);
  ``bn-momentum=0.99``  BN running-average momentum 0.9 -> 0.99 wherever BN is on (real
                  training; experiments without BN arms are unchanged, their ``none`` runs
                  are reused).

Variants change the profile's experiments (``files.Experiment``), never the arm names.
All K blocks of a variant are trained at once: the experiments' programs (one jit(vmap)
program per structure, its arms as lanes) over K x seeds seeds (vectorizing seeds is what makes K = 20 affordable), then split back into blocks and
compared with the baseline by exactly the function the CLI uses
(:func:`dnnbench.check.compare_runs`, without the descriptive bootstrap intervals, which do
not enter the verdict).  The per-arm flags show which arms tripped the gate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIRST_SEED = 200_000  # blocks start here: far from the baseline (0..) and check (100000..) seeds


def _lr(factor):
    """Every learning rate of an experiment times ``factor``."""
    def transform(exp):
        from dnnbench.spec import RunSpec

        default = RunSpec.__dataclass_fields__["learning_rate"].default
        base, factors = dict(exp.base), dict(exp.factors)
        named = {k: {level: dict(s) for level, s in levels.items()}
                 for k, levels in exp.named_levels.items()}
        base["learning_rate"] = base.get("learning_rate", default) * factor
        if "learning_rate" in factors and "learning_rate" not in named:
            factors["learning_rate"] = tuple(v * factor for v in factors["learning_rate"])
        for levels in named.values():
            for settings in levels.values():
                if "learning_rate" in settings:
                    settings["learning_rate"] *= factor
        return dataclasses.replace(exp, base=base, factors=factors, named_levels=named)
    return transform


def _bn_momentum(value):
    """BN momentum ``value`` wherever an experiment turns BN on (its base or a named level)."""
    def transform(exp):
        base = dict(exp.base)
        named = {k: {level: dict(s) | ({"bn_momentum": value} if s.get("norm") == "batch"
                                       else {}) for level, s in levels.items()}
                 for k, levels in exp.named_levels.items()}
        if base.get("norm") == "batch":
            base["bn_momentum"] = value
        return dataclasses.replace(exp, base=base, named_levels=named)
    return transform


# variant -> (experiment transform or None, post-hoc steps factor or None)
VARIANTS = {
    "none": (None, None),
    "steps*1.3": (None, 1.3),
    "lr*0.5": (_lr(0.5), None),
    "lr*0.77": (_lr(1 / 1.3), None),
    "bn-momentum=0.99": (_bn_momentum(0.99), None),
}


def scale_steps(runs: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Steps-to-target x factor; a run pushed past its budget becomes censored (not reached)."""
    out = runs.copy()
    s = out["steps_to_target"].astype(float) * factor
    late = s > out["max_steps"].astype(float)
    out["reached"] = out["reached"].astype(bool) & ~late
    out["steps_to_target"] = s.where(out["reached"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=20, help="fresh seed blocks (K)")
    ap.add_argument("--profile", default="smoke", help="profile of the profiles file")
    ap.add_argument("--profiles", type=Path, default=ROOT / "benchmarks" / "regression.toml")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="baseline CSV [default: benchmarks/baselines/PROFILE.csv]")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from dnnbench.check import (
        Thresholds,
        check_compatible,
        compare_runs,
        load_profile_data,
        load_profiles,
        read_baseline,
        run_profile,
    )
    from dnnbench.train.arm import enable_compile_cache

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or args.blocks < 1:
        ap.error(f"unknown variant(s) {unknown}" if unknown else "--blocks must be >= 1")
    err = Console(stderr=True)
    enable_compile_cache()
    prof = load_profiles(args.profiles)[args.profile]
    baseline_path = args.baseline or ROOT / "benchmarks" / "baselines" / f"{prof.name}.csv"
    base, meta = read_baseline(baseline_path)
    data = load_profile_data(prof)
    check_compatible(meta, prof, data)
    th = Thresholds(prof.max_steps_ratio, prof.max_accuracy_drop, prof.alpha)
    n = prof.seeds
    seeds = list(range(args.first_seed, args.first_seed + args.blocks * n))
    taken = set(base["seed"].astype(int)) | set(prof.current_seed_list(
        int(meta.get("current_seed_offset", prof.seed_offset))))
    if taken & set(seeds):
        ap.error("--first-seed: the blocks overlap the baseline or the default check block")
    arm_names = [pa.name for pa in prof.arms]
    err.print(f"gate: profile {prof.name} on {prof.dataset}, {len(arm_names)} arms, baseline "
              f"{len(base) // len(arm_names)} seeds/arm, K={args.blocks} blocks x {n} fresh seeds "
              f"({seeds[0]}..{seeds[-1]}), variants: {', '.join(variants)}")

    null_runs = None
    results = {}
    for v in variants:
        transform, steps_factor = VARIANTS[v]
        t0 = time.perf_counter()
        if transform is None:
            if null_runs is None:
                null_runs = run_profile(prof, data, seeds, timing=False, on_arm=lambda a, s: (
                    err.print(f"  none: {a} {s:.1f} s")))
            runs = null_runs if steps_factor is None else scale_steps(null_runs, steps_factor)
        else:
            changed = [e.name for e in prof.experiments if transform(e) != e]
            new = run_profile(prof, data, seeds, timing=False, transform=transform,
                              experiments=changed, on_arm=lambda a, s, v=v: err.print(
                                  f"  {v}: {a} {s:.1f} s")) if changed else None
            if len(changed) < len(prof.experiments):
                if null_runs is None:
                    null_runs = run_profile(prof, data, seeds, timing=False,
                                            on_arm=lambda a, s: err.print(
                                                f"  none: {a} {s:.1f} s"))
                same = null_runs[~null_runs["group"].isin(changed)]
                new = pd.concat([f for f in (new, same) if f is not None], ignore_index=True)
            runs = new
        train_s = time.perf_counter() - t0
        fails, flags, ratios = 0, {a: 0 for a in arm_names}, {a: [] for a in arm_names}
        acc_flags = {a: 0 for a in arm_names}
        min_p = []
        for k in range(args.blocks):
            block = runs[runs["seed"].between(seeds[k * n], seeds[k * n + n - 1])]
            rep = compare_runs(base, block, th, n_resamples=0)
            fails += not rep.passed
            for m in rep.metrics:
                if m.metric == "steps":
                    ratios[m.arm].append(m.effect)
                    flags[m.arm] += m.verdict == "regression"
                else:
                    acc_flags[m.arm] += m.verdict == "regression"
            min_p.append(min(m.p_regression for m in rep.metrics))
        results[v] = {"failed_blocks": int(fails), "blocks": args.blocks,
                      "train_s": round(train_s, 1),
                      "median_min_p": float(np.median(min_p)),
                      "arms": {a: {"steps_flags": flags[a], "accuracy_flags": acc_flags[a],
                                   "median_steps_ratio": float(np.median(ratios[a]))}
                               for a in arm_names}}
        err.print(f"  {v}: gate failed in {fails}/{args.blocks} blocks ({train_s:.0f} s)")

    table = Table(title=f"Gate check: profile {prof.name} on {prof.dataset}, K={args.blocks} "
                        f"blocks of {n} fresh seeds vs a baseline of {len(base) // len(arm_names)}"
                        " seeds per arm", header_style="bold", title_justify="left")
    table.add_column("variant")
    table.add_column("gate failed", justify="right")
    for a in arm_names:
        table.add_column(a.replace(",", ",\n"), justify="right")
    for v, r in results.items():
        cells = []
        for a in arm_names:
            x = r["arms"][a]
            cells.append(f"×{x['median_steps_ratio']:.2f} "
                         f"({x['steps_flags']}+{x['accuracy_flags']})")
        table.add_row(v, f"{r['failed_blocks']}/{r['blocks']}", *cells)
    table.caption = ("Per arm: median over blocks of the KM median-steps ratio current/baseline, "
                     "and (in parentheses) the blocks in which that arm's steps + accuracy "
                     "were flagged as regressions. 'none' failures are false alarms (target "
                     "<= 1/20); injected variants should fail (target >= 19/20 for a 30% "
                     "slowdown).")
    table.caption_justify = "left"
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    if args.json:
        args.json.write_text(json.dumps({"profile": prof.name, "dataset": prof.dataset,
                                         "blocks": args.blocks, "seeds_per_block": n,
                                         "thresholds": th.__dict__, "variants": results},
                                        indent=2, default=lambda x: None if (
                                            isinstance(x, float) and math.isnan(x)) else x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
