"""The usage path's cost per event (issue 12): group commit with a gathering window, one log
line per commit, one customer read per instance however many requests ask at once.

A busy customer-month's first event waits the window for others to share its commit; a quiet
one never waits; one log line per commit at the default level; counts stay exact.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.usage.batching import GroupCommitter
from functions.usage.pace import Pace, RoundRobinShards
from functions.usage.ports import Outcome
from functions.usage.service import UsageService
from shared import logs
from shared.errors import TransientError
from tests.usage_support import NOW, FakeRepository, event_body, log_lines, message

KEY = ("c", "2025-01")


def scene(n: int) -> dict[str, Any]:
    return event_body(
        event_id=f"gc-{n}",
        customer_id="c",
        action="scene_generated",
        timestamp="2025-01-15T10:00:00Z",
        episodes_generated=n,
        compute_minutes=None,
        storage_gb=None,
        details=None,
    )


@pytest.fixture
def repo() -> FakeRepository:
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    return repo


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    with log_lines() as seen:
        yield seen


def _gated(committer_box: list[GroupCommitter], queued: int) -> Any:
    """A `sleep` for the window that returns once `queued` events wait behind the leader."""
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with committer_box[0]._lock:
                if len(committer_box[0]._queues.get(KEY, [])) >= queued:
                    return
            time.sleep(0.001)
        raise AssertionError("the other events never queued behind the gathering leader")

    sleep.calls = calls  # type: ignore[attr-defined]
    return sleep


def _concurrently(service: UsageService, numbers: range) -> list[Any]:
    results: list[Any] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        result = service.handle(message(scene(n), f"m{n}"), NOW)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_busy_customer_month_gathers_its_events_into_one_commit(
    repo: FakeRepository, records: list[logging.LogRecord]
) -> None:
    box: list[GroupCommitter] = []
    sleep = _gated(box, queued=7)
    committer = GroupCommitter(repo, window=0.02, sleep=sleep)
    box.append(committer)
    service = UsageService(repo, committer=committer, pace=Pace(hot_rate=2))
    assert service.handle(message(scene(0), "m0"), NOW).outcome is Outcome.RECORDED
    assert sleep.calls == []  # the first event of a customer-month never waits
    results = _concurrently(service, range(1, 9))
    assert {r.outcome for r in results} == {Outcome.RECORDED}
    assert sleep.calls == [0.02]
    assert repo.batch_sizes == [1, 8]  # 9 events, 2 shard writes
    totals = repo.totals(*KEY)
    assert (totals["records"], totals["episodes_generated"]) == (9, sum(range(9)))
    assert len(repo.records) == 9
    recorded = [r for r in records if getattr(r, "fields", {}).get("decision") == "recorded"]
    assert len(recorded) == 9  # every event's decision is observable ...
    info = [r for r in recorded if r.levelno >= logging.INFO]
    assert len(info) == 2  # ... but only one line per commit is written at INFO
    shared = next(r for r in info if "documents" in r.fields)  # type: ignore[attr-defined]
    assert len(shared.fields["documents"]) == 8  # type: ignore[attr-defined]
    assert set(shared.fields["documents"]) <= set(repo.records)  # type: ignore[attr-defined]


def test_a_quiet_customer_month_writes_only_its_records_and_a_hot_one_shards(
    repo: FakeRepository,
) -> None:
    now = [0.0]
    waits: list[float] = []
    committer = GroupCommitter(repo, window=0.05, sleep=waits.append)
    service = UsageService(
        repo,
        committer=committer,
        pace=Pace(hot_rate=3, clock=lambda: now[0]),
        choose_shard=RoundRobinShards(),
        shards=128,
    )
    for n in range(5):
        now[0] += 1.5  # each event more than a second after the last: quiet
        result = service.handle(message(scene(n), f"m{n}"), NOW)
        assert result.outcome is Outcome.RECORDED
        assert result.counter is None  # counted from its record
    assert repo.batch_sizes == [1] * 5
    assert waits == []
    assert repo.shards == {}  # no counter write at all: the fold counts the records
    assert repo.tallied() == 5
    for n in range(5, 25):
        now[0] += 0.01  # hot now: shards, spread
        service.handle(message(scene(n), f"m{n}"), NOW)
    hot = 25 - repo.tallied()
    assert hot >= 17  # from the third event of the burst on
    assert len(repo.shards) == hot  # round robin over 128 shards
    assert len(waits) == hot  # each hot event led its own (one-event) gathering
    assert repo.totals(*KEY)["records"] == 25
    assert repo.totals(*KEY)["episodes_generated"] == sum(range(25))


def test_pace_counts_the_arrivals_of_the_sliding_second() -> None:
    now = [10.0]
    pace = Pace(hot_rate=3, clock=lambda: now[0])
    assert [pace.arrive("c", "m") for _ in range(4)] == [False, False, True, True]
    now[0] += 1.5  # the 4 arrivals lie 1.5 s back: half of their second still counts
    assert pace.arrive("c", "m") is True  # 1 + 4 * 0.5
    now[0] += 0.9  # 0.4 into the next second: the one before holds 1 arrival
    assert pace.arrive("c", "m") is False  # 1 + 1 * 0.6
    now[0] += 5.0
    assert pace.arrive("c", "m") is False  # seconds later: only itself
    assert pace.arrive("other", "m") is False  # per customer-month


def test_a_duplicate_in_a_gathered_batch_answers_each_event_alone(repo: FakeRepository) -> None:
    box: list[GroupCommitter] = []
    committer = GroupCommitter(repo, window=0.02, sleep=_gated(box, queued=3))
    box.append(committer)
    service = UsageService(repo, committer=committer, pace=Pace(hot_rate=2))
    service.handle(message(scene(1), "m1"), NOW)  # recorded; redelivered below
    results = _concurrently(service, range(1, 5))
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == sorted([Outcome.DUPLICATE, *[Outcome.RECORDED] * 3])
    assert repo.totals(*KEY)["records"] == 4
    assert committer.stats.fallbacks == 1
    assert committer._queues == {}
    assert committer._gathering == set()


def test_an_unreachable_firestore_fails_every_event_of_the_batch_for_redelivery(
    repo: FakeRepository,
) -> None:
    class Down(FakeRepository):
        down = False

        def commit_batch(self, records: Any, counter: Any) -> bool:
            if self.down and len(records) > 1:
                raise TransientError("fake: DEADLINE_EXCEEDED")
            return super().commit_batch(records, counter)

    down = Down()
    down.put_customer("c", bundle_tier="pro")
    box: list[GroupCommitter] = []
    committer = GroupCommitter(down, window=0.02, sleep=_gated(box, queued=3))
    box.append(committer)
    service = UsageService(down, committer=committer, pace=Pace(hot_rate=2))
    service.handle(message(scene(0), "m0"), NOW)
    down.down = True
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            service.handle(message(scene(n), f"m{n}"), NOW)
        except TransientError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4  # each redelivered by Pub/Sub; none waited out a second deadline
    assert len({id(e) for e in errors}) == 4
    assert len(down.records) == 1
    assert committer._queues == {}


def test_debug_lines_reach_observers_but_not_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    seen: list[str] = []

    class Observer(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger(logs.LOGGER_NAME)
    saved = (logger.handlers[:], logger.level)
    try:
        logs.configure("json", "INFO")
        observer = Observer()
        logs.add_observer(observer)
        logs.debug("follower line", decision="recorded")
        logs.info("leader line", decision="recorded")
        written = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
        assert written == ["leader line"]
        assert seen == ["follower line", "leader line"]
    finally:
        logger.handlers[:], _ = saved
        logger.setLevel(saved[1])


def test_concurrent_events_of_a_cold_customer_make_one_read() -> None:
    from functions.usage.cache import CustomerCache

    class Slow(FakeRepository):
        def get_customer(self, customer_id: str) -> Any:
            time.sleep(0.05)  # a read in flight while the others arrive
            return super().get_customer(customer_id)

    repo = Slow()
    repo.put_customer("c", bundle_tier="pro")
    service = UsageService(repo, customer_cache=CustomerCache(60))
    results = _concurrently(service, range(16))
    assert {r.outcome for r in results} == {Outcome.RECORDED}
    assert repo.reads == 1


def test_an_unknown_customer_is_read_again_by_each_waiting_event() -> None:
    from functions.usage.cache import CustomerCache

    repo = FakeRepository()  # no customer "c": every event is refused, none is cached
    service = UsageService(repo, customer_cache=CustomerCache(60))
    results = _concurrently(service, range(4))
    assert {r.outcome for r in results} == {Outcome.REJECTED}
    assert repo.reads >= 4  # a customer created meanwhile is seen by the next read


def test_racing_first_requests_build_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.usage import entry

    built: list[object] = []

    def slow_build(settings: Any, client: Any = None) -> Any:
        time.sleep(0.02)  # every racing thread is inside before the first build returns
        built.append(object())
        return built[-1]

    monkeypatch.setattr(entry, "build_service", slow_build)
    entry.reset_default_service()
    try:
        seen: list[object] = []
        threads = [
            threading.Thread(target=lambda: seen.append(entry.default_service())) for _ in range(16)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(built) == 1  # one cache, one group committer per process
        assert {id(s) for s in seen} == {id(built[0])}
    finally:
        entry.reset_default_service()
