"""Which quiet records are flags (functions/usage/flags.py): the first of a customer-month in an
instance and one per 45 s after it carry `fold_bucket`; the others name the flag that covers
them, and one committed past that cover touches a shard of its month (also on redelivery)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from functions.usage.flags import FLAG_EVERY, FlagBook
from functions.usage.pace import Pace
from functions.usage.ports import Outcome
from functions.usage.service import UsageService
from shared.counters import FLAG_AT_FIELD, FLAG_COVER, FOLD_KEY_FIELD, TALLY_FIELD
from shared.errors import TransientError
from shared.queries import MONTH_RECORDS
from tests.usage_support import NOW, FakeRepository, event_body, message


def quiet_service(repo: FakeRepository, clock: list[float]) -> UsageService:
    return UsageService(repo, pace=Pace(hot_rate=10_000), flags=FlagBook(clock=lambda: clock[0]))


def send(
    service: UsageService, n: int, customer: str = "c", action: str = "scene_generated"
) -> str:
    body = event_body(event_id=f"f-{customer}-{n}", customer_id=customer, action=action)
    result = service.handle(message(body, f"m-{customer}-{n}"), NOW)
    assert result.outcome is Outcome.RECORDED
    assert result.record_id is not None
    return result.record_id


def test_the_first_record_of_a_month_is_a_flag_and_the_next_ones_name_it() -> None:
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    repo.put_customer("d", bundle_tier="pro")
    clock = [0.0]
    service = quiet_service(repo, clock)
    first = repo.records[send(service, 1)]
    clock[0] = 10.0
    second = repo.records[send(service, 2, action="x_op")]
    other = repo.records[send(service, 3, customer="d")]
    assert isinstance(first[TALLY_FIELD], int)
    assert FLAG_AT_FIELD not in first
    assert TALLY_FIELD not in second
    assert second[FLAG_AT_FIELD] == first["recorded_at"]
    assert isinstance(other[TALLY_FIELD], int)  # another customer-month: its own flag
    # every one carries what the fold's aggregation sums (and orders by: a record without one
    # of these fields would be in no index entry of the query, so in no count)
    for stored in (first, second, other):
        assert {f for f, _ in MONTH_RECORDS.order} <= set(stored)
    assert (first[FOLD_KEY_FIELD], first["scenes_generated"]) == ("c_2025-01", 1)
    assert (second["scenes_generated"], isinstance(second["cost_cents"], int)) == (0, True)
    clock[0] = FLAG_EVERY + 1
    third = repo.records[send(service, 4)]
    assert isinstance(third[TALLY_FIELD], int), "a new flag every FLAG_EVERY seconds"
    assert repo.touches == []


def after_one_flag() -> tuple[FakeRepository, UsageService, datetime]:
    """Customer c's first record committed (a flag, at the returned time), and every later
    commit slow: past that flag's cover, though the instance's clock calls the flag fresh."""
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    service = quiet_service(repo, [0.0])
    send(service, 1)
    flag_at = repo.records[next(iter(repo.records))]["recorded_at"]
    repo.commit_clock = lambda: flag_at + FLAG_COVER + timedelta(seconds=1)
    return repo, service, flag_at


def test_a_record_committed_past_its_flags_cover_touches_a_shard_of_its_month() -> None:
    repo, service, flag_at = after_one_flag()
    late_id = send(service, 2)
    assert repo.records[late_id][FLAG_AT_FIELD] == flag_at
    [touch] = repo.touches
    assert (touch.customer_id, touch.month) == ("c", "2025-01")
    assert set(touch.ints.values()) == {0}
    assert set(touch.floats.values()) == {0.0}
    assert repo.totals("c", "2025-01")["records"] == 2  # the touch counts nothing


def test_a_redelivery_of_a_late_record_touches_its_shard_again() -> None:
    """The first delivery can die between its commit and its touch: the redelivery, which
    finds the record stored, makes the touch."""
    repo, service, _ = after_one_flag()
    repo.fail_calls["touch_shard"] = 1
    body = event_body(event_id="f-c-2", customer_id="c", action="scene_generated")
    with pytest.raises(TransientError, match="touch_shard"):  # Pub/Sub redelivers it
        service.handle(message(body, "m-c-2"), NOW)
    assert repo.touches == []
    again = service.handle(message(body, "m-c-2"), NOW)
    assert again.outcome is Outcome.DUPLICATE
    assert len(repo.touches) == 1
    first = event_body(event_id="f-c-1", customer_id="c", action="scene_generated")
    on_time = service.handle(message(first, "m-c-1"), NOW)
    assert on_time.outcome is Outcome.DUPLICATE
    assert len(repo.touches) == 1  # a covered or flagged record's redelivery touches nothing
