"""Ctrl-C and SIGTERM end the process with one "Interrupted" line and exit code 130.

:func:`run` is the console entry point's wrapper. A signal outside a running experiment
(start-up, data loading, printing) prints "Interrupted" and exits at once; an experiment
(``run_experiment``) catches the signal itself, saves what it can and prints its own
"Interrupted: ..." line through :func:`announce`. Either way the process then ends with
``os._exit(130)`` after flushing its streams: Python's normal shutdown would run JAX's
``atexit`` handlers and tear down the interpreter while XLA's threads still run, which can
print a traceback after the message (a second SIGINT, e.g. forwarded by ``uv run``, lands in
a handler) or crash (exit 139), and a Ctrl-C during that shutdown would end a finished run
with 130 and no message. So every exit of the command is ``os._exit`` after the streams are
flushed; the files are safe: each is written atomically and closed before this point.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_announced = False
_process = False  # run() runs this process (in-process callers, e.g. tests, may announce again)


def announce(message: str = "Interrupted") -> None:
    """Print the interruption line on stderr, once per process run by :func:`run`."""
    global _announced
    if not (_process and _announced):
        _announced = True
        print(message, file=sys.stderr, flush=True)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing more to say
            pass
    os._exit(code)


def _on_signal(signum, frame) -> None:
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
    announce()
    _exit_now(EXIT_INTERRUPTED)


def run(app) -> None:
    """Run the Typer ``app`` as this process and end it with ``os._exit`` (code 130 after an
    interruption), so that no interpreter shutdown follows the last line printed."""
    global _process
    _process = True
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:  # raised by code that replaced the handlers
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        announce()
    _exit_now(code)
