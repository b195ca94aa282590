"""Quiet records that commit past their flag's cover (functions/usage/flags.py), on the real
Firestore emulator: each touches a shard of its month (zero increments, `touched_at`), the fold
sees the touch and counts the month by aggregation, exactly once, redeliveries included."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.delivery import deliver_all
from devstack.emulators import Emulators
from functions.fold.service import FoldConfig
from functions.usage.flags import FlagBook
from functions.usage.ports import Outcome
from ops import export
from ops.export import ExportStats
from shared.counters import FLAG_AT_FIELD, TALLY_FIELD, TOUCHED_AT_FIELD, counter_doc_id
from tests.integration.test_usage_fold_records import NOW, fold_once, settings_for
from tests.integration.test_usage_ingest import Env, msg
from tests.usage_support import event_body


def test_records_past_their_flags_cover_are_counted_through_their_touches(
    emulators: Emulators, firestore_client: Any
) -> None:
    env = Env(
        emulators,
        firestore_client,
        BLUEPRINT_USAGE_SHARD_RATE="100000",  # quiet
        BLUEPRINT_USAGE_FOLD_BUCKETS="4",
        **settings_for(f"l{random.getrandbits(32):08x}"),
    )
    env.put_customer("late", bundle_tier="pro", quota_period="2025-01")
    # A flag of this instance that its own clock calls fresh, committed two minutes ago by the
    # server's: every record it covers commits past the cover (what a stalled commit does).
    stale = datetime.now(UTC) - timedelta(minutes=2)
    book = FlagBook()
    book.flagged("late", "2025-01", stale)
    service = replace(env.service, flags=book)
    bodies = [
        event_body(
            event_id=f"l{n}",
            customer_id="late",
            action="scene_generated" if n % 3 else "x_op",
            timestamp="2025-01-05T00:00:00Z",
            episodes_generated=n,
            compute_minutes=None,
            storage_gb=None,
            details=None,
        )
        for n in range(20)
    ]
    messages = [msg(b, f"lm{n}") for n, b in enumerate(bodies)]
    results, _ = deliver_all(lambda m: service.handle(m, NOW), [*messages, *messages[:5]], 4)
    assert sorted(r.outcome for r in results).count(Outcome.RECORDED) == 20
    records = [d.to_dict() for d in env.col("usage_tracking").stream()]
    assert len(records) == 20
    assert all(TALLY_FIELD not in r and r[FLAG_AT_FIELD] == stale for r in records)
    shards = list(
        env.col("usage_counters")
        .document(counter_doc_id("late", "2025-01"))
        .collection("shards")
        .stream()
    )
    assert shards, "each late record touched a shard"
    for snap in shards:
        data = snap.to_dict()
        assert data[TOUCHED_AT_FIELD] == data["updated_at"]
        assert data.get("records", 0) == 0  # a touch counts nothing
    time.sleep(FoldConfig().records_lag.total_seconds() + 0.5)
    fold_once(env, "f1")
    summary = env.col("usage_counters").document(counter_doc_id("late", "2025-01")).get().to_dict()
    scenes = sum(1 for n in range(20) if n % 3)
    assert (summary["records"], summary["scenes_generated"]) == (20, scenes)
    assert summary["episodes_generated"] == sum(range(20))
    assert summary["cost_cents"] == sum(round(r["estimated_cost"] * 100) for r in records)
    assert env.customer("late")["scenes_generated_this_month"] == scenes
    fold_once(env, "f2")
    again = env.col("usage_counters").document(counter_doc_id("late", "2025-01")).get().to_dict()
    assert again["records"] == 20  # nothing counted twice


def test_every_record_the_usage_function_writes_is_exported_and_valid(
    emulators: Emulators, firestore_client: Any
) -> None:
    """The fold's bookkeeping on the records (a flag's `fold_bucket`, a covered record's
    `fold_flag_at`, `fold_key`, the integer counts) is part of the record's model: billing's
    export keeps every record, none is skipped as invalid (they were, while the model refused
    `fold_bucket`)."""
    env = Env(
        emulators,
        firestore_client,
        BLUEPRINT_USAGE_SHARD_RATE="100000",
        BLUEPRINT_USAGE_TRACKING_COLLECTION=f"x{random.getrandbits(32):08x}_usage",
    )
    env.put_customer("exp", bundle_tier="pro")
    bodies = [
        event_body(event_id=f"x{n}", customer_id="exp", timestamp="2025-01-05T00:00:00Z")
        for n in range(6)
    ]
    results, _ = deliver_all(
        lambda m: env.service.handle(m, NOW), [msg(b, f"xm{n}") for n, b in enumerate(bodies)], 2
    )
    assert {r.outcome for r in results} == {Outcome.RECORDED}
    stored = [d.to_dict() for d in env.col("usage_tracking").stream()]
    assert any(TALLY_FIELD in r for r in stored)
    assert any(FLAG_AT_FIELD in r for r in stored)
    stats = ExportStats()
    rows = list(
        export.record_rows(firestore_client, "2025-01", now=NOW, settings=env.settings, stats=stats)
    )
    assert len(rows) == 6
    assert (stats.records_skipped, stats.skipped) == (0, [])
