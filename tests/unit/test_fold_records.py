"""The fold counting quiet customer-months from their records (no shard): exactly once across
reruns, overlapping folds, capped scans and failures; parity with the shard increment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.fold.ports import TallyRecord
from functions.fold.service import FoldConfig, run_fold
from functions.usage.records import build_record, shard_increment
from shared.counters import TALLY, record_counts
from shared.counters import fold_bucket as bucket_of
from shared.models import BundleTier, UsageEvent
from shared.pricing import CostEstimate
from tests.unit.test_fold import NOV, NOW, T0, FakePublisher, FakeRepo, shard

CONFIG = FoldConfig(buckets=4, overlap=timedelta(0), page_size=3, workers=2)


def record(
    cid: str, at: float, scenes: int = 1, episodes: int = 0, month: str = NOV
) -> TallyRecord:
    values = {"records": 1, "scenes_generated": scenes, "episodes_generated": episodes}
    values |= {"cost_cents": 25, "compute_minutes": 0.5, "storage_gb": 0.0}
    return TallyRecord(cid, month, values, T0 + timedelta(seconds=at), bucket_of(cid, month, 4))


def fold(repo: FakeRepo, run_id: str = "r1", config: FoldConfig = CONFIG) -> Any:
    return run_fold(repo, FakePublisher(), now=NOW, run_id=run_id, config=config)


def summary(repo: FakeRepo, cid: str, month: str = NOV) -> dict[str, Any]:
    return repo.data(f"summaries/{cid}_{month}")


@pytest.fixture
def repo() -> FakeRepo:
    repo = FakeRepo()
    repo.put("customers/c", {"monthly_scene_quota": 100, "quota_period": NOV})
    repo.server_now = T0 + timedelta(seconds=100)
    return repo


def test_records_are_summed_into_the_summary_and_the_customer_and_a_rerun_adds_nothing(
    repo: FakeRepo,
) -> None:
    repo.tally += [record("c", 1), record("c", 2, episodes=4), record("c", 3, scenes=0)]
    counts = fold(repo)
    assert counts.records_scanned == 3
    got = summary(repo, "c")
    assert (got["records"], got["scenes_generated"], got["episodes_generated"]) == (3, 2, 4)
    assert (got["cost_cents"], got["compute_minutes"]) == (75, 1.5)
    # complete up to a little before the read
    assert got["shards"][TALLY]["updated_at"] == repo.server_now - CONFIG.records_lag
    assert got["shard_count"] == 0  # the records are not a shard
    assert repo.data("customers/c")["scenes_generated_this_month"] == 2
    commits = len(repo.commits)
    repo.server_now += timedelta(seconds=60)
    assert fold(repo, "r2").records_scanned == 0  # the watermark moved past them
    assert len(repo.commits) == commits


def test_a_record_committed_after_the_read_waits_for_the_next_fold(repo: FakeRepo) -> None:
    repo.tally += [record("c", 1), record("c", 150)]  # 150 s: after the fold's read time
    fold(repo)
    assert summary(repo, "c")["records"] == 1
    repo.server_now = T0 + timedelta(seconds=200)
    fold(repo, "r2")
    assert summary(repo, "c")["records"] == 2
    assert repo.data("customers/c")["total_scenes_generated"] == 2


def test_a_fold_that_read_an_older_watermark_counts_nothing_twice(repo: FakeRepo) -> None:
    repo.tally += [record("c", 1), record("c", 2)]
    fold(repo)
    # A second fold that started before the first moved the watermark reads the same records
    # (and a newer one): the summary's stamp lets only the newer one in.
    for path in [p for p in repo.docs if p.startswith("state/")]:
        del repo.docs[path]
    repo.tally.append(record("c", 120))
    repo.server_now = T0 + timedelta(seconds=130)
    counts = fold(repo, "r2")
    assert counts.records_scanned == 3
    assert summary(repo, "c")["records"] == 3
    assert repo.data("customers/c")["total_scenes_generated"] == 3


def test_shards_and_records_of_one_month_add_up(repo: FakeRepo) -> None:
    repo.add(shard("c", NOV, 5, 10, scenes=7))
    repo.tally += [record("c", 11), record("c", 12)]
    fold(repo)
    got = summary(repo, "c")
    assert (got["records"], got["scenes_generated"], got["shard_count"]) == (3, 9, 1)
    assert repo.data("customers/c")["scenes_generated_this_month"] == 9


def test_a_capped_scan_ends_on_a_whole_commit_time_and_the_next_fold_goes_on(
    repo: FakeRepo,
) -> None:
    capped = FoldConfig(buckets=4, overlap=timedelta(0), page_size=2, workers=2, max_shards=8)
    # Cap 2 per bucket; records 2..4 share one commit time: the scan reads all three.
    repo.tally += [record("c", 1), record("c", 2), record("c", 2), record("c", 2), record("c", 3)]
    counts = fold(repo, config=capped)
    assert counts.capped
    assert summary(repo, "c")["records"] == 4
    fold(repo, "r2", config=capped)
    assert summary(repo, "c")["records"] == 5
    fold(repo, "r3", config=capped)
    assert summary(repo, "c")["records"] == 5


def test_a_customer_left_for_later_keeps_the_records_watermark_and_counts_once(
    repo: FakeRepo,
) -> None:
    # Two customers in one bucket: one fails, the other is folded; both exact after a retry.
    bucket = bucket_of("c", NOV, 4)
    other = next(f"o{n}" for n in range(1000) if bucket_of(f"o{n}", NOV, 4) == bucket)
    repo.put(f"customers/{other}", {"quota_period": NOV})
    repo.tally += [record("c", 1), record(other, 2), record(other, 3)]
    repo.fail_customers.add(other)
    counts = fold(repo)
    assert counts.failed_customers == 1
    assert summary(repo, "c")["records"] == 1
    assert f"state/{bucket}" not in repo.docs  # held back: nothing moved
    repo.fail_customers.clear()
    repo.server_now += timedelta(seconds=60)
    fold(repo, "r2")
    assert summary(repo, "c")["records"] == 1  # read again, not counted again
    assert summary(repo, other)["records"] == 2
    assert repo.data(f"state/{bucket}")["records_watermark"] == repo.server_now - CONFIG.records_lag


def test_quota_alerts_come_from_records_too(repo: FakeRepo) -> None:
    repo.tally += [record("c", n) for n in range(1, 81)]
    fold(repo)
    assert summary(repo, "c")["alerts"] == [80]
    assert repo.data("alerts/c_2026-11_80")["scenes_generated"] == 80


# ---- parity: what the fold reads from a record = what its shard increment would add --------


@given(
    cents=st.integers(0, 10**14),
    episodes=st.one_of(st.none(), st.integers(0, 10**6)),
    minutes=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    action=st.sampled_from(["scene_generated", "episodes_generated", "x_op"]),
)
def test_record_counts_equal_the_shard_increment(
    cents: int, episodes: int | None, minutes: float | None, action: str
) -> None:
    event = UsageEvent.model_validate(
        {
            "schema_version": 1,
            "customer_id": "c",
            "scene_id": "s",
            "action": action,
            "timestamp": datetime(2026, 11, 20, tzinfo=UTC),
            "episodes_generated": episodes,
            "compute_minutes": minutes,
        }
    )
    cost = CostEstimate(
        amount=Decimal(cents) / 100,
        lines={},
        tier=BundleTier.PRO,
        rate_card_version="v",
        billable=True,
    )
    increment = shard_increment(event, cost, 0, 4)
    ints, floats = record_counts(build_record(event, cost, "m"))
    assert ints == dict(increment.ints)
    assert floats == dict(increment.floats)
