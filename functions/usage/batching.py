"""Group commit: events of one customer-month in flight together in one instance share ONE
commit (every record created once + ONE shard increment of their sums).

A quiet customer-month commits each event at once, alone. A busy one (`functions.usage.pace`:
another of its events reached this instance within a second) gathers: its first event waits
`window` seconds for the others before it commits them all, and events that arrive while a
commit is in flight queue up and the first of them commits them all when it returns. Under
production's push concurrency (dozens of requests in flight per instance) a hot customer-month
pays one shard write per batch instead of one per event, and needs fewer shard writes per
second; only busy customer-months pay the wait (docs/usage.md, Group commit).

A batch commit is atomic like a single one. If it fails (a record that already exists: a
redelivery in the batch; contention; an unstorable record) nothing was written, and each of its
events commits alone, which answers each one exactly as without batching; if Firestore was
unreachable (a transient error other than contention), every event of the batch gets that error
(Pub/Sub redelivers each) instead of waiting out a second deadline alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from functions.usage.ports import ContentionError, ShardIncrement, UsageRepository
from shared.errors import TransientError

MAX_BATCH: Final = 50
"""Records per commit at most (a commit carries at most 10 MiB; a record at most ~70 KB)."""
LANES: Final = 2
"""Commits of one customer-month in flight at once per instance (each on its own shard); more
lanes, smaller batches: one lane serialises a hot customer-month behind one commit."""


class BatchRepository(UsageRepository, Protocol):
    """A repository that can also commit several records with one shard increment."""

    def commit_batch(
        self, records: Sequence[tuple[str, Mapping[str, Any]]], counter: ShardIncrement
    ) -> bool:
        """ONE atomic commit: create every record + increment one shard by `counter`.

        True when committed; False when any record already exists (nothing was written)."""
        ...


@dataclass(frozen=True, slots=True)
class Committed:
    """What one event's commit was: created or not, and the commit it shared."""

    created: bool
    batch: tuple[str, ...] = ()
    """Record ids of the shared commit when this event led one of two or more; empty when it
    committed alone or followed (its leader names the batch)."""
    shared: bool = False
    """True when the event was committed in a batch of two or more (led or followed)."""


def merged(counters: Sequence[ShardIncrement]) -> ShardIncrement:
    """The sum of several events' increments, on the first one's shard."""
    first = counters[0]
    ints = dict.fromkeys(first.ints, 0)
    floats = dict.fromkeys(first.floats, 0.0)
    for c in counters:
        for name, amount in c.ints.items():
            ints[name] = ints.get(name, 0) + amount
        for name, value in c.floats.items():
            floats[name] = floats.get(name, 0.0) + value
    return ShardIncrement(
        first.customer_id, first.month, first.shard, first.fold_bucket, ints, floats
    )


@dataclass(eq=False, slots=True)
class _Entry:
    record_id: str
    record: Mapping[str, Any]
    counter: ShardIncrement
    wake: threading.Event = field(default_factory=threading.Event)
    state: str = "waiting"
    """waiting -> lead (commit `batch`) -> single (committed alone: `result` / `error`) |
    done (committed in a batch) | alone (the batch failed: commit alone)."""
    batch: list[_Entry] = field(default_factory=list)
    result: bool = False
    error: BaseException | None = None


@dataclass(slots=True)
class BatchStats:
    """How many commits carried how many records (for benches and tests)."""

    commits: int = 0
    records: int = 0
    fallbacks: int = 0
    gathered: int = 0
    """Leaders that waited the window for a busy customer-month."""


