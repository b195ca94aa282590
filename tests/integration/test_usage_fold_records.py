"""Quiet customer-months counted from their records, on the real Firestore emulator: the usage
service as deployed writes only the record (with its `fold_bucket`), the fold reads those
records at its read time and counts each exactly once, also while folds overlap deliveries and
each other."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.delivery import deliver_all
from devstack.emulators import Emulators
from functions.fold import held_format
from functions.fold.adapters import FirestoreFoldRepository
from functions.fold.service import FoldConfig, run_fold
from functions.usage.ports import Outcome
from shared.counters import TALLY, counter_doc_id
from shared.firestore_values import server_timestamp
from shared.times import month_of
from tests.integration.test_usage_ingest import Env, msg
from tests.usage_support import event_body

NOW = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


class NoAlerts:
    def publish_alert(self, data: bytes, attributes: Any) -> str:
        raise AssertionError("no quota is set: no alert")


def fold_once(env: Env, run_id: str, write_interval: timedelta = timedelta(0)) -> Any:
    repo = FirestoreFoldRepository(env.settings, env.client)
    config = FoldConfig(
        buckets=env.settings.usage_fold_buckets,
        page_size=50,
        workers=4,
        write_interval=write_interval,
    )
    return run_fold(
        repo, NoAlerts(), now=NOW, run_id=run_id, config=config, server_time=server_timestamp()
    )


def settings_for(env_prefix: str) -> dict[str, str]:
    return {
        "BLUEPRINT_USAGE_FOLD_STATE_COLLECTION": f"{env_prefix}_fold_state",
        "BLUEPRINT_QUOTA_ALERTS_COLLECTION": f"{env_prefix}_alerts",
    }


@pytest.mark.parametrize("held", [False, True], ids=["written-every-fold", "held-between-writes"])
def test_quiet_usage_is_counted_from_its_records_once_while_folds_overlap(
    emulators: Emulators, firestore_client: Any, held: bool
) -> None:
    """`held`: the folds hold January's new records in their buckets' state (the fold's clock
    stays in January, so no write is due by age; December, a closed month, is written at once);
    the last fold, with no write interval, writes everything held."""
    interval = timedelta(hours=1) if held else timedelta(0)
    prefix = f"q{random.getrandbits(32):08x}"
    env = Env(
        emulators,
        firestore_client,
        BLUEPRINT_USAGE_SHARD_RATE="100000",  # every customer-month quiet
        BLUEPRINT_USAGE_FOLD_BUCKETS="4",
        **settings_for(prefix),
    )
    rng = random.Random(42)
    customers = [f"q{n}" for n in range(12)]
    for cid in customers:
        env.put_customer(cid, bundle_tier="pro", total_scenes_generated=3)  # a legacy base
    bodies = [
        event_body(
            event_id=f"e{n}",
            customer_id=rng.choice(customers),
            action=rng.choice(["scene_generated", "scene_generated", "x_op"]),
            # both sides of the year boundary: each counts in its own month
            timestamp="2024-12-31T23:59:59.999Z" if n % 4 == 0 else "2025-01-01T00:00:00Z",
            episodes_generated=rng.randint(0, 5),
            compute_minutes=None,
            storage_gb=None,
            details=None,
        )
        for n in range(300)
    ]
    messages = [msg(b, f"m{n}") for n, b in enumerate(bodies)] * 2
    rng.shuffle(messages)

    stop = threading.Event()
    folds: list[Any] = []

    def keep_folding(name: str) -> None:  # two folders, overlapping each other and deliveries
        n = 0
        while not stop.is_set():
            folds.append(fold_once(env, f"{name}-{n}", interval))
            n += 1

    folders = [threading.Thread(target=keep_folding, args=(f"f{k}",)) for k in range(2)]
    for t in folders:
        t.start()
    try:
        results, _ = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=4)
        time.sleep(FoldConfig().records_lag.total_seconds() + 1.0)  # the folders go on
    finally:
        stop.set()
        for t in folders:
            t.join()
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.RECORDED: 300, Outcome.DUPLICATE: 300}
    assert all(r.counter is None for r in results)  # no shard increment at all
    assert sum(f.records_scanned for f in folds) > 0  # the overlapping folds counted them
    assert (sum(f.months_held for f in folds) > 0) is held
    fold_once(env, "last")
    if held:
        states = [d.to_dict() for d in env.col("usage_fold_state").stream()]
        # everything held got written (what is left owes a flag's cover, holds no count)
        decoded = [held_format.decode(s.get("held")) for s in states]
        assert all(not problems for _, problems in decoded)
        assert all(h.empty for entries, _ in decoded for h in entries.values())

    counters = env.col("usage_counters")
    for summary in counters.stream():
        assert list(summary.reference.collection("shards").stream()) == []
    records = [d.to_dict() for d in env.col("usage_tracking").stream()]
    assert len(records) == 300
    # Each is counted by aggregation on its month key; a few are the flags the scan reads.
    assert all(r["fold_key"] == f"{r['customer_id']}_{month_of(r['timestamp'])}" for r in records)
    flags = [r for r in records if isinstance(r.get("fold_bucket"), int)]
    covered = [r for r in records if "fold_bucket" not in r]
    assert all(r["fold_flag_at"] <= r["recorded_at"] for r in covered)
    assert 0 < len(flags) <= 4 * len(customers) * 2, len(flags)  # per customer-month and worker
    for cid in customers:
        lifetime = 0
        for month in ("2024-12", "2025-01"):
            mine = [
                r for r in records if r["customer_id"] == cid and month_of(r["timestamp"]) == month
            ]
            scenes = sum(r["action"] == "scene_generated" for r in mine)
            lifetime += scenes
            snap = counters.document(counter_doc_id(cid, month)).get()
            if not mine:
                assert not snap.exists
                continue
            got = snap.to_dict()
            assert got["records"] == len(mine), (cid, month)
            assert got["scenes_generated"] == scenes, (cid, month)
            assert got["episodes_generated"] == sum(r["episodes_generated"] for r in mine)
            assert got["cost_cents"] == sum(round(r["estimated_cost"] * 100) for r in mine)
            assert set(got["shards"]) == {TALLY}
        assert env.customer(cid)["total_scenes_generated"] == 3 + lifetime, cid
    # A fold now finds nothing new and writes nothing.
    again = fold_once(env, "again")
    assert (again.summaries_written, again.customers_written) == (0, 0)


class Recorded:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish_alert(self, data: bytes, attributes: Any) -> str:
        self.sent.append(json.loads(data))
        return f"a{len(self.sent)}"


def test_a_held_month_sends_its_alert_in_the_fold_that_sees_the_crossing(
    emulators: Emulators, firestore_client: Any
) -> None:
    """On the emulator, folds holding a quiet month (write interval 1 h): below the 80 % line
    nothing is written after the first write; the fold that reads the 80th scene writes the
    month and publishes the alert, once."""
    prefix = f"a{random.getrandbits(32):08x}"
    env = Env(
        emulators,
        firestore_client,
        BLUEPRINT_USAGE_SHARD_RATE="100000",
        BLUEPRINT_USAGE_FOLD_BUCKETS="4",
        **settings_for(prefix),
    )
    env.put_customer("qa", bundle_tier="pro", monthly_scene_quota=100, quota_period="2025-01")
    publisher = Recorded()
    repo = FirestoreFoldRepository(env.settings, env.client)
    config = FoldConfig(buckets=4, workers=2, write_interval=timedelta(hours=1))
    summary = env.col("usage_counters").document(counter_doc_id("qa", "2025-01"))

    def deliver(first: int, count: int) -> Any:
        messages = [
            msg(
                event_body(
                    event_id=f"qa-{n}",
                    customer_id="qa",
                    action="scene_generated",
                    timestamp="2025-01-10T10:00:00Z",
                    compute_minutes=None,
                    storage_gb=None,
                    details=None,
                ),
                f"qa-m{n}",
            )
            for n in range(first, first + count)
        ]
        deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=4)
        time.sleep(config.records_lag.total_seconds() + 0.5)
        return run_fold(
            repo,
            publisher,
            now=NOW,
            run_id=f"f{first}",
            config=config,
            server_time=server_timestamp(),
        )

    deliver(0, 70)
    assert summary.get().to_dict()["scenes_total"] == 70
    held = deliver(70, 9)
    assert (held.months_held, held.summaries_written) == (1, 0)
    assert summary.get().to_dict()["scenes_total"] == 70
    crossed = deliver(79, 1)
    assert crossed.summaries_written == 1
    assert summary.get().to_dict()["scenes_total"] == 80
    assert [(a["threshold_percent"], a["scenes_generated"]) for a in publisher.sent] == [(80, 80)]
    assert env.customer("qa")["scenes_generated_this_month"] == 80
