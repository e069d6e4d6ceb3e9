"""dnnbench: reproduces, measures and checks the classic experiments of training deep nets."""

from __future__ import annotations

import os as _os
import sys as _sys

if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "dnnbench":  # the console script
    import signal as _signal

    def _interrupted_while_starting(signum, frame):  # replaced by cli.interrupt.run
        print("Interrupted", file=_sys.stderr, flush=True)
        _os._exit(130)

    for _s in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_s, _interrupted_while_starting)

# (imports after the handler: a Ctrl-C while they load is one line too)
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
