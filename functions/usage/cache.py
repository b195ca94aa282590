"""Per-instance, thread-safe cache of the customers usage events name (existence and tier).

Only customers that exist are kept, for at most `ttl`: an unknown customer is read again on its
next event, so a customer created a moment ago is refused no longer than its read takes. A tier
change reaches the prices within `ttl` at the latest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from functions.usage.ports import PricingCustomer

MAX_ENTRIES: Final = 10_000
"""Bound on the entries kept; past it the cache starts over (each entry is a few hundred bytes)."""
LOAD_WAIT_SECONDS: Final = 30.0
"""How long a request waits for another one's read of the same customer before reading itself
(the read's own deadline is shorter)."""


class CustomerCache:
    """Customers read in the last `ttl_seconds`, per process."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, PricingCustomer]] = {}
        self._loading: dict[str, threading.Event] = {}
        """Customers being read right now -> set when that read is done."""
        self._lock = threading.Lock()

    def get(self, customer_id: str) -> PricingCustomer | None:
        """A customer read less than `ttl` ago, else None (read it)."""
        with self._lock:
            entry = self._entries.get(customer_id)
        return entry[1] if entry is not None and self._clock() < entry[0] else None

    def load(
        self, customer_id: str, read: Callable[[], PricingCustomer | None]
    ) -> PricingCustomer | None:
        """The cached customer, else `read()` it once for everyone asking at the same time
        (single flight: 64 requests of a cold customer make one read, not 64). A customer that
        is not found is not kept: whoever waited reads again itself."""
        hit = self.get(customer_id)
        if hit is not None:
            return hit
        with self._lock:
            flight = self._loading.get(customer_id)
            mine = flight is None
            if flight is None:
                flight = self._loading[customer_id] = threading.Event()
        if not mine:
            flight.wait(LOAD_WAIT_SECONDS)
            return self.get(customer_id) or read()  # the first read found none, or failed
        try:
            customer = read()
            if customer is None:
                self.invalidate(customer_id)
            else:
                self.put(customer)
            return customer
        finally:
            with self._lock:
                self._loading.pop(customer_id, None)
            flight.set()

    def put(self, customer: PricingCustomer) -> None:
        """Remember a customer just read."""
        expires = self._clock() + self.ttl
        with self._lock:
            if len(self._entries) >= self._max and customer.customer_id not in self._entries:
                self._entries.clear()
            self._entries[customer.customer_id] = (expires, customer)

    def invalidate(self, customer_id: str) -> None:
        """Forget one customer (it changed or vanished)."""
        with self._lock:
            self._entries.pop(customer_id, None)
