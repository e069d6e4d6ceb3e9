"""The generated pages of the documentation site, made from dnnbench itself so that they
cannot drift: one page per packaged experiment file (question, protocol, design, claims with
the committed verdicts of ``results/claims.csv``, figures of ``results/``), the coverage of
the chapter (the statements of the hand-kept ``docs_gen/coverage.toml`` with the verdicts of
the claims that test them) and the reference of the experiment-file format and of every
registry. ``docs_gen/hooks.py`` adds them to the site when mkdocs builds it; nothing here
imports mkdocs.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import inspect
import json
import re
import sys
import tomllib
from pathlib import Path

from dnnbench import choices, definition, registry, spec
from dnnbench.analysis.evaluators import EVALUATORS
from dnnbench.definition import claims, figures, protocols, search, settings
from dnnbench.definition import experiment as experiment_module
from dnnbench.definition.experiment import READING_ORDER
from dnnbench.models import norms


def names(items) -> str:
    """`a`, `b`, `c`"""
    return ", ".join(f"`{x}`" for x in items)


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
EXPERIMENTS = "experiments"  # the folder of the experiment pages in the site
# the families of the packaged files (their order: READING_ORDER's); a file not named here is
# listed under OTHER
FAMILY = {
    **dict.fromkeys(("bn-depth", "optimizer-comparison", "transfer-learning"),
                    "The three main experiments"),
    **dict.fromkeys(("init-activation", "activation-cost", "dying-relu", "selu", "clipping"),
                    "Unstable gradients"),
    **dict.fromkeys(("bn-placement", "bn-inference", "normalization", "normalization-lr",
                     "bn-scale-invariance", "bn-regularizes", "bn-init-scale",
                     "input-normalization"), "Normalization"),
    **dict.fromkeys(("transfer-reuse", "pretraining"), "Reusing layers and pretraining"),
    **dict.fromkeys(("schedules", "losses", "regularization", "lr-wd-dropout"),
                    "Schedules, losses and regularization"),
    **dict.fromkeys(("search", "random-vs-grid", "random-vs-grid-3", "lr-scale",
                     "default-configs"),
                    "Hyper-parameter search and defaults"),
}
OTHER = "Other experiments"
# the top-level keys of an experiment file (a key added to TOP_KEYS fails tests/test_docs.py
# until it is described here)
TOP_KEYS = {
    "name": "the experiment's name: lower-case words joined by `-` (required)",
    "title": "one line",
    "question": "the question it answers, one line",
    "protocol": "how its arms are trained (see [Protocols](registries.md#protocols); "
                "default `train`)",
    "dataset": "the default data set (`--dataset` overrides it)",
    "seeds": "paired seeds per arm",
    "expected": "the expected result, in words",
    "found": "what the committed full run found, and why a claim is contradicted or "
             "inconclusive",
    "cost": "what a full run costs, in words",
    "reference": "the arm every other is compared with, paired by seed (factor = level)",
    "show": "the summary's metric columns (default: "
            + names(settings.DEFAULT_SHOW) + ")",
    "base": "`[base]`: the run settings shared by every arm (see [Settings](#settings))",
    "factors": "`[factors]`: a grid, every combination of levels is an arm; a factor is a "
               "setting with its levels, or a table of named levels that set several settings",
    "quick": "`[quick]`: the smoke variant of `--quick` (keys: "
             + names(sorted(experiment_module.QUICK_KEYS)) + ")",
    "claims": "`[[claims]]`: what the textbook says, checked against the results "
              "(see [Claims](#claims))",
    "search": "`[search]`: a hyper-parameter search (see [Search](#search))",
    "tune": "`[tune]`: tuned arms, a grid of lane values and the metric that picks a point "
            "(see [Tuning](#tuning))",
    "relative_target": "the target is this fraction of the best arm's median final eval "
                       "accuracy, found after training (with `stop_at_target = false`)",
    "figures": "the figure kinds `--plot` and the report draw (see "
               "[Figure kinds](registries.md#figure-kinds); default "
               + names(figures.DEFAULT) + ")",
    "timing_rounds": "after training, time every program's step again in this many "
                     "interleaved rounds (the `-timing.csv` table; 0 = none)",
}


# ------------------------------------------------------------------------------ helpers

def text(s: str) -> str:
    """Free text (a file's question, comments, found) as Markdown: one line, `*` and `<`
    escaped outside code spans."""
    parts = " ".join(str(s).split()).split("`")
    return "`".join(p if i % 2 else p.replace("*", r"\*").replace("<", "&lt;")
                    for i, p in enumerate(parts))


def cell(s: str) -> str:
    return text(s).replace("|", r"\|")


def code(value) -> str:
    """A value as TOML in a code span."""
    return f"`{toml(value)}`"


def toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def docstring(obj) -> str:
    """A docstring as Markdown: ``code`` and :role:`name` as code spans, each ``::`` literal
    block as a TOML code block."""
    out, block = [], None
    for line in inspect.cleandoc(inspect.getdoc(obj) or "").splitlines():
        if block is not None and line and not line.startswith(" "):
            out += ["```toml", *(b[4:] for b in block), "```", ""]
            block = None
        if block is not None:
            block.append(line)
            continue
        line = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", line).replace("``", "`")
        if line.endswith("::"):
            line, block = line[:-1], []
        out.append(line)
    if block is not None:
        out += ["```toml", *(b[4:] for b in block), "```"]
    return "\n".join(out).strip() + "\n"


def verdict(v: str) -> str:
    return f'<span class="verdict {v.replace(" ", "-")}">{v}</span>'


# ------------------------------------------------------------------------ committed results

@dataclasses.dataclass(frozen=True)
class ResultSet:
    """One committed result set of ``results/``: the packaged file it ran, its name (the
    preset's for depth-sweep, optimizers, transfer), data set and command."""

    packaged: str
    experiment: str
    dataset: str
    command: str

    def figures(self) -> list[Path]:
        return sorted(RESULTS.glob(f"{self.experiment}-{self.dataset}-*.png"))


def dataset_rank(name: str) -> tuple:
    order = list(choices.DATASETS)
    return (order.index(name) if name in order else len(order), name)


def result_sets() -> list[ResultSet]:
    """The committed result sets, read from their metadata files."""
    out = []
    for path in sorted(RESULTS.glob("*-meta.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        name = meta.get("experiment")
        if not name or not path.name.startswith(f"{name}-"):
            continue
        dataset = path.name.removeprefix(f"{name}-").removesuffix("-meta.json")
        out.append(ResultSet(meta.get("experiment_file") or name, name, dataset,
                             str(meta.get("command", ""))))
    return sorted(out, key=lambda r: (r.packaged, dataset_rank(r.dataset), r.experiment))


def claim_rows() -> list[dict]:
    """The rows of the committed ``results/claims.csv``, each with its data set."""
    path = RESULTS / "claims.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        runs = (row.get("files") or "").split(";")[0].strip()
        prefix = f"{row['experiment']}-"
        row["dataset"] = (runs.removeprefix(prefix).removesuffix("-runs.csv")
                          if runs.startswith(prefix) else "")
    return rows


def assets() -> dict[str, Path]:
    """Files of ``results/`` the site serves (under ``results/``): figures and claims.csv."""
    files = [*RESULTS.glob("*.png"), RESULTS / "claims.csv"]
    return {f"results/{p.name}": p for p in sorted(files) if p.exists()}


# ------------------------------------------------------------------------- experiment pages

def families() -> dict[str, list[str]]:
    """Family -> the packaged files in it, in reading order."""
    packaged = list(definition.catalogue())
    ordered = [n for n in READING_ORDER if n in packaged] + sorted(set(packaged) -
                                                                    set(READING_ORDER))
    out: dict[str, list[str]] = {}
    for name in ordered:
        out.setdefault(FAMILY.get(name, OTHER), []).append(name)
    return out


def header_comment(path: Path) -> str:
    """A file's leading comment block as paragraphs (a new one after a line that ends a
    sentence, and at every "- " item)."""
    paragraphs: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        line = line[1:].strip()
        if not line:
            continue
        previous = paragraphs[-1][-1] if paragraphs else ""
        if (not paragraphs or line.startswith("- ") or previous.endswith((".", ":"))
                or re.match(r"[A-Z][a-z]+: ", line)):
            paragraphs.append([])
        paragraphs[-1].append(line)
    out = ""
    for p in paragraphs:
        para = text(" ".join(p))  # a command after "Command:" as code
        para = re.sub(r"^Command: (dnnbench [^`(]*?)(?=\s*\(|\.? *$| {2})", r"Command: `\1`",
                      para)
        item = para.startswith("- ") and out.rsplit("\n", 1)[-1].startswith("- ")
        out += ("\n" if item else "\n\n" if out else "") + para  # a list: no blank lines
    return out


def claim_blocks(path: Path) -> list[str]:
    """The ``[[claims]]`` tables of a file as written (comments trailing a table left out)."""
    blocks: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("[[claims]]"):
            blocks.append([])
        elif line.startswith("[") and not line.startswith("[[claims."):
            if blocks and blocks[-1] is not None:
                blocks.append(None)  # another table: the claims' part ended
            continue
        if blocks and blocks[-1] is not None:
            blocks[-1].append(line)
    out = []
    for b in (b for b in blocks if b):
        while b and (not b[-1].strip() or b[-1].startswith("#")):
            b.pop()
        out.append("\n".join(b))
    return out


def _claim_id(block: str, default: str) -> str:
    try:
        return str(tomllib.loads(block)["claims"][0].get("id", default))
    except (tomllib.TOMLDecodeError, KeyError, IndexError):
        return ""


def experiment_page(name: str, sets: list[ResultSet], rows: list[dict]) -> str:
    exp = definition.load(name)
    path = definition.catalogue()[name]
    mine = [r for r in sets if r.packaged == name]
    lines = [f"# {text(exp.title or name)}", "",
             f"`{name}` · {FAMILY.get(name, OTHER)}", "",
             f'!!! question "Question"\n    {text(exp.question)}', "",
             "## Protocol", "", header_comment(path), "",
             "## Design", ""]
    factors = " × ".join(f"`{f}` ({len(v)})" for f, v in exp.factors.items())
    design = [["run it", f"`{exp.command}`"],
              ["protocol", f"`{exp.protocol or protocols.DEFAULT}`"],
              ["data set", f"`{exp.dataset}`"], ["seeds", str(exp.seeds)],
              ["arms", f"{exp.n_arms}" + (f": {factors}" if factors else "")]]
    for f, levels in exp.factors.items():
        design.append([f"factor `{f}`", ", ".join(code(v) for v in levels)])
    if exp.reference:
        design.append(["reference arm", code(exp.reference)])
    design.append(["base settings", ", ".join(f"`{k} = {toml(v)}`"
                                              for k, v in exp.base.items()) or "–"])
    if exp.cost:
        design.append(["cost", cell(exp.cost)])
    for r in mine:
        design.append([f"committed run ({r.dataset})", f"`{r.command}`" if r.command else "–"])
    lines += [table(["", "this experiment"], design), ""]
    for label, value in (("Expected", exp.expected), ("Found", exp.found)):
        if value:
            lines += [f"## {label}", "", text(value), ""]
    lines += claims_section(exp, path, rows)
    figs = [(r, f) for r in mine for f in r.figures()]
    if figs:
        lines += ["## Figures", ""]
        for r, f in figs:
            kind = f.stem.removeprefix(f"{r.experiment}-{r.dataset}-").replace("-", " ")
            lines += [f"### {kind} ({r.experiment}, {r.dataset})", "",
                      f"![{kind}](../results/{f.name})", ""]
    lines += ["## The experiment file", "",
              f'??? example "dnnbench/definition/catalogue/{path.name}"',
              "    ```toml", *("    " + x if x else "" for x in
                                 path.read_text(encoding="utf-8").splitlines()),
              "    ```", ""]
    return "\n".join(lines)


def claims_section(exp, path: Path, rows: list[dict]) -> list[str]:
    if not exp.claims:
        return []
    blocks = claim_blocks(path)
    lines = ["## Claims", "",
             ("Verdicts of the committed runs (`results/claims.csv`, written by `dnnbench "
              "claims results`; [what they mean](../claims.md))."), ""]
    summary, details = [], []
    for i, c in enumerate(exp.claims):
        results = c.results or exp.name
        found = sorted((r for r in rows if r["claim_id"] == c.id and r["experiment"] == results),
                       key=lambda r: dataset_rank(r["dataset"]))
        verdicts = ", ".join(f"{verdict(r['verdict'])} ({r['dataset'] or '?'})" for r in found)
        summary.append([f"`{c.id}`", cell(c.text), verdicts or "no committed result"])
        body = []
        if i < len(blocks) and _claim_id(blocks[i], f"{exp.name}-{i + 1}") == c.id:
            body += ["```toml", *blocks[i].splitlines(), "```", ""]
        for r in found:
            effect = r["effect_text"] or (f"{r['effect']} [{r['low']}, {r['high']}]"
                                          if r["effect"] else "")
            if effect and effect in r["evidence"]:
                effect = ""  # the evidence states it
            body += [f"**{r['dataset']}**: {verdict(r['verdict'])}, n = {r['n'] or '–'}"
                     + (f"; effect {text(effect)}" if effect else ""), "",
                     *evidence(r["evidence"]), ""]
            if r["command"]:
                body += [f"Command: `{r['command']}`", ""]
        details += [f'??? note "{c.id}: {c.text.replace(chr(34), chr(39))}"',
                    *("    " + x if x else "" for x in body), ""]
    return [*lines, table(["claim", "text", "verdict"], summary), "",
            "### Each claim, its test and evidence", "", *details]


def evidence(s: str) -> list[str]:
    """A claim's evidence (parts joined by "; " outside parentheses) as a list of its parts."""
    parts, depth, start = [], 0, 0
    s = text(s)
    for i, ch in enumerate(s):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        if ch == ";" and depth == 0 and s[i + 1:i + 2] == " ":
            parts, start = [*parts, s[start:i]], i + 2
    parts.append(s[start:])
    return parts if len(parts) < 3 else [f"- {p}" for p in parts]


def experiments_index(rows: list[dict]) -> str:
    lines = ["# Experiments", "",
             ("Every packaged experiment file (`dnnbench list`; "
              "`dnnbench/definition/catalogue/`), grouped by family, with the verdicts of "
              "its claims on the committed runs. Each page is generated from the file and "
              "from `results/` when the site is built. [Coverage of the chapter](../"
              + COVERAGE_PAGE + ") maps each statement of the chapter to the claims and "
              "unit tests that check it."), ""]
    for family, members in families().items():
        out = []
        for name in members:
            exp = definition.load(name)
            keys = {(c.results or exp.name, c.id) for c in exp.claims}
            counts: dict[str, int] = {}
            for r in rows:
                if (r["experiment"], r["claim_id"]) in keys:
                    counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
            tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            out.append([f"[{name}]({name}.md)", cell(exp.question), tally or "–"])
        lines += [f"## {family}", "", table(["experiment", "question", "claims"], out), ""]
    return "\n".join(lines)


def experiment_pages() -> dict[str, str]:
    sets, rows = result_sets(), claim_rows()
    pages = {f"{EXPERIMENTS}/index.md": experiments_index(rows)}
    for name in definition.catalogue():
        pages[f"{EXPERIMENTS}/{name}.md"] = experiment_page(name, sets, rows)
    return pages


def experiments_nav() -> list:
    """The Experiments section of the site's navigation."""
    return [{"Overview": f"{EXPERIMENTS}/index.md"}, {"Coverage of the chapter": COVERAGE_PAGE},
            *({family: [{n: f"{EXPERIMENTS}/{n}.md"} for n in members]}
              for family, members in families().items())]


# ------------------------------------------------------------------------------ coverage page

COVERAGE = Path(__file__).resolve().parent / "coverage.toml"  # kept by hand
COVERAGE_PAGE = "coverage.md"
STATEMENT_KEYS = {"family", "text", "claims", "unit", "note", "map"}
# a statement's coverage, in the order of the count line
COVERED = {"verdict": "tested by a claim with a committed verdict",
           "claim": "tested by a claim not yet run",
           "unit": "checked by unit tests only",
           "none": "not covered"}


def coverage_doc(path: Path = COVERAGE) -> dict:
    """``docs_gen/coverage.toml``: the chapter map's statements and what tests each."""
    return tomllib.loads(path.read_text(encoding="utf-8"))


def catalogue_claims() -> dict[tuple[str, str], tuple[str, str]]:
    """(packaged file, claim id) -> (the experiment its verdicts are filed under in
    ``results/claims.csv``, the claim's text), for every claim of every packaged file."""
    out = {}
    for name in definition.catalogue():
        exp = definition.load(name)
        for c in exp.claims:
            out[(name, str(c.id))] = (c.results or exp.name, c.text)
    return out


def coverage_problems(doc: dict, known: dict[tuple[str, str], object],
                      root: Path = ROOT) -> list[str]:
    """What is wrong with a coverage document: a statement naming a claim no packaged file
    has, an unknown family or key, a unit-test file that does not exist, a statement with
    neither a test nor a note; a claim of the catalogue that no statement names."""
    problems, named = [], set()
    families_ = doc.get("families", {})
    for i, st in enumerate(doc.get("statement", []), 1):
        where = f"statement {i} ({st.get('text', '')[:40]!r})"
        if st.get("family") not in families_:
            problems.append(f"{where}: unknown family {st.get('family')!r}")
        if not st.get("text"):
            problems.append(f"{where}: no text")
        if set(st) - STATEMENT_KEYS:
            problems.append(f"{where}: unknown keys {sorted(set(st) - STATEMENT_KEYS)}")
        for pair in st.get("claims", []):
            if not (isinstance(pair, list) and len(pair) == 2):
                problems.append(f"{where}: {pair!r} is not [file, claim id]")
                continue
            key = (pair[0], str(pair[1]))
            named.add(key)
            if key not in known:
                problems.append(f"{where}: {pair[0]} has no claim {pair[1]!r}")
        for test in st.get("unit", []):
            if not (root / test).is_file():
                problems.append(f"{where}: no unit-test file {test}")
        if not st.get("claims") and not st.get("unit") and not st.get("note"):
            problems.append(f"{where}: nothing tests it and no note says why")
    for name, claim_id in sorted(set(known) - named):
        problems.append(f"claim {claim_id!r} of {name} is in no statement of "
                        f"{COVERAGE.name}: place it")
    return problems


def claim_verdicts(key: tuple[str, str], known: dict, rows: list[dict]) -> str:
    """A claim's committed verdicts: one, or one per data set ("[mnist] supported"); "not
    run" where ``results/claims.csv`` has none."""
    results = known[key][0] if key in known else key[0]
    found = sorted((r for r in rows if r["experiment"] == results and r["claim_id"] == key[1]),
                   key=lambda r: dataset_rank(r["dataset"]))
    if not found:
        return verdict("not run")
    if len(found) == 1:
        return verdict(found[0]["verdict"])
    return ", ".join(f"[{r['dataset'] or '?'}] {verdict(r['verdict'])}" for r in found)


def coverage_of(st: dict, known: dict, rows: list[dict]) -> str:
    """A key of COVERED."""
    decided = {v for v in claims.VERDICTS if v != "not run"}
    for name, claim_id in st.get("claims", []):
        results = known.get((name, str(claim_id)), (name,))[0]
        if any(r["experiment"] == results and r["claim_id"] == str(claim_id)
               and r["verdict"] in decided for r in rows):
            return "verdict"
    return "claim" if st.get("claims") else "unit" if st.get("unit") else "none"


def coverage_page(rows: list[dict], doc: dict | None = None,
                  known: dict | None = None) -> str:
    doc = coverage_doc() if doc is None else doc
    known = catalogue_claims() if known is None else known
    statements = doc.get("statement", [])
    status = [coverage_of(st, known, rows) for st in statements]
    in_map = [s for st, s in zip(statements, status, strict=True) if st.get("map", True)]
    counts = {k: in_map.count(k) for k in COVERED}
    beyond = len(statements) - len(in_map)
    lines = ["---", "hide:", "  - toc", "---", "", "# Coverage of the chapter", "",
             ("Every claim-bearing statement of the chapter's map of experiments "
              "(`EXPERIMENTS.md`, families A to L) and what checks it: the claims of the "
              "packaged [experiment files](experiments/index.md) with their verdicts on the "
              "committed runs (`results/claims.csv`; [what a verdict means](claims.md)), and "
              "unit tests for what needs no run (definitions, identities, the textbook's "
              "worked examples). Kept by hand in `docs_gen/coverage.toml`; "
              "`tests/test_coverage.py` fails when it names a claim that no file has, or when "
              "a file's claim is in no statement."), "",
             f"**{len(in_map)} statements**: "
             + ", ".join(f"{n} {COVERED[k]}" for k, n in counts.items()) + "."
             + (f" Besides them, {beyond} "
                + ("entry places claims" if beyond == 1 else "entries place claims")
                + " of the files that the map does not state." if beyond else ""), ""]
    problems = coverage_problems(doc, known)
    if problems:
        lines += ['!!! warning "docs_gen/coverage.toml is out of date"',
                  *(f"    - {text(p)}" for p in problems), ""]
    summary, sections = [], []
    for letter, title in doc.get("families", {}).items():
        mine = [(st, s) for st, s in zip(statements, status, strict=True)
                if st.get("family") == letter]
        if not mine:
            continue
        anchor = f"{letter}-{title}".lower().replace(" ", "-")
        anchor = re.sub(r"[^a-z0-9-]", "", anchor)
        tally = [str(sum(1 for st, s in mine if s == k and st.get("map", True)))
                 for k in COVERED]
        summary.append([f"[{letter}. {text(title)}](#{anchor})", *tally])
        body, n = [], 0
        for st, s in mine:
            if st.get("map", True):
                n += 1
                label = f"{letter}{n}"
            else:
                label = f"{letter}+"
            tests = "<br>".join(
                f"[{name}]({EXPERIMENTS}/{name}.md) · "
                f'<code class="claim-id">{html.escape(str(claim_id))}</code> '
                + claim_verdicts((name, str(claim_id)), known, rows)
                for name, claim_id in st.get("claims", [])) or "–"
            notes = (["**Not covered.**"] if s == "none" else []) + (
                ["Unit tests: " + ", ".join(f"`{t}`" for t in st["unit"]) + "."]
                if st.get("unit") else [])
            if st.get("note"):
                notes.append(cell(st["note"]))
            statement = cell(st["text"]) + ("" if st.get("map", True)
                                            else " *(not in the map)*")
            if notes:
                statement += '<br><span class="coverage-note">' + " ".join(notes) + "</span>"
            body.append([label, statement, tests])
        sections += [f"## {letter}. {text(title)} {{#{anchor}}}", "",
                     '<div class="coverage" markdown>', "",
                     table(["", "statement (notes and unit tests below it)",
                            "tested by: file · claim verdict"], body), "</div>", ""]
    lines += [table(["family", "with a verdict", "claim not run", "unit tests only",
                     "not covered"], summary), "", *sections]
    return "\n".join(lines)


README = ROOT / "README.md"
README_MARKS = ("<!-- coverage: made by `python docs_gen/pages.py readme` -->",
                "<!-- coverage end -->")


def readme_coverage(rows: list[dict], doc: dict | None = None,
                    known: dict | None = None) -> str:
    """The README's coverage table: per family of the chapter map, its statements (those
    with a committed verdict), and the verdicts of the claims that test them."""
    doc = coverage_doc() if doc is None else doc
    known = catalogue_claims() if known is None else known
    statements = doc.get("statement", [])
    kinds = ("supported", "inconclusive", "contradicted", "not run")
    body, total = [], [0, 0, *(0 for _ in kinds)]
    for letter, title in doc.get("families", {}).items():
        mine = [st for st in statements if st.get("family") == letter and st.get("map", True)]
        pairs = {(n, str(c)) for st in doc.get("statement", []) if st.get("family") == letter
                 for n, c in st.get("claims", [])}
        tally = dict.fromkeys(kinds, 0)
        for key in pairs:
            results = known.get(key, (key[0],))[0]
            found = [r["verdict"] for r in rows
                     if r["experiment"] == results and r["claim_id"] == key[1]]
            for v in found or ["not run"]:
                tally[v if v in tally else "not run"] += 1
        decided = sum(coverage_of(st, known, rows) == "verdict" for st in mine)
        counts = [len(mine), decided, *tally.values()]
        total = [a + b for a, b in zip(total, counts, strict=True)]
        body.append([f"{letter}. {title}", *map(str, counts)])
    body.append(["**all**", *(f"**{n}**" for n in total)])
    return "\n".join([README_MARKS[0], table(
        ["family", "statements", "with a verdict", *(f"claims {k}" for k in kinds)], body),
        README_MARKS[1]])


def readme_with_coverage(readme: str, block: str) -> str:
    """``readme`` with its coverage block (between README_MARKS) replaced by ``block``."""
    start, end = readme.index(README_MARKS[0]), readme.index(README_MARKS[1])
    return readme[:start] + block + readme[end + len(README_MARKS[1]):]


# --------------------------------------------------------------------------- reference pages

def defaults() -> dict[str, str]:
    """The value each setting has in an arm that does not set it."""
    bare = definition.make_spec({}, None)
    out = {f.name: code(getattr(bare, f.name)) for f in dataclasses.fields(bare)}
    out["init"] = '`"default"` (by activation)'
    out["depth"] = f"{len(bare.widths)} (of `widths`)"
    out["train_size"] = "`0` (all)"
    return out


def setting_rows(table_: dict, lanes: set) -> list[list[str]]:
    given = defaults()
    rows = []
    for key, s in table_.items():
        if s.names:
            allowed = names(s.names)
            allowed += " or a plug-in" if s.plugins else ""
        elif s.minimum is not None or s.maximum is not None:
            low = "-inf" if s.minimum is None else f"{s.minimum:g}"
            high = "inf" if s.maximum is None else f"{s.maximum:g}"
            close = ")" if s.open_max or s.maximum is None else "]"
            allowed = f"{s.kind} in [{low}, {high}{close}"
        else:
            allowed = s.kind
        rows.append([f"`{key}`", cell(s.about), allowed, given.get(key, "–"),
                     "yes" if key in lanes else ""])
    return rows


def experiment_file_page() -> str:
    lanes = set(spec.LANE_SETTINGS)
    header = ["setting", "what it sets", "allowed values", "default", "lane value"]
    lines = ["# Experiment files", "",
             ("Generated from `dnnbench.definition` when the site is built. The guide's "
              "[Experiments as data](../guide/experiment-files.md) explains the ideas; "
              "`dnnbench list NAME` prints a packaged file."), "",
             "## The format", "", docstring(experiment_module), "",
             "## Top-level keys", "",
             table(["key", "meaning"], [[f"`{k}`", v] for k, v in TOP_KEYS.items()]), "",
             "## Settings", "",
             ("The run settings of `[base]`, of factors and of `--set key=value`. A *lane "
              "value* is a number that arms of one structure may vary inside ONE compiled "
              "program; so are every optimizer coefficient and schedule parameter "
              "([Registries](registries.md)) and the initializer's scale."), "",
             table(header, setting_rows(settings.SETTINGS, lanes)), "",
             "Besides these, an arm may set the coefficients of its optimizer and the "
             "parameters of its schedule by name (`momentum = 0.9`, `decay_steps = 2000`; "
             "[Registries](registries.md)). Other spellings accepted for settings: "
             + ", ".join(f"`{a}` → `{k}`" for a, k in settings.ALIASES.items()) + ".", "",
             "### Settings of the transfer protocol", "",
             table(header, setting_rows(settings.PROTOCOL_SETTINGS, lanes)), "",
             "## Metrics", "",
             "The result columns a claim's `metric` or a file's `show` may name (less is "
             "better for " + names(filter(settings.lower_is_better, settings.METRICS)) + "):",
             "",
             names(settings.METRICS) + ".", "",
             "## Tuning", "",
             "`[tune]` takes a grid of lane values (a list per key) and `by`, one of "
             + names(settings.TUNE_BY)
             + f"; the factor `{settings.TUNE_FACTOR}` (levels "
             + names(settings.TUNE_LEVELS)
             + ") tells the default arms from the tuned ones.", "",
             "## Search", "", docstring(search),
             "Keys of `[search]`: "
             + names(k for k in sorted(search.SEARCH_KEYS) if not k.endswith("_"))
             + "; of a design: " + names(sorted(search.DESIGN_KEYS))
             + "; of a parameter: " + names(sorted(search.PARAM_KEYS))
             + ". Scales: " + names(search.SCALES) + "; methods: "
             + names(search.METHODS) + ".", "",
             "## Claims", "", docstring(claims), "",
             "Keys of a plain claim: " + names(sorted(claims.CLAIM_KEYS))
             + "; of an evaluator claim: "
             + names(sorted(claims.EVALUATOR_CLAIM_KEYS)) + ".", "",
             table(["expect", "decided by"],
                   [[f"`{e}`", f.replace("-", " ")] for e, f in claims.FORM_OF.items()]), "",
             "`quantifier`: " + names(claims.QUANTIFIERS)
             + ". Per-layer metrics `layers.<column>` with a column of "
             + names(claims.LAYER_COLUMNS) + ", a `statistic` of "
             + names(claims.LAYER_STATISTICS) + " and `at` "
             + names(claims.LAYER_AT) + ". A search claim's `test`: "
             + names(claims.SEARCH_TESTS) + ". Verdicts: "
             + ", ".join(verdict(v) for v in (*claims.VERDICTS, claims.NOT_TESTED)) + ".", "",
             ("The evaluators of `[[claims.check]]` tables are listed under "
              "[Evaluators](registries.md#evaluators).")]
    return "\n".join(lines) + "\n"


def registries_page() -> str:
    opt = [[f"`{n}`", o.about, ", ".join(f"`{k}` = {v:g}" for k, v in o.defaults.items())
            or "–"] for n, o in registry.OPTIMIZERS.items()]
    act = [[f"`{n}`", f"`{registry.DEFAULT_INIT.get(n, '–')}`",
            ", ".join(f"`{s}`" for _, s in [registry.ACTIVATION_PARAMS[n]])
            if n in registry.ACTIVATION_PARAMS else ""] for n in registry.ACTIVATIONS]
    init = [[f"`{n}`", i.distribution.replace("_", " "), f"{i.scale:g}",
             i.mode.replace("_", " ")] for n, i in registry.INITIALIZERS.items()]
    sched = [[f"`{n}`", cell(s.about), ", ".join(f"`{k}` = {v:g}" for k, v in s.params.items())
              or "–"] for n, s in registry.SCHEDULES.items()]
    norm = [[f"`{n}`", cell(x.about)] for n, x in norms.NORMALIZATIONS.items()]
    figs = [[f"`{k.name}`", cell(k.about), "automatic" if k.auto else "declared"]
            for k in figures.FIGURES.values()]
    protos = [[f"`{p.name}`", cell(p.about), names(p.settings) or "–"]
              for p in protocols.PROTOCOLS.values()]
    evals = [[f"`{n}`", names(sorted(e.params)), cell(e.doc or "")]
             for n, e in EVALUATORS.items()]
    clip = settings.SETTINGS["clip"].about
    lines = ["# Registries", "",
             ("Every name an experiment file, `--set` or an option may use, generated from "
              "the registries when the site is built (`dnnbench list` prints the same names). "
              "Optimizers, activations, initializers and schedules may also be plug-ins, "
              "`package.module:factory` or `path/to/file.py:factory` (see "
              "[Experiments as data](../guide/experiment-files.md#plug-ins))."), "",
             "## Optimizers", "",
             ("The coefficients (with their defaults) are settings of the arm and lane "
              "values."), "", table(["optimizer", "what", "coefficients"], opt), "",
             "## Activations", "",
             table(["activation", "default initializer (`init = \"default\"`)",
                    "parameter (lane value)"], act), "",
             "## Initializers", "",
             ("Variance scaling: variance = scale / n, n the fan in, the fan out or their "
              "average (unit: n = 1); the scale is a lane value."), "",
             table(["initializer", "distribution", "scale", "mode"], init), "",
             "## Schedules", "",
             ("eta0 is the arm's `learning_rate`, t the update count; the parameters are "
              "settings of the arm and lane values."), "",
             table(["schedule", "learning rate", "parameters"], sched), "",
             "## Normalizations", "",
             table(["norm", "what"], norm), "",
             "`norm_position`: " + names(choices.BN_POSITIONS)
             + " the activation; `bn_eval`: " + names(choices.BN_EVAL)
             + ".", "",
             "## Gradient clipping", "",
             f"`clip`: {text(clip)}. Kinds: "
             + names(registry.CLIPPINGS) + ".", "",
             "## Dropout, inputs and data sets", "",
             "`dropout_kind`: " + names(registry.DROPOUTS)
             + "; `dropout_placement`: "
             + names(choices.DROPOUT_PLACEMENTS)
             + "; `inputs`: " + names(choices.INPUTS)
             + "; data sets: " + names(choices.DATASETS)
             + ", a `file.npz` or a plug-in `package.module:load` "
             "([Data sets](../guide/data.md)).", "",
             "## Protocols", "",
             table(["protocol", "what", "its settings"], protos), "",
             "## Figure kinds", "",
             ("Declared kinds are drawn when a file names them in `figures = [...]`; automatic "
              "ones whenever the results hold what they show."), "",
             table(["kind", "what it shows", ""], figs), "",
             "## Evaluators", "",
             ("The checks a `[[claims.check]]` table may name (`dnnbench claims "
              "--list-evaluators`)."), "",
             table(["evaluator", "parameters", "what it tests"], evals)]
    return "\n".join(lines) + "\n"


def reference_pages() -> dict[str, str]:
    return {"reference/experiment-file.md": experiment_file_page(),
            "reference/registries.md": registries_page()}


def pages() -> dict[str, str]:
    """Every generated page: its path in the site -> its Markdown."""
    return {**experiment_pages(), COVERAGE_PAGE: coverage_page(claim_rows()),
            **reference_pages()}


if __name__ == "__main__":  # python docs_gen/pages.py readme: the README's coverage table
    if sys.argv[1:] != ["readme"]:
        raise SystemExit("usage: python docs_gen/pages.py readme")
    README.write_text(readme_with_coverage(README.read_text(encoding="utf-8"),
                                           readme_coverage(claim_rows())), encoding="utf-8")
