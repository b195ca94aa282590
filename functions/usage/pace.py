"""How busy each customer-month is in this instance: the one signal that chooses how an event
is counted.

A customer-month is hot when this instance received about `hot_rate` of its events or more in
the last second. A hot one increments counter shards, spread over every shard, and gathers its
events into shared commits (`functions.usage.batching`): one shard write per batch. A quiet one
writes its record alone, marked with its fold bucket, and the fold counts it from the records
(docs/counters.md): no counter write at all. Thread-safe; remembers a bounded number of
customer-months (the oldest are forgotten first).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Final

HOT_RATE: Final = 20.0
"""Events per second of one customer-month in one instance from which it counts in shards."""
KEEP: Final = 10_000
"""Customer-months remembered at most."""


class Pace:
    """Arrivals per customer-month in this instance, over a sliding second."""

    def __init__(
        self,
        hot_rate: float = HOT_RATE,
        *,
        keep: int = KEEP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hot_rate = hot_rate
        self._keep = keep
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}
        """Customer-month -> (start of its current second, arrivals in it, in the one before);
        insertion order = age order."""
        self._lock = threading.Lock()

    def arrive(self, customer_id: str, month: str) -> bool:
        """Note an event of the customer-month; True when it is hot (see module doc): the
        arrivals of the last second, this one included, reach `hot_rate`."""
        key = (customer_id, month)
        now = self._clock()
        with self._lock:
            start, current, previous = self._seen.pop(key, (now, 0, 0))
            if now - start >= 1.0:  # a later second: the one before it is the previous one
                passed = int(now - start)
                start += passed
                previous, current = (current if passed == 1 else 0), 0
            current += 1
            self._seen[key] = (start, current, previous)
            if len(self._seen) > self._keep:
                del self._seen[next(iter(self._seen))]
        # The previous second weighs by how much of it is still inside the sliding second.
        rate = current + previous * max(0.0, 1.0 - (now - start))
        return rate >= self.hot_rate


class RoundRobinShards:
    """Shard picker for hot customer-months: cycles through [0, shards) from a random start,
    per process.

    Even spread within an instance (1,200 events over 128 shards: at most 10 writes to any
    shard, where uniform random picks put ~18 on the busiest); instances start at random
    offsets, so together they spread evenly too. Thread-safe.
    """

    def __init__(self) -> None:
        self._next = random.getrandbits(32)
        self._lock = threading.Lock()

    def __call__(self, shards: int) -> int:
        with self._lock:
            self._next += 1
            return self._next % shards
