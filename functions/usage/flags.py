"""Which records of a quiet customer-month carry `fold_bucket` (the flags the fold's scan finds)
and which are only counted by the fold's aggregation queries (docs/counters.md, "Flags").

Every records-counted record carries `fold_key` and is counted by the fold's aggregation over
its month's records by commit time; the fold needs only to learn WHICH months to count. So per
instance, the first record of a customer-month and then one every `every` seconds carries
`fold_bucket` (a flag: the scan reads it); the others carry `fold_flag_at`, the commit time of
the flag that covers them. The fold, for each flag it reads, counts the month up to at least
`FLAG_COVER` after the flag's commit. A record that commits later than that after its flag (a
commit that took most of a minute) is not covered: it makes its month visible another way,
with a zero increment of one of its month's shards (`late`), also when a redelivery finds it.

Thread-safe; the book forgets flags older than `FLAG_COVER`, so it stays as small as the set
of customer-months this instance saw in the last minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final

from shared.counters import FLAG_COVER

FLAG_EVERY: Final = 45.0
"""Seconds (this instance's clock) after a flag before the next record of its customer-month is
flagged again: well inside `FLAG_COVER` (60 s of server time), so that a commit needs to take
about 15 s longer than usual before its record is late."""


def late(commit_time: datetime, flag_at: datetime) -> bool:
    """Whether a record committed at `commit_time` is past the cover of the flag at `flag_at`."""
    return commit_time - flag_at > FLAG_COVER


class FlagBook:
    """The last committed flag of each customer-month in this instance."""

    def __init__(
        self, every: float = FLAG_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._flags: dict[tuple[str, str], tuple[float, datetime]] = {}
        self._pruned = clock()

    def cover(self, customer_id: str, month: str) -> datetime | None:
        """The commit time of the flag that covers a record of this customer-month committed
        now; None: this record must be a flag."""
        now = self._clock()
        with self._lock:
            if now - self._pruned > FLAG_COVER.total_seconds():
                horizon = now - FLAG_COVER.total_seconds()
                self._flags = {k: v for k, v in self._flags.items() if v[0] > horizon}
                self._pruned = now
            found = self._flags.get((customer_id, month))
        if found is None or now - found[0] >= self._every:
            return None
        return found[1]

    def flagged(self, customer_id: str, month: str, commit_time: datetime) -> None:
        """A flag of this customer-month committed at `commit_time` (server time)."""
        now = self._clock()
        with self._lock:
            kept = self._flags.get((customer_id, month))
            if kept is None or kept[1] < commit_time:
                self._flags[customer_id, month] = (now, commit_time)
