"""`dnnbench claims`: the textbook's claims, checked against the result CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnbench.cli.common import check_writable_file, err_console, out_console, usage_error
from dnnbench.definition.claims import NOT_RUN, VERDICTS

VERDICT_STYLE = dict(zip(VERDICTS, ("bold green", "bold red", "yellow", "dim"), strict=True))


def claims(
    results_dir: Annotated[Path, typer.Argument(
        help="Folder holding the result files (<experiment>-<dataset>-runs.csv + -meta.json; "
        "searched recursively).")] = Path("results"),
    claims_file: Annotated[Path | None, typer.Option(
        "--claims", help="Extra claims file (TOML: \\[\\[claims]] tables with id, text, "
        "results (the experiment whose results check it), command and \\[\\[claims.check]] "
        "evaluators, as in experiment files); a claim with a packaged id replaces it.",
        show_default=False)] = None,
    only_file: Annotated[bool, typer.Option(
        "--only-file", help="Check only the claims of --claims, not the packaged ones.")] = False,
    dataset: Annotated[str | None, typer.Option(
        help="Only results on this data set (default: every data set found).",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for claims.csv (default: RESULTS_DIR).", show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        help="Replace a claims.csv that holds other claims (other inputs or code).")] = False,
    list_evaluators: Annotated[bool, typer.Option(
        "--list-evaluators", help="Describe the evaluators a claim can use and exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the claims as JSON (a list of objects with the columns of "
        "claims.csv) instead of the table.")] = False,
    fail_on: Annotated[list[str] | None, typer.Option(
        "--fail-on", metavar="VERDICT", help="Exit 1 when any claim gets this verdict (repeatable; for CI, e.g. "
        "--fail-on contradicted). One of: " + ", ".join(VERDICT_STYLE) + ".",
        show_default=False)] = None,
) -> None:
    """Check each claim against the results: supported / contradicted / inconclusive / not run.

    The claims are the packaged experiment files', those of --claims FILE, and those of your
    own experiment files whose results are in the folder (read from the definition their
    metadata records). Prints the claim, its verdict and the evidence (effect, interval, n,
    files) and writes claims.csv. A claim whose data is missing is "not run", with the command that would
    produce it. Exit 1 with --fail-on VERDICT when a claim gets that verdict; exit 2 for a
    missing folder, an unknown result schema or a bad claims file.
    """
    from dnnbench import definition
    from dnnbench.analysis.checker import evaluate_claims, load_claims, recorded_claims
    from dnnbench.analysis.evaluators import EVALUATORS
    from dnnbench.analysis.outcomes import claims_frame
    from dnnbench.definition import ExperimentError
    from dnnbench.definition.claims import ClaimsError
    from dnnbench.results.io import SchemaError, csv_text, write_csv
    from dnnbench.results.resultset import load_results

    if list_evaluators:
        for name, ev in EVALUATORS.items():
            out_console().print(f"[bold]{name}[/] ({', '.join(sorted(ev.params))})")
            out_console().print("    " + " ".join((ev.doc or "").split()), highlight=False)
        return
    bad = [v for v in fail_on or [] if v not in VERDICT_STYLE]
    if bad:
        usage_error(f"--fail-on: unknown verdict {bad[0]!r}; choose from: "
                    f"{', '.join(VERDICT_STYLE)}")
    if only_file and claims_file is None:
        usage_error("--only-file needs --claims FILE")
    target = (out or results_dir) / "claims.csv"
    check_writable_file(target, "--out")
    try:
        claim_list = load_claims(claims_file, include_packaged=not only_file)
    except ClaimsError as e:
        usage_error(str(e))
    try:
        results = load_results(results_dir)
        if not only_file:  # the claims of a user's own experiments whose results are here
            known = {*definition.catalogue(), *(c.experiment for c in claim_list)}
            claim_list += recorded_claims(results, known)
        evaluated = evaluate_claims(claim_list, results, dataset, results_dir)
    except (SchemaError, ExperimentError) as e:
        usage_error(str(e))
    frame = claims_frame(evaluated)
    if not force and target.is_file() and target.read_bytes() != csv_text(frame).encode():
        usage_error(f"{target} holds other claims (made from other results or by other code); "
                    "write these elsewhere with --out DIR, or replace it with --force")
    write_csv(target, frame)
    if as_json:
        import json
        import math

        records = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in row.items()} for row in frame.to_dict(orient="records")]
        print(json.dumps(records, indent=1, ensure_ascii=False))
    else:
        out_console().print(claims_table(evaluated, results_dir))
    err_console().print(f"Wrote {target}", highlight=False)
    failed = [r for r in evaluated if r.verdict in (fail_on or [])]
    if failed:
        err_console().print(f"claims: {len(failed)} claim(s) {'/'.join(fail_on)}: "
                            + ", ".join(f"{r.claim.id}" + (f" on {r.dataset}" if r.dataset
                                                           else "") for r in failed),
                            highlight=False)
        raise typer.Exit(1)


def claims_table(evaluated, results_dir):
    from rich.markup import escape

    from dnnbench.report.console import table

    rows = []
    for r in evaluated:
        o = r.outcome
        style = VERDICT_STYLE.get(o.verdict, "")
        if o.verdict == NOT_RUN:
            evidence = escape(o.evidence)
        else:
            head = escape(f"effect {o.effect_text}, n={o.n}")
            evidence = (f"[bold]{head}[/]\n{escape(o.evidence)}\n"
                        f"[dim]files: {escape(', '.join(r.files))}[/]")
        claim = escape(r.claim.text) + (f"\n[dim]on {escape(r.dataset)}[/]" if r.dataset else "")
        verdict = f"[{style}]{escape(o.verdict)}[/]" if style else escape(o.verdict)
        rows.append([escape(r.claim.id), claim, verdict, evidence])
    counts = {v: sum(r.verdict == v for r in evaluated) for v in VERDICT_STYLE}
    t = table(f"Claims checked against {results_dir}: " + ", ".join(
        f"{n} {v}" for v, n in counts.items() if n), ["id", "claim", "verdict", "evidence"],
        rows, caption="effect [95% interval], n = seeds (or pairs, depths, class pairs: see "
        "the evidence) behind it. Supported / contradicted: the interval lies entirely on one "
        "side of the null or margin the claim names; inconclusive: it spans it (no clear "
        "difference).", justify_right_from=99)
    t.columns[1].ratio, t.columns[3].ratio = 2, 5
    t.columns[1].overflow = t.columns[3].overflow = "fold"
    return t


def register(app: typer.Typer) -> None:
    app.command("claims")(claims)
