"""Prove that a refactor left dnnbench's observable behaviour unchanged.

    uv run python benchmarks/equivalence.py snapshot DIR [--repo R] [--only NAME ...]
    uv run python benchmarks/equivalence.py compare A B [--only NAME ...]

``snapshot`` runs the CLI of the checkout it is started from (``--repo``, default: the current
folder; ``python -m dnnbench`` with PYTHONPATH=repo): ``run NAME --quick --plot`` for each
packaged experiment, one at a time; ``claims`` over those runs and over the committed
``results/``; ``report`` of each run folder (``report`` does not search subfolders, so
``report runs`` exits 2: kept, as a check of that error) and of ``results/``. Commands run in
DIR with relative paths (``results`` links to the checkout's), so no absolute path reaches
their output or its line wrapping; DIR/.cache is a private JAX cache, so that no program
exported by other code is reused. Exit codes, stdout and stderr go to DIR/commands.json; a
failing command is recorded, not fatal. ``compare`` exits 0 when A and B are equivalent
(timing aside), else 1 with the differences. Set DNNBENCH_DATA_DIR (MNIST) for both.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# Wall-clock columns of the result CSVs: the same four that `dnnbench merge` (cli/merge.py
# TIMING) exempts from its same-numbers check. Every other column of every CSV written
# (runs, curves, layers, claims, lr-find) is a deterministic function of seeds and code.
TIMING_COLUMNS = {"compile_s", "step_ms", "eval_ms", "time_to_target_s"}
# Claims whose evaluator reads those columns (time_to_target_ratio, paired_ratio on step_ms):
# found by their evidence text; their verdict and numbers are measurements of speed.
TIMING_CLAIM = re.compile(r"step_ms|compile_s|eval_ms|time_to_target|time to target")
TIMING_CLAIM_FIELDS = ("verdict", "effect", "low", "high", "effect_text")
# Figures drawn from timing columns (the `timing` and `speed-vs-quality` figure kinds).
TIMING_FIGURE = re.compile(r"-(timing|speed-vs-quality)\.(png|svg)$")
# Meta keys that record when (started/finished/resumed) or at which commit a run was made,
# and settings_digest: a digest of the run's settings, which include the absolute path of the
# experiment file (`experiment_file`, compared as text with the checkout's folder masked): it
# differs between two checkouts in other folders, and when the package's files move.
VOLATILE_KEYS = {"started", "finished", "resumed", "git_commit", "settings_digest"}
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")
# Durations in the console output of `run`: "done in 2.2 s" per arm, progress bar "0:00:20".
DURATION = re.compile(r"\b\d+(\.\d+)?(e[+-]?\d+)? ?(s|ms|seconds?|min)\b|\b\d+:\d\d:\d\d\b")
# Outputs computed from this snapshot's own runs: the only ones whose timing may differ (the
# committed results/ are fixed input, so claims-results/ and report-results/ are compared
# with timing included).
FRESH = re.compile(r"^(runs|claims|report)/")
# Where the package keeps its experiment files (meta experiment_file): not behaviour, and the
# file's content is compared (meta experiment_definition).
CATALOGUE = re.compile(r"<REPO>/dnnbench/([\w.-]+/)*catalogue/")
NUMBER = re.compile(r"\d+(\.\d+)?(e[+-]?\d+)?")  # masked in timing claims' evidence


def commands(names: list[str]) -> list[list[str]]:
    # --plot: also exercises the figures of `run` (PNG and SVG; `report` draws PNG only)
    cmds = [["run", n, "--quick", "--plot", "--out", f"runs/{n}"] for n in names]
    cmds += [["claims", "runs", "--out", "claims"], ["claims", "results", "--out", "claims-results"],
             ["report", "runs", "--out", "report"]]
    cmds += [["report", f"runs/{n}", "--out", f"report/{n}"] for n in names]
    return cmds + [["report", "results", "--out", "report-results"]]


def snapshot(out: Path, repo: Path, only: list[str]) -> int:
    # the packaged experiment files (dnnbench/experiments/catalogue/ at 36855ba; a refactor
    # may move the folder)
    names = sorted({p.stem for p in (repo / "dnnbench").glob("**/catalogue/*.toml")})
    if not names:
        sys.exit(f"no packaged experiment files (dnnbench/**/catalogue/*.toml) in {repo}")
    if unknown := set(only) - set(names):
        sys.exit(f"not packaged experiments: {sorted(unknown)}")
    names = [n for n in names if not only or n in only]
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty (runs would resume instead of being computed)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").symlink_to(repo / "results")
    env = {**os.environ, "PYTHONPATH": str(repo), "XDG_CACHE_HOME": str(out / ".cache"),
           "COLUMNS": "160", "LINES": "50", "PYTHONHASHSEED": "0"}
    if "DNNBENCH_DATA_DIR" not in env:
        print("warning: DNNBENCH_DATA_DIR is not set (mnist may fall back to digits)")

    def py(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=out, env=env, capture_output=True,
                              text=True, check=False)
    where = py("-c", "import dnnbench; print(dnnbench.__file__)").stdout.strip()
    if not Path(where).resolve().is_relative_to(repo):
        sys.exit(f"python -m dnnbench would import {where!r}, not the one in {repo}")
    record = {"repo": str(repo), "out": str(out), "python": sys.executable, "dnnbench": where,
              "data_dir": env.get("DNNBENCH_DATA_DIR"), "commands": []}
    t0, failed = time.perf_counter(), 0
    for i, args in enumerate(commands(names), 1):
        t = time.perf_counter()
        p = py("-m", "dnnbench", *args)
        secs = time.perf_counter() - t
        record["commands"].append({"args": args, "returncode": p.returncode, "seconds": secs,
                                   "stdout": p.stdout, "stderr": p.stderr})
        record["seconds"] = time.perf_counter() - t0
        (out / "commands.json").write_text(json.dumps(record, indent=1))
        failed += p.returncode != 0
        print(f"[{i}] dnnbench {' '.join(args)}: exit {p.returncode} in {secs:.1f} s", flush=True)
    print(f"snapshot {out}: {record['seconds']:.0f} s, {failed} command(s) exited non-zero")
    return 0


class Snap:
    """A snapshot folder, and the text substitutions that make its paths comparable."""

    def __init__(self, root: Path):
        self.root = root
        self.meta = json.loads((root / "commands.json").read_text())
        paths = {self.meta["out"]: "<SNAPSHOT>", str(root.resolve()): "<SNAPSHOT>",
                 self.meta["repo"]: "<REPO>", self.meta["python"]: "<PYTHON>"}
        # the commit a run records (meta git_commit, the reports' "git commit" row)
        for meta in root.glob("runs/*/*-meta.json"):
            if commit := json.loads(meta.read_text()).get("git_commit"):
                paths[commit] = "<COMMIT>"
        self.paths = sorted(paths.items(), key=lambda kv: -len(kv[0]))  # longest first

    def text(self, s: str) -> str:
        for path, mark in self.paths:
            s = s.replace(path, mark)
        return CATALOGUE.sub("<CATALOGUE>/", ISO_TIME.sub("<TIME>", s))

    def files(self) -> set[str]:
        # hidden files are bookkeeping: .dnnbench-units/ (resumable units), .dnnbench-lock,
        # .cache/ (JAX caches), atomic-write temporaries; `results` is the link to the input
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                if p.is_file() and not any(part.startswith(".") or part == "results"
                                           for part in p.relative_to(self.root).parts)}


def csv_rows(s: Snap, rel: str, only: list[str]) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(s.text((s.root / rel).read_text()))))
    head, fresh = (rows or [[]])[0], FRESH.match(rel)
    keep = [i for i, c in enumerate(head) if not (fresh and c in TIMING_COLUMNS)]
    out = [[head[i] for i in keep]]
    for row in rows[1:]:
        rec = dict(zip(head, row))
        if only and rel == "claims/claims.csv" and rec["experiment"] not in only:
            continue  # a subset: the claims of the other experiment files are "not run"
        if fresh and "claim_id" in rec and TIMING_CLAIM.search(rec["evidence"]):
            rec.update(dict.fromkeys(TIMING_CLAIM_FIELDS, "<TIMING>"))
            rec["evidence"] = NUMBER.sub("#", rec["evidence"])
        out.append([rec.get(head[i], "") for i in keep])
    return out


def json_text(s: Snap, rel: str) -> list[str]:
    folder = (s.root / rel).parent

    def timed(name) -> bool:  # a result file whose digest changes with its timing columns
        f = folder / str(name)
        return bool(FRESH.match(rel)) and f.suffix == ".csv" and f.is_file() and \
            bool(TIMING_COLUMNS & set(f.open().readline().strip().split(",")))

    def clean(x):
        if isinstance(x, dict):
            return {k: "<MASKED>" if k in VOLATILE_KEYS or k == "sha256" and timed(x.get("name"))
                    else clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return s.text(x) if isinstance(x, str) else x
    return json.dumps(clean(json.loads((s.root / rel).read_text())), indent=1,
                      sort_keys=True).splitlines()


def first_diff(a: list[str], b: list[str], what: str) -> str:
    """The first differing region (3 lines a side, clipped around the first differing char)."""
    ops = [o for o in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
           if o[0] != "equal"]
    _, i1, i2, j1, j2 = ops[0]
    la, lb = a[i1:i2][:3], b[j1:j2][:3]
    k = next((k for k, (x, y) in enumerate(zip(la[0], lb[0])) if x != y), 0) if la and lb else 0
    start = max(0, k - 60)

    lines = [f"    {w}| {'...' if start else ''}{x[start:start + 200]}"
             for w, side in (("A", la), ("B", lb)) for x in side]
    return f"{what}: {len(ops)} differing region(s), first at line {i1 + 1}:\n" + "\n".join(lines)


def compare_file(a: Snap, b: Snap, rel: str, only: list[str]) -> str | None:
    pa, pb = a.root / rel, b.root / rel
    if rel.endswith(".csv"):
        ra, rb = csv_rows(a, rel, only), csv_rows(b, rel, only)
        if ra[0] != rb[0]:
            return f"columns differ: {ra[0]} vs {rb[0]}"
        bad = [i for i, (x, y) in enumerate(zip(ra, rb)) if x != y]
        if len(ra) != len(rb) or not bad:
            return f"{len(ra) - 1} vs {len(rb) - 1} rows" if len(ra) != len(rb) else None
        cols = [f"{c}: {x!r} vs {y!r}" for c, x, y in zip(ra[0], ra[bad[0]], rb[bad[0]]) if x != y]
        return f"{len(bad)} differing rows, first (row {bad[0]}): " + "; ".join(cols[:6])
    if rel.endswith(".json"):
        ja, jb = json_text(a, rel), json_text(b, rel)
        return None if ja == jb else first_diff(ja, jb, "json")
    if rel.endswith((".html", ".md", ".svg")):  # svg: rcParams svg.hashsalt fixes its ids
        ta, tb = a.text(pa.read_text()).splitlines(), b.text(pb.read_text()).splitlines()
        return None if ta == tb else first_diff(ta, tb, "text")
    return None if pa.read_bytes() == pb.read_bytes() else "bytes differ"


def console(s: Snap, text: str, timed: bool) -> list[str]:
    """Paths and times masked (durations too for `run`); a traceback keeps its exception line,
    not its frames (the files and line numbers are what a refactor moves)."""
    out, frames = [], False
    for line in (DURATION.sub("<DUR>", s.text(text)) if timed else s.text(text)).splitlines():
        if line.startswith("Traceback (most recent call last)"):
            frames, line = True, "Traceback (frames not compared)"
        elif frames and line[:1].isspace():
            continue
        else:
            frames = False
        out.append(line)
    return out


def compare(a: Snap, b: Snap, only: list[str]) -> int:
    problems, timing = [], []
    fa, fb = a.files(), b.files()
    if only:  # a subset: outputs of the other experiments are left out
        keep = re.compile(rf"^(runs|report)/({'|'.join(map(re.escape, only))})/"
                          r"|^claims/|^(claims|report)-results/")
        fa, fb = {f for f in fa if keep.match(f)}, {f for f in fb if keep.match(f)}
    for side, extra in (("A", sorted(fa - fb)), ("B", sorted(fb - fa))):
        problems += [f"{f}: only in {side}" for f in extra[:10]]
        problems += [f"... and {len(extra) - 10} more files only in {side}"] * (len(extra) > 10)
    for f in sorted(fa & fb - {"commands.json"}):
        if diff := compare_file(a, b, f, only):
            fig = FRESH.match(f) and TIMING_FIGURE.search(f)
            (timing if fig else problems).append(f"{f}: {diff}")
    ca = {tuple(c["args"]): c for c in a.meta["commands"]}
    cb = {tuple(c["args"]): c for c in b.meta["commands"]}
    if only:
        ca = {k: v for k, v in ca.items()
              if "results" in k or set(only) & {x.split("/")[-1] for x in k}}
        cb = {k: v for k, v in cb.items() if k in ca}
    for args in sorted(set(ca) | set(cb)):
        name = "dnnbench " + " ".join(args)
        if args not in ca or args not in cb:
            problems.append(f"{name}: run only in {'A' if args in ca else 'B'}")
            continue
        if ca[args]["returncode"] != cb[args]["returncode"]:
            problems.append(f"{name}: exit {ca[args]['returncode']} vs {cb[args]['returncode']}")
        for stream in ("stdout", "stderr"):
            timed = args[0] == "run"
            sa, sb = console(a, ca[args][stream], timed), console(b, cb[args][stream], timed)
            if sa != sb:
                problems.append(f"{name} [{stream}]: {first_diff(sa, sb, stream)}")
    print(f"compared {len(fa & fb)} files and {len(ca)} commands of {a.root} and {b.root}"
          + (f" (only {', '.join(only)}; claims/ rows of those experiment files)" if only else ""))
    for t in timing:
        print(f"timing figure (differs, not counted): {t.splitlines()[0]}")
    for p in problems:
        print(f"DIFF {p}")
    print("EQUIVALENT" if not problems else f"NOT EQUIVALENT: {len(problems)} difference(s)")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("snapshot", help="run the CLI of a checkout into OUT")
    sp.add_argument("out", type=Path)
    sp.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout (default: cwd)")
    cp = sub.add_parser("compare", help="compare two snapshots (exit 1 if not equivalent)")
    cp.add_argument("a", type=Path)
    cp.add_argument("b", type=Path)
    for p in (sp, cp):
        p.add_argument("--only", action="append", default=[], metavar="NAME",
                       help="only this experiment (repeatable)")
    args = ap.parse_args()
    if args.cmd == "snapshot":
        return snapshot(args.out.resolve(), args.repo.resolve(), args.only)
    return compare(Snap(args.a), Snap(args.b), args.only)


if __name__ == "__main__":
    sys.exit(main())
