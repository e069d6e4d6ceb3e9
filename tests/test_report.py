"""`dnnbench report`: the HTML/Markdown report of a results folder, and what it refuses."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.report import figures
from dnnbench.report.html import ReportError, build_report, render_html
from dnnbench.report.markdown import markdown_table, render_markdown
from dnnbench.results.io import SchemaError

RESULTS = Path(__file__).parent / "fixtures" / "results"
runner = CliRunner()

SECTION_TITLES = ["Steps to 90% test accuracy vs depth, with and without batch norm — digits",
                  "Optimizers: speed and quality — digits",
                  "Transfer: B from scratch vs B on A's layers — digits",
                  "Optimizer performance profiles"]  # across them: after the main three


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def copy_results(dst: Path, experiments=("depth-sweep", "optimizers", "transfer"),
                 claims: bool = True) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for exp in experiments:
        for suffix in ("runs.csv", "curves.csv", "meta.json"):
            shutil.copy(RESULTS / f"{exp}-digits-{suffix}", dst)
    if claims:
        shutil.copy(RESULTS / "claims.csv", dst)
    return dst


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """`dnnbench report tests/fixtures/results --out OUT`, run once for the module."""
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "DPI", 40)  # small images: the same content, drawn faster
        result = runner.invoke(app, ["report", str(RESULTS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="module")
def page(written) -> str:
    return (written[0] / "report.html").read_text(encoding="utf-8")


def test_report_writes_html_markdown_and_figures(written):
    out, result = written
    assert (out / "report.html").stat().st_size < 200_000  # figures are linked
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == sorted([
        "depth-sweep-digits-steps-to-target.png", "depth-sweep-digits-timing.png",
        "depth-sweep-digits-curves.png", "depth-sweep-digits-kaplan-meier.png",
        "optimizers-digits-steps-to-target.png", "optimizers-digits-speed-vs-quality.png",
        "optimizers-digits-train-loss.png", "optimizers-digits-curves.png",
        "transfer-digits-final-test-accuracy.png", "transfer-digits-paired-accuracy.png",
        "transfer-digits-gains.png", "transfer-digits-curves.png",
        "performance-profiles.png"])  # across the result sets that vary the optimizer
    assert "report.html" in result.stderr and result.stdout == ""


def test_html_links_every_written_figure_and_fetches_nothing_from_outside(written, page):
    out, _ = written
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    links = re.findall(r'<img alt="[^"]*" src="(figures/[^"]+\.png)"', page)
    assert len(links) == len(list((out / "figures").glob("*.png"))) and links
    assert all((out / link).is_file() for link in links)
    assert "base64" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from outside
    assert "<style>" in page


def test_self_contained_report_embeds_every_figure(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("depth-sweep",), claims=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "DPI", 30)
        res = runner.invoke(app, ["report", str(folder), "--self-contained"])
    assert res.exit_code == 0, res.output
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    n = len(list((folder / "report" / "figures").glob("*.png")))
    assert n == 4 and page.count('src="data:image/png;base64,') == n
    assert 'src="figures/' not in page


def test_html_has_a_section_per_experiment_claims_and_metadata(page):
    headings = [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)]
    # the summary first; the sections in reading order (the main three first)
    assert headings == ["Summary", *SECTION_TITLES, "Claims", "Metadata"]
    for anchor in ("summary", "depth-sweep-digits", "optimizers-digits", "transfer-digits",
                   "claims", "metadata"):
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page


def test_the_summary_tallies_the_claims_and_links_every_section(page):
    summary = page[page.index('<section id="summary">'):page.index("</section>")]
    tally = re.search(r'<a href="#claims">(\d+) claims: ([^<]*)</a>', summary)
    assert tally and "supported" in tally.group(2)
    items = re.findall(r'<li><a href="#([^"]+)">', summary)
    assert items == ["depth-sweep-digits", "optimizers-digits", "transfer-digits"]


def test_the_contents_link_every_section(page):
    """A table of contents near the top: a link to every section of the page, in order."""
    nav = re.search(r"<nav>(.*?)</nav>", page, re.DOTALL)
    assert nav and page.index("<nav>") < page.index('<section id="summary">')
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert re.findall(r'<a href="#([^"]+)">', nav.group(1)) == sections
    assert sections[:2] == ["summary", "depth-sweep-digits"] and sections[-1] == "metadata"


def test_every_experiment_shows_what_it_found_next_to_what_was_expected(page):
    for anchor in ("depth-sweep-digits", "optimizers-digits", "transfer-digits"):
        section = page[page.index(f'<section id="{anchor}">'):]
        section = section[:section.index("</section>")]
        outcome = re.search(r'<div class="outcome"><div class="expected">'
                            r'<span class="label">Expected</span><p>(.+?)</p></div>'
                            r'<div class="found"><span class="label">Found</span>'
                            r"<p>(.+?)</p></div></div>", section)
        assert outcome, anchor
        assert outcome.group(1).strip() and outcome.group(2).strip()
        # the outcome before the tables; side by side, stacked on a narrow page
        assert section.index('class="outcome"') < section.index("<table")
    assert re.search(r"\.outcome \{[^}]*grid-template-columns: minmax\(0, 2fr\) "
                     r"minmax\(0, 3fr\)", page)
    assert re.search(r"@media \(max-width: 900px\) \{[^@]*\.outcome \{ "
                     r"grid-template-columns: 1fr; \}", page)


def test_a_file_without_a_finding_says_so():
    from dnnbench.report.document import NO_FINDING, Section
    from dnnbench.report.html import _outcome_html

    mine = Section("m", "Mine", "mine", "", "", expected="BN helps.")
    text = _outcome_html(mine)
    assert "BN helps." in text and html.escape(NO_FINDING) in text
    assert _outcome_html(Section("r", "Range test", "lr-find", "", "")) == ""


def test_the_summary_headline_is_a_finding_not_how_the_run_was_made():
    from dnnbench.report.document import finding, first_sentence

    text = ("Committed MNIST run of `dnnbench x --a 1` (5 seeds, re-run 2026-12-07: every "
            "step (twice)). Without BN the steps grow from 12 to 56 (x4.67 [3.15, 5.33]). "
            "More.")
    assert first_sentence(finding(text)) == ("Without BN the steps grow from 12 to 56 "
                                             "(x4.67 [3.15, 5.33]).")
    assert finding("Committed MNIST run (5 seeds): the rate explains most.") == \
        "The rate explains most."
    assert finding("BN helps at depth 7.") == "BN helps at depth 7."  # no provenance


def test_tables_wrap_instead_of_being_cut(page):
    """Cells wrap (long words and arm names too), numbers break between an estimate, its
    interval and a verdict but never inside an interval; no cell is kept on one line."""
    css = page[page.index("<style>"):page.index("</style>")]
    td = re.search(r"th, td \{([^}]*)\}", css).group(1)
    assert "overflow-wrap: break-word" in td  # a level's name wraps between its words
    assert "overflow-wrap: anywhere" in re.search(r"td\.text \{([^}]*)\}", css).group(1)
    assert "pair=0v1,<wbr>stage=B-on-A" in page  # an arm's name breaks after a comma
    # numbers on one line where there is room; on a narrow page, or in a wide table, they
    # wrap
    narrow = css[css.index("@media (max-width: 900px)"):]
    assert re.search(r"td\.num \{ white-space: normal; \}", narrow)
    assert re.search(r"table\.wide td\.num, table\.wide \.ci \{ white-space: normal; \}",
                     css)
    assert "nowrap" not in re.search(r"td\.text \{([^}]*)\}", css).group(1)
    assert "table-layout: auto" in css
    assert re.search(r"@media \(max-width: 900px\)", css)
    # an interval is one piece (the cell breaks before and after it), except in a table
    # too wide for that
    assert re.search(r"\.ci \{ white-space: nowrap; \}", css)
    assert "<table><caption>depth-sweep on digits" in page  # fewer than 9 columns
    from dnnbench.report.document import TableItem
    from dnnbench.report.html import html_table

    wide = pd.DataFrame([{"arm": "a", **{f"m{i}": "0.91 [0.90, 0.92]" for i in range(9)}}])
    assert '<table class="wide">' in html_table(TableItem("t", wide))
    assert "<table><caption>" in html_table(TableItem("t", wide.iloc[:, :8]))


def test_html_tables_carry_the_statistics(page):
    # depth sweep (the common table): KM medians and the paired ratio against BN off
    assert "depth-sweep on digits (3 seeds per arm, paired; 95% intervals)" in page
    # (3 seeds: a ratio whose interval excludes 1, but too few seeds for a verdict)
    assert 'x0.62 <span class="ci">[0.45, 0.86]</span> too few seeds for a verdict' in page
    assert "fewer steps</span>" not in page
    # optimizers (a file's section): the paired comparison with SGD, default and tuned arms;
    # transfer (the common table): B-on-A against B per pair, A not compared
    assert "steps vs reference" in page and "final eval acc. vs reference" in page
    assert page.count(">tuned<") == 4 and "Which optimizer converges fastest" in page
    assert page.count("too few seeds for a verdict") >= 3
    assert "transfer on digits (3 seeds per arm, paired; 95% intervals)" in page
    assert page.count("pair=0v1,<wbr>stage=B-on-A") >= 1 and "not compared" in page
    # no target, nothing to reach: the transfer table has no "reached" column
    transfer = page[page.index('id="transfer-digits"'):]
    table = transfer[:transfer.index("</table>")]
    assert ">reached</th>" not in table and ">stage</th>" in table
    assert ">reached</th>" in page[page.index('id="depth-sweep-digits"'):]
    assert page.count("seeds per arm") >= 3


def test_html_shows_the_metadata(page):
    for exp in ("depth-sweep", "optimizers", "transfer"):
        meta = json.loads((RESULTS / f"{exp}-digits-meta.json").read_text())
        assert meta["command"].replace("'", "&#x27;") in page
        assert meta["git_commit"] in page
    assert "20def7f70a702f0af9732fbba4375e147a7d54fe70d8c45569b8e7c1c7010c10" in page
    assert "jax 0.10.2" in page and "cpu / cpu (cpu:0" in page
    assert "--quick smoke run" in page  # the transfer fixture is a --quick run


def test_html_lists_the_claims_with_verdict_badges(page):
    assert "Claims checked against these results (4: 1 supported, 1 inconclusive, " \
           "1 contradicted, 1 not run)" in page
    for verdict, cls in (("supported", "good"), ("contradicted", "bad"),
                         ("inconclusive", "neutral"), ("not run", "muted")):
        assert f'<span class="badge {cls}">{verdict}</span>' in page


def test_claims_table_is_formatted_not_a_csv_dump(tmp_path):
    """Rounded effects with their intervals, a verdict column, no file lists or 16-digit
    floats; an older claims.csv (no effect_text) is formatted the same way."""
    folder = copy_results(tmp_path / "r", experiments=("transfer",), claims=False)
    row = {"claim_id": "3", "claim": "BN makes each step slower.", "experiment": "depth-sweep",
           "verdict": "inconclusive", "effect": 1.0496768701454924, "low": 0.7549064007918562,
           "high": 1.4595472108365823, "n": 4, "evidence": "[mnist] step_ms ratio ...",
           "files": "depth-sweep-mnist-runs.csv", "command": "dnnbench depth-sweep"}
    for extra in ({}, {"effect_text": "1.05 [0.75, 1.46]"}):
        pd.DataFrame([{**row, **extra}]).to_csv(folder / "claims.csv", index=False)
        t = build_report(folder, render_figures=False).claims
        assert list(t.df.columns) == ["id", "claim", "data set", "verdict", "effect [95% CI]",
                                      "n", "evidence"]
        r = t.df.iloc[0]
        assert r["effect [95% CI]"] == "1.05 [0.75, 1.46]" and r["data set"] == "mnist"
        assert r["evidence"] == "step_ms ratio ..."
        page = render_html(build_report(folder, render_figures=False))
        assert "0.7549064007918562" not in page and "depth-sweep-mnist-runs.csv" not in page
        assert '<span class="badge neutral">inconclusive</span>' in page


def test_markdown_report_refers_to_the_written_figures(written):
    out, _ = written
    md = (out / "report.md").read_text(encoding="utf-8")
    for title in SECTION_TITLES + ["Claims", "Metadata"]:
        assert f"## {title}" in md
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    # (the 12 of the experiments' sections and the optimizer performance profiles')
    assert len(links) == 13 and all((out / link).is_file() for link in links)
    assert "figures/performance-profiles.png" in links
    assert "| depth | bn | activation | reached | steps to target |" in md
    assert "| bn-fewer-steps |" in md


def test_markdown_table_escapes_and_aligns():
    df = pd.DataFrame({"name": ["a|b"], "value": ["1\n2"], "verdict": ["helps"]})
    assert markdown_table(df).splitlines() == [
        "| name | value | verdict |", "|:---|---:|:---|", "| a\\|b | 1<br>2 | helps |"]


def test_report_without_claims_has_no_claims_section(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("transfer",), claims=False)
    report = build_report(folder, render_figures=False)
    page, md = render_html(report), render_markdown(report)
    headings = [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)]
    assert headings == ["Summary", SECTION_TITLES[2], "Metadata"]
    # (the section's own table of the file's claims stays)
    assert 'id="claims"' not in page and "## Claims" not in md


def test_default_out_is_inside_the_results_folder(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("transfer",), claims=False)
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "report" / "report.html").is_file()
    assert (folder / "report" / "figures" / "transfer-digits-gains.png").is_file()


def test_help():
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "RESULTS_DIR" in text and "--out" in text and "report.html" in text


# ------------------------------------------------------------------ refusals: exit 2, no output

def refuse(folder: Path, tmp_path: Path, match: str) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(folder), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert match in one_error_line(result)
    assert not out.exists(), "no partial output"


def test_refuses_a_folder_without_results(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    refuse(empty, tmp_path, "no recognizable results in")
    with pytest.raises(ReportError):
        build_report(empty)


def test_refuses_a_missing_folder(tmp_path):
    refuse(tmp_path / "nope", tmp_path, "does not exist")


def test_refuses_a_folder_with_only_unknown_experiments(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    shutil.copy(RESULTS / "transfer-digits-runs.csv", folder / "mystery-digits-runs.csv")
    (folder / "mystery-digits-meta.json").write_text(json.dumps(
        {"schema_version": 1, "experiment": "mystery", "dataset": {"name": "digits"}}))
    refuse(folder, tmp_path, "skipped: mystery-digits-runs.csv (experiment 'mystery')")


def test_refuses_an_unknown_schema_version(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("transfer",), claims=False)
    meta_path = folder / "transfer-digits-meta.json"
    meta = json.loads(meta_path.read_text())
    meta["schema_version"] = 99
    meta_path.write_text(json.dumps(meta))
    refuse(folder, tmp_path, "unknown schema version 99")
    with pytest.raises(SchemaError):
        build_report(folder)


def test_refuses_missing_columns(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("depth-sweep",), claims=False)
    runs = pd.read_csv(folder / "depth-sweep-digits-runs.csv").drop(columns=["steps_to_target"])
    runs.to_csv(folder / "depth-sweep-digits-runs.csv", index=False)
    meta = json.loads((folder / "depth-sweep-digits-meta.json").read_text())
    meta.pop("files", None)  # a hand-edited file: no digest to catch it
    (folder / "depth-sweep-digits-meta.json").write_text(json.dumps(meta))
    refuse(folder, tmp_path, "missing columns: steps_to_target")


def test_refuses_a_claims_file_without_verdicts(tmp_path):
    folder = copy_results(tmp_path / "r", experiments=("transfer",), claims=False)
    (folder / "claims.csv").write_text("claim_id,claim\nx,y\n")
    refuse(folder, tmp_path, "claims.csv: missing columns: verdict, evidence, files")


@pytest.mark.parametrize("experiment, kind, column, value, what", [
    ("depth-sweep", "runs", "steps_to_target", "many", "numbers"),
    ("depth-sweep", "runs", "final_test_accuracy", "high", "numbers"),
    ("depth-sweep", "runs", "reached", "maybe", "true or false"),
    ("optimizers", "runs", "final_eval_accuracy", "high", "numbers"),  # a file's results
    ("optimizers", "runs", "diverged", "maybe", "true or false"),
    ("transfer", "runs", "final_test_accuracy", "n/a%", "numbers"),
])
def test_refuses_non_numeric_values(tmp_path, experiment, kind, column, value, what):
    folder = copy_results(tmp_path / "r", experiments=(experiment,), claims=False)
    path = folder / f"{experiment}-digits-{kind}.csv"
    df = pd.read_csv(path)
    df[column] = df[column].astype(object)
    df.loc[df.index[1], column] = value
    df.to_csv(path, index=False)
    meta = json.loads((folder / f"{experiment}-digits-meta.json").read_text())
    meta.pop("files", None)  # a hand-edited file: no digest to catch it
    (folder / f"{experiment}-digits-meta.json").write_text(json.dumps(meta))
    refuse(folder, tmp_path, f"column '{column}' holds values that are not {what} "
                             f"('{value}' in 1 row(s))")


def test_the_same_results_give_byte_identical_reports(written, tmp_path, monkeypatch):
    """No clock in the report and fixed SVG ids: regenerating the committed report from
    unchanged results leaves `git status` clean."""
    monkeypatch.setattr(figures, "DPI", 40)
    again = tmp_path / "again"
    assert runner.invoke(app, ["report", str(RESULTS), "--out", str(again)]).exit_code == 0
    first = written[0]
    for path in sorted(first.rglob("*")):
        if path.is_file():
            assert (again / path.relative_to(first)).read_bytes() == path.read_bytes(), path.name


def test_sections_follow_the_reading_order_with_unique_headings():
    from dnnbench.definition.experiment import READING_ORDER, catalogue
    from dnnbench.report.document import Section, arrange

    assert set(READING_ORDER) == set(catalogue())  # every packaged file has its place
    def sec(anchor, title, packaged, experiment):
        return Section(anchor, title, experiment, "", "", packaged=packaged)

    got = arrange([sec("c", "Clipping — mnist", "clipping", "clipping"),
                   sec("t1", "Transfer — mnist", "transfer-learning", "transfer"),
                   sec("m", "Mine — mnist", "mine.toml", "mine"),
                   sec("d", "Depth — mnist", "bn-depth", "depth-sweep"),
                   sec("t2", "Transfer — mnist", "transfer-learning", "transfer-learning")],
                  READING_ORDER)
    assert [s.anchor for s in got] == ["d", "t1", "t2", "c", "m"]
    assert [s.title for s in got][1:3] == ["Transfer — mnist (transfer)",
                                           "Transfer — mnist (transfer-learning)"]


def test_a_metric_an_arm_did_not_measure_is_a_dash_not_an_empty_interval():
    """(regularization: MC dropout's metrics exist only for dropout arms; "– [–, –]" in
    every other row widened the table for nothing.)"""
    from dnnbench.analysis.summary import summarize
    from dnnbench.report.generic import stored_figure_input, summary_cells

    inp = stored_figure_input(RESULTS / "depth-sweep-digits-runs.csv")
    runs = inp.runs.copy()
    runs.loc[runs["bn"] == "on", "final_test_accuracy"] = float("nan")
    cells = summary_cells(inp.exp, summarize(inp.exp, runs))
    on = cells[cells["bn"] == "on"]["test acc."]
    assert (on == "–").all()
    assert cells[cells["bn"] == "off"]["test acc."].str.match(r"0\.\d{4} \[").all()
