"""The local suite's stand-in for Cloud Scheduler."""

from __future__ import annotations

import threading

from devstack.schedule import Ticker


def test_ticker_fires_until_stopped_and_survives_a_failing_tick() -> None:
    fired = threading.Event()
    calls: list[int] = []

    def fire() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("emulator going away")  # the next tick comes all the same
        fired.set()

    ticker = Ticker(fire, 0.01).start()
    assert fired.wait(5)
    ticker.stop()
    after = len(calls)
    assert after >= 2
    threading.Event().wait(0.05)
    assert len(calls) == after  # nothing after stop()