class GroupCommitter:
    """Per-instance group commit by customer-month; thread-safe."""

    def __init__(
        self,
        repository: BatchRepository,
        max_batch: int = MAX_BATCH,
        lanes: int = LANES,
        *,
        window: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._repository = repository
        self._max = max_batch
        self._lanes = lanes
        self._window = window
        self._sleep = sleep
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], list[_Entry]] = {}
        """Customer-months with a commit in flight -> the events waiting for the next one."""
        self._in_flight: dict[tuple[str, str], int] = {}
        self._gathering: set[tuple[str, str]] = set()
        """Customer-months whose leader is waiting the window (newcomers queue behind it)."""
        self.stats = BatchStats()

    def commit_event(
        self,
        record_id: str,
        record: Mapping[str, Any],
        counter: ShardIncrement,
        busy: bool = False,
    ) -> Committed:
        """Like `UsageRepository.commit_usage`, possibly sharing the commit with others, and
        saying which commit the event shared (for the one log line). A busy customer-month's
        first event waits the window for others (`functions.usage.pace`)."""
        key = (counter.customer_id, counter.month)
        entry = _Entry(record_id, record, counter)
        with self._lock:
            flying = self._in_flight.get(key, 0)
            if flying < self._lanes and key not in self._gathering:
                self._in_flight[key] = flying + 1  # one more commit of it in flight
                self._queues.setdefault(key, [])
                entry.state, entry.batch = "lead", [entry]
                if busy and self._window > 0:
                    self._gathering.add(key)
            else:
                self._queues[key].append(entry)
        if entry.state == "lead" and busy and self._window > 0:  # it holds `_gathering`
            self._gather(key, entry)
        if entry.state != "lead":
            entry.wake.wait()
        if entry.state == "lead":
            self._lead(key, entry.batch)
        if entry.error is not None:
            raise entry.error
        if entry.state == "single":
            return Committed(entry.result)
        if entry.state == "done":
            led = entry.batch[0] is entry if entry.batch else False
            ids = tuple(e.record_id for e in entry.batch) if led else ()
            return Committed(True, ids, shared=True)
        return Committed(self._repository.commit_usage(record_id, record, counter))

    def _gather(self, key: tuple[str, str], leader: _Entry) -> None:
        """Wait the window, then take the events queued meanwhile into the leader's batch."""
        self._sleep(self._window)
        with self._lock:
            queue = self._queues[key]
            take, self._queues[key] = queue[: self._max - 1], queue[self._max - 1 :]
            leader.batch.extend(take)
            self._gathering.discard(key)
            self.stats.gathered += 1

    def _lead(self, key: tuple[str, str], batch: list[_Entry]) -> None:
        """Commit `batch` while holding the customer-month, then hand it on."""
        try:
            if len(batch) == 1:
                one = batch[0]
                one.state = "single"
                try:
                    one.result = self._repository.commit_usage(
                        one.record_id, one.record, one.counter
                    )
                except BaseException as exc:  # answered to its own caller
                    one.error = exc
                return
            failure: BaseException | None = None
            try:
                ok = self._repository.commit_batch(
                    [(e.record_id, e.record) for e in batch], merged([e.counter for e in batch])
                )
            except ContentionError:  # each event commits alone (on another shard if need be)
                ok = False
            except TransientError as exc:  # Firestore unreachable: a retry now would wait again
                ok, failure = False, exc
            except Exception:  # e.g. one unstorable record: each event answers for itself
                ok = False
            for e in batch:
                e.state = "done" if ok else "alone"
                e.batch = batch if ok else []
                e.error = None if failure is None else TransientError(f"group commit: {failure}")
            with self._lock:
                self.stats.commits += 1
                self.stats.records += len(batch) if ok else 0
                self.stats.fallbacks += not ok
        finally:
            self._hand_over(key)
            for e in batch[1:]:
                e.wake.set()

    def _hand_over(self, key: tuple[str, str]) -> None:
        """The next waiting events (if any) become a batch led by the first of them."""
        with self._lock:
            queue = self._queues[key]
            if not queue:
                self._in_flight[key] -= 1
                if not self._in_flight[key]:
                    del self._in_flight[key]
                    del self._queues[key]
                return
            batch, self._queues[key] = queue[: self._max], queue[self._max :]
        leader = batch[0]
        leader.batch, leader.state = batch, "lead"
        leader.wake.set()
