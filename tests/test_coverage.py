"""The coverage of the chapter (docs_gen/coverage.toml, the site's Coverage page) cannot drift
from the catalogue: every (file, claim id) it names exists, and every claim of every packaged
file is placed in some statement."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from dnnbench import definition

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT.parent / "shared" / "EXPERIMENTS.md"  # the chapter map, where a checkout has it


@pytest.fixture(scope="module")
def pages():
    path = ROOT / "docs_gen" / "pages.py"
    spec = importlib.util.spec_from_file_location("docs_gen_pages_coverage", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as mkdocs loads a hook (dataclasses look it up)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def doc(pages):
    return pages.coverage_doc()


@pytest.fixture(scope="module")
def known(pages):
    return pages.catalogue_claims()


def test_every_named_claim_exists_in_the_catalogue(doc):
    for st in doc["statement"]:
        for name, claim_id in st.get("claims", []):
            assert name in definition.catalogue(), (st["text"], name)
            ids = [str(c.id) for c in definition.load(name).claims]
            assert str(claim_id) in ids, f"{name} has no claim {claim_id!r} ({st['text']})"


def test_every_claim_of_every_packaged_file_is_placed(doc):
    named = {(n, str(c)) for st in doc["statement"] for n, c in st.get("claims", [])}
    for name in definition.catalogue():
        for c in definition.load(name).claims:
            assert (name, str(c.id)) in named, (
                f"claim {c.id!r} of {name} is in no statement of docs_gen/coverage.toml")


def test_the_coverage_file_has_no_problems(pages, doc, known):
    assert pages.coverage_problems(doc, known) == []
    for st in doc["statement"]:
        assert st["family"] in doc["families"]
        assert st.get("claims") or st.get("unit") or st.get("note"), st["text"]


def test_a_missing_claim_and_an_unplaced_one_are_reported(pages, doc, known):
    bad = copy.deepcopy(doc)
    first = bad["statement"][0]
    dropped = tuple(first["claims"].pop(0))
    first["claims"].append(["selu", "no-such-claim"])
    bad["statement"].append({"family": "Z", "text": "untested", "unit": ["tests/nope.py"]})
    problems = "\n".join(pages.coverage_problems(bad, known))
    assert "selu has no claim 'no-such-claim'" in problems
    assert f"claim {dropped[1]!r} of {dropped[0]} is in no statement" in problems
    assert "unknown family 'Z'" in problems and "no unit-test file tests/nope.py" in problems
    page = pages.coverage_page([], bad, known)  # the page says so too
    assert "coverage.toml is out of date" in page and "no-such-claim" in page


def test_the_page_shows_each_statement_claim_and_verdict(pages, doc, known):
    rows = [{"claim_id": "1", "experiment": "depth-sweep", "verdict": "supported",
             "dataset": "mnist"},
            {"claim_id": "9", "experiment": "transfer", "verdict": "inconclusive",
             "dataset": "digits"},
            {"claim_id": "9", "experiment": "transfer", "verdict": "supported",
             "dataset": "mnist"}]
    page = pages.coverage_page(rows, doc, known)
    for st in doc["statement"]:
        assert pages.cell(st["text"]) in page
    line = next(x for x in page.splitlines() if ">9</code>" in x)
    # preset names: bn-depth's verdicts are filed under depth-sweep, transfer-learning's under
    # transfer; several data sets: one verdict each
    assert re.search(r"\[mnist\] <span[^>]*>supported</span>, \[digits\] <span", line)
    line = next(x for x in page.splitlines() if ">bn-fewer-steps-deep</code>" in x)
    assert ">1</code> <span class=\"verdict supported\">" in line
    assert ">2</code> <span class=\"verdict not-run\">not run</span>" in line
    assert "[bn-depth](experiments/bn-depth.md)" in line
    n = sum(1 for st in doc["statement"] if st.get("map", True))
    assert f"**{n} statements**" in page


def test_the_committed_verdicts_are_found(pages):
    page = pages.coverage_page(pages.claim_rows())
    counts = re.search(r"\*\*(\d+) statements\*\*: (\d+) tested by a claim with a committed "
                       r"verdict", page)
    assert counts and int(counts[2]) > 0


@pytest.mark.skipif(not MAP.exists(), reason="the chapter map is not in this checkout")
def test_every_family_of_the_map_has_a_statement(doc):
    letters = re.findall(r"^## ([A-Z])\. ", MAP.read_text(encoding="utf-8"), re.MULTILINE)
    assert letters and set(letters) == set(doc["families"])
    assert {st["family"] for st in doc["statement"]} == set(letters)


def test_the_readme_coverage_table_is_the_one_the_committed_claims_make(pages, doc, known):
    """README.md's coverage table is made from coverage.toml and results/claims.csv: it
    cannot drift from them (`python docs_gen/pages.py readme` remakes it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = pages.readme_coverage(pages.claim_rows(), doc, known)
    assert pages.readme_with_coverage(readme, block) == readme, (
        "README.md's coverage table is out of date: run `python docs_gen/pages.py readme`")
    total = next(r for r in block.splitlines() if "**all**" in r).replace("*", "").split(" | ")
    assert total[0] == "| all" and int(total[1]) == sum(
        st.get("map", True) for st in doc["statement"])
