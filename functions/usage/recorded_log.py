"""One INFO line per instance and interval for the events it recorded, instead of one per event.

A recorded event's own line costs about as much as a third of its record write in Cloud
Logging (one ~1 KB entry at $0.50 per GiB: bench/usage_cost.py), and says nothing the record
does not: `usage_tracking/{id}` holds the event, its cost and the message id. So each event's
`recorded` line is DEBUG (not written at the default level; the local suite's live log still
shows it), and the first request after each `interval` writes one INFO line that counts what
this instance recorded since the last one: events, customers, the busiest customers and the
estimated cost. Rejections, duplicates, conflicts and retries keep their own line each.

Thread-safe; no background thread (an idle Cloud Run instance has no CPU): a line is written by
the request that finds the interval over, so an instance that stops loses at most one interval
of the summary, never a record.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from shared import logs

TOP_CUSTOMERS: Final = 5
"""Busiest customers named in one line (the rest are counted)."""


@dataclass(slots=True)
class RecordedLog:
    """Counts recorded events and writes the summary line every `interval` seconds."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _since: float | None = None
    _events: Counter[str] = field(default_factory=Counter)
    _by_counting: Counter[str] = field(default_factory=Counter)
    _cost: Decimal = Decimal(0)

    def recorded(self, customer_id: str, cost: Decimal, counted: str) -> None:
        """Note one recorded event; write the line if the interval is over."""
        now = self.clock()
        with self._lock:
            if self._since is None:
                self._since = now
            self._events[customer_id] += 1
            self._by_counting[counted] += 1
            self._cost += cost
            if now - self._since < self.interval:
                return
            events, by_counting, cost_sum = self._events, self._by_counting, self._cost
            seconds = now - self._since
            self._since, self._events, self._by_counting = now, Counter(), Counter()
            self._cost = Decimal(0)
        total = sum(events.values())
        logs.info(
            f"usage recorded: {total} events of {len(events)} customers in {seconds:.0f} s "
            "(this instance)",
            decision="recorded-summary",
            events=total,
            customers=len(events),
            busiest=dict(events.most_common(TOP_CUSTOMERS)),
            counted=dict(by_counting),
            estimated_cost=str(cost_sum),
            seconds=round(seconds, 3),
        )
