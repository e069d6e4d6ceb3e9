"""ONE claim checker for every kind of claim: an experiment file's plain, diagnostic and
search claims (through the ``experiment_file`` evaluator, as `dnnbench run` checks them) and
evaluator claims, packaged or from a user's claims file, checked on the result sets of a
folder: one :class:`~dnnbench.analysis.outcomes.ClaimResult` per (claim, data set)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dnnbench.analysis.evaluators import EVALUATORS
from dnnbench.analysis.outcomes import ClaimResult, MissingData, Outcome
from dnnbench.definition import experiment as files
from dnnbench.definition.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    SUPPORTED,
    Check,
    Claim,
    ClaimsError,
    read_claims_file,
)
from dnnbench.results.io import SchemaError
from dnnbench.results.resultset import ResultSet


def _checkable(c: Claim, exp, source: str, where: dict) -> Claim:
    """``c`` ready for the checker: its evaluator checks as written, or (a plain claim) the
    ``experiment_file`` evaluator with ``where`` (the claim in a packaged file, or in the
    recorded definition); on the results of ``exp`` unless it names others."""
    checks = c.checks or (Check("experiment_file", {**where, "claim": c.id}),)
    return dataclasses.replace(c, checks=checks, results=c.results or exp.name,
                               command=c.command or exp.command, source=source)


def packaged_claims() -> list[Claim]:
    """The claims of the packaged experiment files, in catalogue and file order: a claim with
    evaluator checks as written, on the results it names; a plain claim (compare ... expect)
    through the ``experiment_file`` evaluator, on the results of `dnnbench run FILE`."""
    claims = []
    for name in files.catalogue():
        exp = files.load(name)
        claims += [_checkable(c, exp, exp.source, {"file": name}) for c in exp.claims]
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ClaimsError(f"packaged experiment files: duplicate claim id(s) {', '.join(dup)}")
    return claims


def recorded_claims(results: dict[tuple[str, str], ResultSet], known: set[str]
                    ) -> list[Claim]:
    """The claims of the experiments of ``results`` that ``known`` does not name (a user's own
    experiment files): read from the definition their metadata records; a plain claim is
    checked as `dnnbench run` checks it (the ``experiment_file`` evaluator)."""
    import json

    claims, seen = [], set()
    for (name, _), rs in sorted(results.items()):
        doc = rs.recorded_definition
        if name in known or doc is None:
            continue
        exp = files.parse(json.loads(doc), f"{rs.files[0]} (recorded definition)")
        for c in exp.claims:
            if c.id in seen:  # (the same experiment on another data set)
                continue
            seen.add(c.id)
            claims.append(_checkable(c, exp, rs.files[0], {}))
    return claims


def load_claims(extra: str | Path | None = None, *, include_packaged: bool = True) -> list[Claim]:
    """The packaged claims plus those of ``extra`` (a claim with a packaged id replaces it)."""
    claims = packaged_claims() if include_packaged else []
    if extra is not None:
        user = read_claims_file(extra)
        ids = {c.id for c in user}
        claims = [c for c in claims if c.id not in ids] + user
    return claims


def required_columns(claim: Claim) -> set[str]:
    out: set[str] = set()
    for c in claim.checks:
        out |= EVALUATORS[c.evaluator].columns(c.params)
    return out


def _combine(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    verdicts = [o.verdict for o in outcomes]
    for v in (NOT_RUN, CONTRADICTED, INCONCLUSIVE):
        if v in verdicts:
            decisive = outcomes[verdicts.index(v)]
            break
    else:
        decisive, v = outcomes[0], SUPPORTED
    ev = " | ".join(f"({i + 1}) {o.verdict}: {o.evidence}" for i, o in enumerate(outcomes))
    return Outcome(v, decisive.effect, decisive.low, decisive.high, decisive.n, ev,
                   decisive.effect_note)


def suggested_command(claim: Claim, dataset: str | None, folder: str | Path) -> str:
    """The claim's command for this data set, writing into the folder being checked."""
    import shlex

    args = shlex.split(claim.command)
    for opt, value in (("--dataset", dataset), ("--out", folder)):
        if value is None:
            continue
        if opt in args[:-1]:
            args[args.index(opt) + 1] = str(value)
        else:
            args += [opt, str(value)]
    return shlex.join(args)


def evaluate_claim(claim: Claim, rs: ResultSet, results_dir: str | Path = "results") -> Outcome:
    """Run every check of ``claim`` on ``rs``; missing data -> "not run" with the command that
    would produce them in the folder of ``rs``'s files (under ``results_dir``)."""
    missing = sorted(required_columns(claim) - set(rs.runs.columns))
    if missing:
        raise SchemaError(f"{', '.join(rs.files)}: missing columns for claim {claim.id}: "
                          f"{', '.join(missing)}")
    outcomes = []
    for check in claim.checks:
        try:
            outcomes.append(EVALUATORS[check.evaluator].fn(rs, check.params))
        except MissingData as e:
            folder = Path(results_dir) / Path(rs.files[0]).parent if rs.files else results_dir
            outcomes.append(Outcome(NOT_RUN, evidence=f"{e}; run: "
                                    f"{suggested_command(claim, rs.dataset, folder)}"))
        except ValueError as e:
            outcomes.append(Outcome(INCONCLUSIVE, evidence=f"cannot evaluate: {e}"))
    return _combine(outcomes)


def evaluate_claims(claims: list[Claim], results: dict[tuple[str, str], ResultSet],
                    dataset: str | None = None, results_dir: str | Path = "results"
                    ) -> list[ClaimResult]:
    """One result per (claim, data set with that claim's experiment); a claim without any
    data gives one "not run" row naming the command that would produce it."""
    out = []
    for claim in claims:
        sets = [rs for (exp, ds), rs in sorted(results.items())
                if exp == claim.experiment and (dataset is None or ds == dataset)]
        if not sets:
            where = f" on {dataset}" if dataset else ""
            out.append(ClaimResult(claim, dataset, Outcome(
                NOT_RUN, evidence=f"no {claim.experiment} results{where} in {results_dir}; "
                f"run: {suggested_command(claim, dataset, results_dir)}")))
            continue
        for rs in sets:
            out.append(ClaimResult(claim, rs.dataset, evaluate_claim(claim, rs, results_dir),
                                   tuple(rs.files)))
    return out
