"""Plays Cloud Scheduler locally (there is no emulator): call a publisher every few seconds."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable


class Ticker:
    """Calls `fire` every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(self, fire: Callable[[], object], interval: float, name: str = "schedule") -> None:
        self._fire = fire
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Ticker:
        """Start ticking (the first tick comes after one interval)."""
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # an emulator going away: next tick, or stop
                self._fire()

    def stop(self) -> None:
        """Stop ticking and wait for a tick under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
