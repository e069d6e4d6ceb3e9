"""Executable claims over the result CSVs (``dnnbench claims``).

The packaged claims live in the experiment files they belong to (``[[claims]]`` with
evaluator checks, dnnbench/experiments/catalogue/); users add or override claims with their
own file of ``[[claim]]`` tables (see :mod:`dnnbench.claims.engine`).  See :mod:`dnnbench.claims.engine` for the evaluators
and the verdict rules.
"""

from dnnbench.claims.engine import (
    CSV_COLUMNS,
    EVALUATORS,
    VERDICTS,
    Check,
    Claim,
    ClaimResult,
    ClaimsError,
    Evaluator,
    MissingData,
    Outcome,
    ResultSet,
    claims_frame,
    evaluate_claim,
    evaluate_claims,
    load_claims,
    load_results,
    packaged_claims,
    parse_claims,
    read_claims_file,
)

__all__ = [
    "CSV_COLUMNS",
    "EVALUATORS",
    "VERDICTS",
    "Check",
    "Claim",
    "ClaimResult",
    "ClaimsError",
    "Evaluator",
    "MissingData",
    "Outcome",
    "ResultSet",
    "claims_frame",
    "evaluate_claim",
    "evaluate_claims",
    "load_claims",
    "load_results",
    "packaged_claims",
    "parse_claims",
    "read_claims_file",
]
