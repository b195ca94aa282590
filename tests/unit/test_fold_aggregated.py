"""Quiet records counted by aggregation (docs/counters.md, "Flags"): the scan reads one flag
per instance, customer-month and 45 s; the fold counts the month's records by commit time when
it writes it, and owes the count a flag covers until a write has counted past it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from functions.fold.ports import Shard, TallyRecord
from functions.fold.service import FoldConfig, run_fold
from shared.counters import fold_bucket as bucket_of
from tests.unit.test_fold import NOV, T0, FakePublisher, FakeRepo
from tests.unit.test_fold_records import record, summary

NEVER_HOLD = FoldConfig(buckets=4, overlap=timedelta(0), page_size=3, workers=2)
HOLDING = FoldConfig(
    buckets=4, overlap=timedelta(0), page_size=3, workers=2, write_interval=timedelta(minutes=5)
)


def quiet(repo: FakeRepo, cid: str, at: float, *, flag: bool = False, scenes: int = 1) -> None:
    """One record counted from the records committed at T0 + `at`: counted by aggregation;
    a flag is also what the scan finds."""
    full = record(cid, at, scenes=scenes)
    repo.aggregated.append(full)
    if flag:
        repo.tally.append(TallyRecord(cid, NOV, {}, full.recorded_at, full.bucket, flag=True))


def fold(repo: FakeRepo, at: float, run_id: str, config: FoldConfig) -> Any:
    repo.server_now = T0 + timedelta(seconds=at)
    return run_fold(repo, FakePublisher(), now=repo.server_now, run_id=run_id, config=config)


def held(repo: FakeRepo, cid: str = "c") -> dict[str, Any]:
    found = repo.docs.get(f"state/{bucket_of(cid, NOV, 4)}")
    return dict((found[0].get("held") or {}) if found else {})


@pytest.fixture
def repo() -> FakeRepo:
    repo = FakeRepo()
    repo.put("customers/c", {"quota_period": NOV})
    return repo


def test_a_month_is_counted_by_aggregation_reading_only_its_flag(repo: FakeRepo) -> None:
    quiet(repo, "c", 1, flag=True)
    quiet(repo, "c", 2)
    quiet(repo, "c", 3, scenes=0)
    counts = fold(repo, 10, "r1", NEVER_HOLD)
    got = summary(repo, "c")
    assert (got["records"], got["scenes_generated"], got["cost_cents"]) == (3, 2, 75)
    assert repo.record_reads == 1  # the flag; the other two only in the count
    assert counts.months_counted == 1
    assert repo.data("customers/c")["scenes_generated_this_month"] == 2


def test_records_a_flag_covers_after_the_write_are_counted_by_a_later_fold(
    repo: FakeRepo,
) -> None:
    quiet(repo, "c", 1, flag=True)
    fold(repo, 10, "r1", NEVER_HOLD)  # counts up to 8 s
    assert summary(repo, "c")["records"] == 1
    quiet(repo, "c", 20)  # covered by the flag at 1 s (until 61 s): no flag of its own
    quiet(repo, "c", 30)
    fold(repo, 40, "r2", NEVER_HOLD)  # no flag in its scan: the month is owed a count
    assert summary(repo, "c")["records"] == 3
    assert summary(repo, "c")["scenes_total"] == 3
    assert held(repo), "the cover (61 s) is not counted yet: still owed"
    quiet(repo, "c", 50)
    fold(repo, 70, "r3", NEVER_HOLD)  # counts up to 68 s: past the cover
    assert summary(repo, "c")["records"] == 4
    assert held(repo) == {}
    fold(repo, 130, "r4", NEVER_HOLD)
    assert summary(repo, "c")["records"] == 4  # nothing counted twice


def test_a_held_month_owes_its_cover_until_its_next_write(repo: FakeRepo) -> None:
    quiet(repo, "c", 1, flag=True)
    fold(repo, 10, "r1", HOLDING)
    writes = len(repo.commits)
    quiet(repo, "c", 20)
    quiet(repo, "c", 30, flag=True)
    fold(repo, 70, "r2", HOLDING)
    assert len(repo.commits) == writes  # held: no write
    assert summary(repo, "c")["records"] == 1
    fold(repo, 320, "r3", HOLDING)  # the interval: written, everything counted
    assert summary(repo, "c")["records"] == 3
    assert held(repo) == {} or all(h.owed is None for h in held(repo).values())


def test_a_held_month_is_written_when_the_scenes_its_flags_cover_reach_an_alert(
    repo: FakeRepo,
) -> None:
    repo.put("customers/c", {"monthly_scene_quota": 100, "quota_period": NOV})
    quiet(repo, "c", 1, flag=True)
    for n in range(69):
        quiet(repo, "c", 2 + n / 100)
    fold(repo, 10, "r1", HOLDING)
    assert summary(repo, "c")["scenes_total"] == 70
    quiet(repo, "c", 20, flag=True)
    for n in range(8):
        quiet(repo, "c", 21 + n / 10)
    counts = fold(repo, 70, "r2", HOLDING)  # 79: held
    assert counts.headroom_counts == 1
    assert summary(repo, "c")["scenes_total"] == 70
    quiet(repo, "c", 75)  # the 80th, covered by the flag at 20 s: no flag in the next scan
    fold(repo, 130, "r3", HOLDING)
    assert summary(repo, "c")["scenes_total"] == 80
    assert summary(repo, "c")["alerts"] == [80]
    assert repo.data("alerts/c_2026-11_80")["scenes_generated"] == 80


def test_a_month_without_room_to_owe_keeps_the_records_watermark_before_its_flag(
    repo: FakeRepo,
) -> None:
    full = FoldConfig(buckets=4, overlap=timedelta(0), page_size=3, workers=2, held_max=0)
    quiet(repo, "c", 1, flag=True)
    fold(repo, 10, "r1", full)
    assert summary(repo, "c")["records"] == 1
    mark = repo.data(f"state/{bucket_of('c', NOV, 4)}").get("records_watermark")
    assert mark is None or mark < T0 + timedelta(seconds=1)
    quiet(repo, "c", 20)  # covered by the flag at 1 s, which the next scan reads again
    fold(repo, 40, "r2", full)
    assert summary(repo, "c")["records"] == 2
    fold(repo, 90, "r3", full)  # past the cover: the watermark moves on
    mark = repo.data(f"state/{bucket_of('c', NOV, 4)}")["records_watermark"]
    assert mark >= T0 + timedelta(seconds=61)
    assert summary(repo, "c")["records"] == 2


def test_legacy_records_and_counted_records_of_one_month_add_up(repo: FakeRepo) -> None:
    repo.tally.append(record("c", 1))  # written before the flags: counted from the scan
    quiet(repo, "c", 2, flag=True)
    quiet(repo, "c", 3)
    fold(repo, 10, "r1", NEVER_HOLD)
    assert summary(repo, "c")["records"] == 3


def touch(repo: FakeRepo, cid: str, at: float) -> None:
    """A late record's zero increment of one of its month's shards (functions/usage/flags.py)."""
    zero = {"records": 0, "scenes_generated": 0, "episodes_generated": 0, "cost_cents": 0}
    at_ = T0 + timedelta(seconds=at)
    repo.add(Shard("c", NOV, "7", zero, at_, bucket_of("c", NOV, 4), touched=True))


@pytest.mark.parametrize("lag", [0.5, 3.5], ids=["within-the-bound", "after-the-bound"])
def test_a_late_record_is_counted_through_the_shard_it_touched(repo: FakeRepo, lag: float) -> None:
    """The record commits at 715 s, past the cover of its flag at 1 s, after its month's entry
    expired: only its shard touch says the month changed. `after-the-bound`: the record commits
    after the fold's bound (718 s), the touch at 719 s: owed, counted by the next fold."""
    quiet(repo, "c", 1, flag=True)
    fold(repo, 10, "r1", HOLDING)
    fold(repo, 400, "r2", HOLDING)  # owed the flag's cover: written
    fold(repo, 710, "r3", HOLDING)  # expired, nothing owed: forgotten
    assert held(repo) == {}
    quiet(repo, "c", 715 + lag)
    touch(repo, "c", 715.5 + lag)
    fold(repo, 720, "r4", HOLDING)
    assert summary(repo, "c")["records"] == (2 if lag < 1 else 1)
    fold(repo, 780, "r5", HOLDING)
    fold(repo, 1100, "r6", HOLDING)
    assert summary(repo, "c")["records"] == 2
