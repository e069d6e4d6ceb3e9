"""dnnbench: reproduces, measures and checks the classic experiments of training deep nets."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def package_root() -> Path:
    """The folder of the installed ``dnnbench`` package."""
    return Path(__file__).resolve().parent


def package_versions(*names: str) -> dict[str, str | None]:
    """The installed version of each distribution in ``names`` (None where not installed)."""
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions
