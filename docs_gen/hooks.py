"""mkdocs hooks (``hooks:`` in mkdocs.yml): add the generated pages of ``pages.py`` and the
committed figures of ``results/`` to the site, and list the experiment pages in the nav.

Hand-written pages link a committed file as GitHub sees it (``../results/x.png`` from
``docs/``, ``../../results/x.png`` from ``docs/guide/``); the site serves those files under
``results/``, so such links are rewritten to it (and checked by ``mkdocs build --strict``).
"""

from __future__ import annotations

import re

import pages
from mkdocs.structure.files import File, Files

EXPERIMENTS_NAV = "Experiments"  # the nav entry the experiment pages replace


def on_config(config):
    for i, item in enumerate(config.nav or []):
        if isinstance(item, dict) and EXPERIMENTS_NAV in item:
            config.nav[i] = {EXPERIMENTS_NAV: pages.experiments_nav()}
    return config


def on_files(files: Files, config) -> Files:
    for path, markdown in pages.pages().items():
        files.append(File.generated(config, path, content=markdown))
    for path, source in pages.assets().items():
        files.append(File.generated(config, path, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.generated_by:
        return markdown
    depth = page.file.src_uri.count("/")
    return re.sub(r"\]\(" + re.escape("../" * (depth + 1)) + "results/",
                  "](" + "../" * depth + "results/", markdown)
