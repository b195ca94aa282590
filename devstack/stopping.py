"""Stopping the long-running commands: Ctrl-C and SIGTERM ask for an orderly stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

_STOP = threading.Event()


def catch_stop_signals() -> None:
    """From now on Ctrl-C (SIGINT) and SIGTERM ask for an orderly stop."""

    def on_signal(signum: int, frame: object) -> None:
        _STOP.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def wait_for_interrupt(tick: Callable[[], None] | None = None) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM, calling `tick()` about 5 times a second."""
    catch_stop_signals()
    while not _STOP.wait(0.2):
        if tick is not None:
            tick()


def stopped_line(kept: Path | None) -> str:
    """The last line of a stop: where the logs are if they were kept (after a crash)."""
    if kept is None:
        return "# stopped; nothing left running; logs removed."
    return f"# stopped; nothing left running; logs kept in {kept}"
