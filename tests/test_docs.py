"""The documentation site's generated pages (docs_gen/pages.py) cover every packaged experiment
and every registry name, so that the site cannot drift from the code."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from dnnbench import choices, definition, registry
from dnnbench.analysis.evaluators import EVALUATORS
from dnnbench.definition import experiment, figures, protocols, settings
from dnnbench.models import norms

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    path = ROOT / "docs_gen" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as mkdocs loads a hook (dataclasses look it up)
    sys.path.insert(0, str(path.parent))  # hooks.py imports pages as mkdocs loads it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(scope="module")
def pages():
    return _load("pages")


@pytest.fixture(scope="module")
def generated(pages):
    return pages.pages()


def test_every_packaged_experiment_has_a_page_in_the_nav(pages, generated):
    nav = str(pages.experiments_nav())
    for name in definition.catalogue():
        page = generated[f"experiments/{name}.md"]
        exp = definition.load(name)
        assert exp.question.split()[0] in page
        assert f"{name}.md" in generated["experiments/index.md"]
        assert f"experiments/{name}.md" in nav
        for claim in exp.claims:
            assert f"`{claim.id}`" in page, (name, claim.id)
    assert set(pages.FAMILY) <= set(definition.catalogue()), "a family names a missing file"


def test_reference_names_every_registry_entry(generated):
    registries = generated["reference/registries.md"]
    files = generated["reference/experiment-file.md"]
    rows = {  # a table row each
        "optimizers": registry.OPTIMIZERS, "activations": registry.ACTIVATIONS,
        "initializers": registry.INITIALIZERS, "schedules": registry.SCHEDULES,
        "normalizations": norms.NORMALIZATIONS, "figures": figures.FIGURES,
        "protocols": protocols.PROTOCOLS, "evaluators": EVALUATORS,
    }
    for kind, table in rows.items():
        missing = [n for n in table if f"\n| `{n}` |" not in registries]
        assert not missing, f"{kind} missing from the registries page: {missing}"
    for kind, table in {"settings": settings.SETTINGS,
                        "protocol settings": settings.PROTOCOL_SETTINGS}.items():
        missing = [n for n in table if f"\n| `{n}` |" not in files]
        assert not missing, f"{kind} missing from the experiment-file page: {missing}"
    named = {"clippings": (registry.CLIPPINGS, registries), "dropouts": (registry.DROPOUTS,
             registries), "inputs": (choices.INPUTS, registries),
             "datasets": (choices.DATASETS, registries), "metrics": (settings.METRICS, files)}
    for kind, (table, page) in named.items():
        missing = [n for n in table if f"`{n}`" not in page]
        assert not missing, f"{kind} missing from the reference: {missing}"
    for name, optimizer in registry.OPTIMIZERS.items():
        row = next(r for r in registries.splitlines() if r.startswith(f"| `{name}` |"))
        assert all(f"`{k}` = " in row for k in optimizer.defaults), name
    for name, schedule in registry.SCHEDULES.items():
        row = next(r for r in registries.splitlines() if r.startswith(f"| `{name}` |"))
        assert all(f"`{k}` = " in row for k in schedule.params), name


def test_every_top_level_key_is_described(pages):
    assert set(pages.TOP_KEYS) == experiment.TOP_KEYS


def test_figures_and_claims_link_committed_files(pages, generated):
    served = pages.assets()
    for page in generated.values():
        for target in re.findall(r"\]\(\.\./(results/[^)]+)\)", page):
            assert target in served, target
    depth = generated["experiments/bn-depth.md"]
    assert "results/depth-sweep-mnist-steps-to-target.png" in depth  # the preset's results
    assert 'class="verdict ' in depth  # committed verdicts of results/claims.csv


def test_header_comment_paragraphs(pages, tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("# Title line.\n# Command: dnnbench run x --plot\n# Protocol: a b\n"
                    "# c d.\n# - one\n#   more\n# - two\nname = \"x\"\n# not read\n")
    assert pages.header_comment(path) == ("Title line.\n\nCommand: `dnnbench run x --plot`\n\n"
                                          "Protocol: a b c d.\n\n- one more\n- two")


def test_hook_rewrites_links_to_committed_files():
    pytest.importorskip("mkdocs")
    hooks = _load("hooks")

    class Page:  # what on_page_markdown reads of an mkdocs page
        def __init__(self, src_uri):
            self.file = type("F", (), {"src_uri": src_uri, "generated_by": None})()

    md = "![a](../../results/x.png) [b](../results/y.csv) [c](../../results.md)"
    assert hooks.on_page_markdown(md, Page("guide/p.md"), None, None) == \
        "![a](../results/x.png) [b](../results/y.csv) [c](../../results.md)"
    assert hooks.on_page_markdown("[d](../results/z.png)", Page("claims.md"), None, None) == \
        "[d](results/z.png)"
