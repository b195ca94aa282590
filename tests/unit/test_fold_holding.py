"""The fold holding quiet customer-months' new records in its bucket's state between summary
writes (functions/fold/holding.py): fewer writes, the same counts, alerts on time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.fold import held_format
from functions.fold.held_format import held_size
from functions.fold.holding import HELD_MAX_BYTES, ZERO, BucketPlan, after_write
from functions.fold.planner import MonthFold
from functions.fold.ports import HeldTally, Tally
from functions.fold.service import FoldConfig, run_fold
from shared.counters import SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS
from shared.counters import fold_bucket as bucket_of
from tests.unit.test_fold import NOV, T0, FakePublisher, FakeRepo, shard
from tests.unit.test_fold_records import record, summary

HOLDING = FoldConfig(
    buckets=4, overlap=timedelta(0), page_size=3, workers=2, write_interval=timedelta(minutes=5)
)


def fold(repo: FakeRepo, at: float, run_id: str, config: FoldConfig = HOLDING) -> Any:
    """A fold at T0 + `at` seconds (its clock and its read time)."""
    repo.server_now = T0 + timedelta(seconds=at)
    return run_fold(repo, FakePublisher(), now=repo.server_now, run_id=run_id, config=config)


def state(repo: FakeRepo, cid: str = "c", month: str = NOV) -> dict[str, Any]:
    return repo.data(f"state/{bucket_of(cid, month, 4)}")


@pytest.fixture
def repo() -> FakeRepo:
    repo = FakeRepo()
    repo.put("customers/c", {"monthly_scene_quota": 1000, "quota_period": NOV})
    return repo


def test_records_are_held_between_writes_and_written_exactly_after_the_interval(
    repo: FakeRepo,
) -> None:
    repo.tally += [record("c", 1), record("c", 2)]
    fold(repo, 10, "r1")  # first sight: written at once
    assert summary(repo, "c")["records"] == 2
    writes = len(repo.commits)
    repo.tally += [record("c", 20, episodes=3), record("c", 30)]
    counts = fold(repo, 70, "r2")
    assert counts.months_held == 1
    assert len(repo.commits) == writes  # no summary, no customer write
    assert summary(repo, "c")["records"] == 2
    [held] = state(repo)["held"].values()
    assert (held.values["records"], held.values["episodes_generated"]) == (2, 3)
    repo.tally.append(record("c", 80))
    fold(repo, 130, "r3")
    assert len(repo.commits) == writes
    fold(repo, 320, "r4")  # 5 minutes after the first write
    got = summary(repo, "c")
    assert (got["records"], got["scenes_generated"], got["episodes_generated"]) == (5, 5, 3)
    assert repo.data("customers/c")["scenes_generated_this_month"] == 5
    assert repo.data("customers/c")["total_scenes_generated"] == 5
    assert len(repo.commits) == writes + 1
    fold(repo, 400, "r5")
    assert summary(repo, "c")["records"] == 5  # nothing counted twice


def test_a_held_month_that_may_cross_an_alert_threshold_is_written_in_that_fold(
    repo: FakeRepo,
) -> None:
    repo.put("customers/c", {"monthly_scene_quota": 100, "quota_period": NOV})
    repo.tally += [record("c", n / 10) for n in range(1, 71)]  # 70 scenes: headroom 10
    fold(repo, 10, "r1")
    assert summary(repo, "c")["alerts"] == []
    repo.tally += [record("c", 20 + n / 10) for n in range(9)]  # 79: still below 80 %
    fold(repo, 70, "r2")
    assert summary(repo, "c")["scenes_total"] == 70
    repo.tally.append(record("c", 75))  # the 80th
    fold(repo, 130, "r3")
    assert summary(repo, "c")["scenes_total"] == 80
    assert summary(repo, "c")["alerts"] == [80]
    assert repo.data("alerts/c_2026-11_80")["scenes_generated"] == 80


def test_a_held_month_is_written_when_it_ends_and_a_hot_customer_at_once(
    repo: FakeRepo,
) -> None:
    repo.tally += [record("c", 1)]
    fold(repo, 10, "r1")
    repo.tally += [record("c", 20), record("c", 21)]
    fold(repo, 70, "r2")
    assert summary(repo, "c")["records"] == 1
    december = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
    fold(repo, (december - T0).total_seconds(), "r3")  # no new record: the month is over
    assert summary(repo, "c")["records"] == 3
    assert state(repo)["held"] == {}
    # hot: a shard change of the customer in the fold writes its held records with it
    repo.put("customers/h", {"quota_period": NOV})
    repo.tally += [record("h", 100)]
    fold(repo, 110, "r4")
    repo.tally += [record("h", 120)]
    repo.add(shard("h", NOV, 3, 125, scenes=4))
    fold(repo, 170, "r5")
    assert summary(repo, "h")["scenes_generated"] == 6


def test_a_failed_write_holds_its_records_and_the_next_write_counts_them_once(
    repo: FakeRepo,
) -> None:
    repo.tally += [record("c", 1)]
    fold(repo, 10, "r1")
    repo.tally += [record("c", 20), record("c", 21)]
    repo.fail_customers.add("c")
    repo.put("customers/c", {"monthly_scene_quota": 2, "quota_period": NOV})  # write due
    fold(repo, 400, "r2")
    assert summary(repo, "c")["records"] == 1
    [held] = state(repo)["held"].values()
    assert held.values["records"] == 2  # held, so the watermark could move
    assert state(repo)["records_watermark"] == repo.server_now - HOLDING.records_lag
    repo.fail_customers.clear()
    fold(repo, 460, "r3")
    assert summary(repo, "c")["records"] == 3


def test_an_overlapping_fold_that_wrote_part_of_a_held_tally_makes_the_next_recount(
    repo: FakeRepo,
) -> None:
    repo.tally += [record("c", 1)]
    fold(repo, 10, "r1")
    path = f"state/{bucket_of('c', NOV, 4)}"
    before = repo.docs[path]
    repo.tally += [record("c", 20), record("c", 40)]
    fold(repo, 70, "held")  # holds both records (up to 68 s)
    held_state = repo.docs[path]
    # An overlapping fold read the same state, wrote only the first record (its bound 30 s)
    # and lost the race for the state document.
    repo.docs[path] = before
    now = repo.server_now
    repo.server_now = T0 + timedelta(seconds=32)
    run_fold(
        repo,
        FakePublisher(),
        now=now,
        run_id="overlap",
        config=FoldConfig(buckets=4, overlap=timedelta(0), page_size=3, workers=2),
    )
    assert summary(repo, "c")["records"] == 2
    repo.docs[path] = held_state
    counts = fold(repo, 400, "next")
    assert counts.recounts == 1
    assert summary(repo, "c")["records"] == 3
    assert repo.data("customers/c")["total_scenes_generated"] == 3


def test_the_held_map_of_a_bucket_is_capped(repo: FakeRepo) -> None:
    bucket = bucket_of("c", NOV, 4)
    others = [f"o{n}" for n in range(1000) if bucket_of(f"o{n}", NOV, 4) == bucket][:2]
    for cid in others:
        repo.put(f"customers/{cid}", {"quota_period": NOV})
    capped = FoldConfig(
        buckets=4, overlap=timedelta(0), workers=2, write_interval=timedelta(minutes=5), held_max=1
    )
    repo.tally += [record(cid, 1) for cid in ["c", *others]]
    fold(repo, 10, "r1", capped)
    assert len(state(repo)["held"]) == 1
    repo.tally += [record(cid, 20) for cid in ["c", *others]]
    counts = fold(repo, 70, "r2", capped)
    assert counts.months_held == 1  # the two without an entry are written
    fold(repo, 400, "r3", capped)
    assert [summary(repo, cid)["records"] for cid in ["c", *others]] == [2, 2, 2]


def test_a_full_held_map_stays_under_the_document_limit_whatever_the_customer_ids() -> None:
    """2,000 entries of 1,500-byte customer ids would be 3 MB: the map stops at its byte
    budget, and that budget is the size of the text actually stored."""
    now = T0
    plan = BucketPlan()
    for n in range(2000):
        cid = f"{n:04d}" + "x" * 1496  # a document id at Firestore's 1,500-byte limit
        plan.writes[cid] = {NOV: Tally((), now)}
        fold_ = MonthFold(NOV, {}, 0, None, tally_upto=now, headroom=5)
        after_write(plan, cid, [fold_], now, timedelta(minutes=5), held_max=2000)
    assert 0 < len(plan.held) < 2000
    assert plan.size == sum(held_size(h) for h in plan.held.values()) <= HELD_MAX_BYTES
    stored = held_format.encode(plan.held)
    assert len(stored.encode()) <= plan.size + 40  # the text: the rows and its small envelope
    assert len(stored.encode()) < 1_048_487  # Firestore's largest field value


@given(
    st.lists(
        st.builds(
            HeldTally,
            customer_id=st.text(min_size=1, max_size=30),
            month=st.sampled_from([NOV, "2027-01"]),
            base=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
            upto=st.datetimes(timezones=st.just(UTC)),
            values=st.fixed_dictionaries(
                {
                    **{name: st.integers(0, 2**62) for name in SHARD_INT_FIELDS},
                    **{name: st.floats(0, 1e12, allow_nan=False) for name in SHARD_FLOAT_FIELDS},
                }
            ),
            headroom=st.one_of(st.none(), st.integers(0, 10**9)),
            written_at=st.datetimes(timezones=st.just(UTC)),
        ),
        max_size=5,
    )
)
def test_the_stored_text_gives_back_every_entry_exactly(entries: list[HeldTally]) -> None:
    held = {h.key: h for h in entries}
    got, problems = held_format.decode(held_format.encode(held))
    assert problems == []
    assert got == held


def test_an_unreadable_row_is_named_and_the_others_are_kept() -> None:
    good = HeldTally("c", NOV, None, T0, dict(ZERO), None, T0)
    text = held_format.encode({good.key: good}).replace('"rows":[', '"rows":[["c","x"],')
    got, problems = held_format.decode(text)
    assert got == {good.key: good}
    assert len(problems) == 1
    assert "held row 0" in problems[0]
    assert "expected a list of 13 values" in problems[0]


def test_a_bucket_whose_watermark_stays_keeps_its_held_map_and_counts_nothing_twice(
    repo: FakeRepo,
) -> None:
    """A customer without a held entry fails: its bucket's records watermark stays, so the
    records another month held in this fold are read again by the next; the held map must not
    have them already."""
    bucket = bucket_of("c", NOV, 4)
    other = next(f"o{n}" for n in range(1000) if bucket_of(f"o{n}", NOV, 4) == bucket)
    repo.put(f"customers/{other}", {"quota_period": NOV})
    repo.tally += [record("c", 1)]
    fold(repo, 10, "r1")
    repo.tally += [record("c", 20), record(other, 21)]
    repo.fail_customers.add(other)
    fold(repo, 70, "r2")  # c's new record held, the other's first write fails
    repo.fail_customers.clear()
    fold(repo, 130, "r3")
    fold(repo, 400, "r4")  # c due
    assert summary(repo, "c")["records"] == 2
    assert summary(repo, other)["records"] == 1
