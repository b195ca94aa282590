"""One INFO line per instance and interval for the recorded events (issue 12: the per-event line
cost about a quarter of the floor): each event's `recorded` line is DEBUG, the summary counts
them all, and rejections keep their own INFO-or-louder line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from functions.usage.ports import Outcome
from functions.usage.recorded_log import RecordedLog
from functions.usage.service import UsageService
from tests.usage_support import NOW, FakeRepository, event_body, log_lines, message


@pytest.fixture
def lines() -> Iterator[list[logging.LogRecord]]:
    with log_lines() as seen:
        yield seen


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return dict(getattr(record, "fields", {}))


def test_the_summary_counts_every_event_of_its_interval_once(
    lines: list[logging.LogRecord],
) -> None:
    now = [0.0]
    log = RecordedLog(60, clock=lambda: now[0])
    for n in range(10):
        now[0] = n * 10.0  # 0..90 s: the line after 60 s, then a new interval
        log.recorded("a" if n % 3 else "b", Decimal("0.25"), "records")
    written = [fields(r) for r in lines if r.levelno >= logging.INFO]
    [line] = [w for w in written if w.get("decision") == "recorded-summary"]
    assert line["events"] == 7  # t = 0..60
    assert line["busiest"] == {"a": 4, "b": 3}
    assert line["customers"] == 2
    assert line["estimated_cost"] == "1.75"
    assert line["counted"] == {"records": 7}


def test_with_the_summary_each_recorded_event_is_debug_and_rejections_stay_loud(
    lines: list[logging.LogRecord],
) -> None:
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    now = [0.0]
    service = UsageService(repo, recorded_log=RecordedLog(5, clock=lambda: now[0]))
    for n in range(4):
        now[0] = n * 2.0
        body = event_body(event_id=f"rl-{n}", customer_id="c")
        assert service.handle(message(body, f"m{n}"), NOW).outcome is Outcome.RECORDED
    unknown = event_body(event_id="rl-x", customer_id="nobody")
    assert service.handle(message(unknown, "mx"), NOW).outcome is Outcome.REJECTED
    recorded = [r for r in lines if fields(r).get("decision") == "recorded"]
    assert len(recorded) == 4
    assert {r.levelno for r in recorded} == {logging.DEBUG}
    [summary] = [r for r in lines if fields(r).get("decision") == "recorded-summary"]
    assert summary.levelno == logging.INFO
    assert fields(summary)["events"] == 4  # t = 0, 2, 4, 6: the fourth closes the interval
    rejected = [r for r in lines if fields(r).get("decision") == "rejected"]
    assert [r.levelno for r in rejected] == [logging.ERROR]


def test_without_the_summary_each_commit_keeps_its_info_line(
    lines: list[logging.LogRecord],
) -> None:
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    service = UsageService(repo)
    for n in range(3):
        service.handle(message(event_body(event_id=f"rn-{n}", customer_id="c"), f"m{n}"), NOW)
    recorded = [r for r in lines if fields(r).get("decision") == "recorded"]
    assert [r.levelno for r in recorded] == [logging.INFO] * 3
    assert not [r for r in lines if fields(r).get("decision") == "recorded-summary"]
