"""How busy each customer-month is in this instance: the one signal the shard choice and the
group commit share.

A customer-month is busy when another of its events reached this instance within `hot_gap`
seconds. A quiet one keeps to its home shard (one per instance: the fold then reads one shard
of it, not one per event); a busy one spreads over every shard and gathers its events into
shared commits (`functions.usage.batching`). Thread-safe; remembers a bounded number of
customer-months (the oldest are forgotten first).
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable
from typing import Final

HOT_GAP: Final = 1.0
"""Seconds: a customer-month with another event in this instance this recently is busy."""
KEEP: Final = 10_000
"""Customer-months remembered at most."""


class Pace:
    """Last arrival per customer-month, per instance."""

    def __init__(
        self,
        hot_gap: float = HOT_GAP,
        *,
        keep: int = KEEP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hot_gap = hot_gap
        self._keep = keep
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        """Customer-month -> its last arrival (insertion order = age order)."""
        self._lock = threading.Lock()

    def arrive(self, customer_id: str, month: str) -> bool:
        """Note an event of the customer-month; True when it is busy (see module doc)."""
        key = (customer_id, month)
        now = self._clock()
        with self._lock:
            last = self._seen.pop(key, None)
            self._seen[key] = now
            if len(self._seen) > self._keep:
                del self._seen[next(iter(self._seen))]
        return last is not None and now - last <= self.hot_gap


class RoundRobinShards:
    """Shard picker: cycles through [0, shards) from a random start, per process; `home` is a
    customer-month's own shard in this process.

    Even spread within an instance (1,200 events over 128 shards: at most 10 writes to any
    shard, where uniform random picks put ~18 on the busiest); instances start at random
    offsets, so together they spread evenly too. Thread-safe.
    """

    def __init__(self) -> None:
        self._next = random.getrandbits(32)
        self._salt = random.getrandbits(32)
        """Per process: two instances give one quiet customer-month two different homes."""
        self._lock = threading.Lock()

    def __call__(self, shards: int) -> int:
        with self._lock:
            self._next += 1
            return self._next % shards

    def home(self, customer_id: str, month: str, shards: int) -> int:
        """The shard a quiet customer-month uses in this process (stable while it lives)."""
        return (zlib.crc32(f"{customer_id}_{month}".encode()) + self._salt) % shards
