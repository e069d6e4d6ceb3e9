"""The layering of the package (docs/architecture.md): the import contract of pyproject.toml
holds, no module imports another module's private names, and the document names every
subpackage."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dnnbench"
ROOT = PACKAGE.parent


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dnnbench"):
            yield node


def test_no_module_imports_another_modules_private_names():
    found = [f"{p.relative_to(ROOT)}:{n.lineno} {n.module}.{a.name}"
             for p in PACKAGE.rglob("*.py") for n in _imports(p) for a in n.names
             if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_the_architecture_document_names_every_subpackage():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    subpackages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert subpackages and [s for s in subpackages if f"`{s}/`" not in text] == []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_the_import_contract_holds():
    """`lint-imports` (also run by .ci/run): layers bottom to top, no cycle between the
    subpackages; function-local imports count."""
    r = subprocess.run(["lint-imports"], check=False, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
