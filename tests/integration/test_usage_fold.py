"""The counter fold on the real Firestore and Pub/Sub emulators.

Shards are written directly in the agreed layout (`tests.usage_support.write_shard`), so these
tests do not depend on the usage function that writes them in production.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher
from functions.fold.ports import FoldCounts
from functions.fold.service import FoldConfig, run_fold
from shared.firestore_values import server_timestamp
from shared.settings import Settings, load_settings
from shared.times import month_of, month_start, next_month, previous_month
from tests.usage_support import write_shard

NOW = datetime.now(UTC).replace(microsecond=0)
"""The fold's clock: the real one, since a document's last write (the server's clock) tells
the month of a document from before the suite."""
NOV = month_of(NOW)
"""The current month (named for readability: "this month")."""
DEC = next_month(NOV)
LEASE = timedelta(seconds=120)


@pytest.fixture
def settings(clean_firestore: Emulators) -> Settings:
    return load_settings({**clean_firestore.env, "GOOGLE_CLOUD_PROJECT": clean_firestore.project})


@pytest.fixture
def repo(settings: Settings, firestore_client: Any) -> FirestoreFoldRepository:
    return FirestoreFoldRepository(settings, firestore_client)


class Alerts:
    """The real `quota-alerts` topic of the emulator, a fresh subscription, and a publisher
    that can be made to fail (`fail`) or to kill its run (`die`)."""

    def __init__(self, settings: Settings, pubsub: PubSubHelper) -> None:
        pubsub.create_topic(settings.quota_alerts_topic)
        self.pubsub = pubsub
        self.subscription = pubsub.create_subscription(settings.quota_alerts_topic)
        self.real = PubSubAlertPublisher(settings, pubsub.publisher)
        self.fail = 0
        self.die = False
        self.received: list[dict[str, Any]] = []

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        if self.die:
            raise RunDied
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Pub/Sub unreachable (test)")
        return self.real.publish_alert(data, attributes)

    def drain(self) -> list[dict[str, Any]]:
        self.received += [json.loads(m.data) for m in self.pubsub.drain(self.subscription)]
        return self.received


class RunDied(BaseException):
    """The instance running the fold is gone (no except clause of the fold catches it)."""


@pytest.fixture
def alerts(settings: Settings, pubsub: PubSubHelper) -> Alerts:
    return Alerts(settings, pubsub)


def fold(
    repo: FirestoreFoldRepository,
    alerts: Alerts,
    now: datetime = NOW,
    run_id: str = "run-1",
    **config: Any,
) -> FoldCounts:
    return run_fold(
        repo,
        alerts,
        now=now,
        run_id=run_id,
        config=FoldConfig(**config),
        server_time=server_timestamp(),
    )


def customer(client: Any, cid: str, **fields: Any) -> None:
    client.collection("customers").document(cid).set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1, **fields}
    )


def doc(client: Any, collection: str, doc_id: str) -> dict[str, Any]:
    snap = client.collection(collection).document(doc_id).get()
    assert snap.exists, f"{collection}/{doc_id} missing"
    return snap.to_dict() or {}


def test_fold_sums_shards_into_the_summary_and_the_customer_and_a_rerun_writes_nothing(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "c1", total_scenes_generated=7, total_episodes_generated=70)
    for k in range(3):
        write_shard(db, "c1", NOV, k, records=2, scenes=2, episodes=10, cost_cents=155)
    write_shard(db, "c1", NOV, 1, records=1, compute_minutes=12.5, storage_gb=0.75)
    counts = fold(repo, alerts)
    assert (counts.customers, counts.summaries_written, counts.customers_written) == (1, 1, 1)
    summary = doc(db, "usage_counters", f"c1_{NOV}")
    assert {k: summary[k] for k in ("records", "scenes_generated", "episodes_generated")} == {
        "records": 7,
        "scenes_generated": 6,
        "episodes_generated": 30,
    }
    assert (summary["cost_cents"], summary["compute_minutes"], summary["storage_gb"]) == (
        465,
        12.5,
        0.75,
    )
    assert (summary["seed_scenes"], summary["scenes_total"], summary["shard_count"]) == (0, 6, 3)
    cust = doc(db, "customers", "c1")
    assert cust["scenes_generated_this_month"] == 6
    assert cust["total_scenes_generated"] == 7 + 6  # the legacy base + the shards
    assert cust["total_episodes_generated"] == 70 + 30
    assert cust["quota_period"] == NOV

    before = {
        path: db.document(path).get().update_time
        for path in ("customers/c1", f"usage_counters/c1_{NOV}")
    }
    again = fold(repo, alerts, run_id="run-2", overlap=timedelta(hours=1))  # rescans everything
    assert again.customers == 1
    assert (again.summaries_written, again.customers_written) == (0, 0)
    assert {p: db.document(p).get().update_time for p in before} == before


def test_later_increments_converge_and_lifetime_counts_each_scene_once(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "c2")
    write_shard(db, "c2", NOV, 0, scenes=1)
    fold(repo, alerts)
    for k in range(5):
        write_shard(db, "c2", NOV, k, scenes=1, episodes=3)
    counts = fold(repo, alerts, run_id="run-2")
    assert counts.customers == 1
    cust = doc(db, "customers", "c2")
    assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (6, 6)
    assert cust["total_episodes_generated"] == 15
    summary = doc(db, "usage_counters", f"c2_{NOV}")
    assert (summary["mirrored_scenes"], summary["mirrored_episodes"]) == (6, 15)


def test_a_document_from_before_the_suite_keeps_its_month_count_as_the_seed(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(
        db,
        "legacy",
        scenes_generated_this_month=45,
        total_scenes_generated=300,
        quota_reset_at=month_start(NOV) + timedelta(minutes=5),
        monthly_scene_quota=100,
    )
    write_shard(db, "legacy", NOV, 0, scenes=5)
    fold(repo, alerts)
    summary = doc(db, "usage_counters", f"legacy_{NOV}")
    assert (summary["seed_scenes"], summary["scenes_total"]) == (45, 50)
    cust = doc(db, "customers", "legacy")
    assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (50, 305)
    write_shard(db, "legacy", NOV, 3, scenes=30)  # 80 reached at 45 + 35
    fold(repo, alerts, run_id="run-2")
    summary = doc(db, "usage_counters", f"legacy_{NOV}")
    assert (summary["seed_scenes"], summary["scenes_total"]) == (45, 80)  # seed taken once
    assert doc(db, "customers", "legacy")["scenes_generated_this_month"] == 80
    assert [(a["alert_id"], a["scenes_generated"]) for a in alerts.drain()] == [
        (f"legacy_{NOV}_80", 80)
    ]


def test_events_on_both_sides_of_midnight_give_each_month_its_exact_count(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "mid", quota_period=NOV, scenes_generated_this_month=0)
    for k in range(4):
        write_shard(db, "mid", NOV, k, scenes=2)  # 23:59:5x events
        write_shard(db, "mid", DEC, k, scenes=1)  # 00:00:0x events
    after_midnight = month_start(DEC) + timedelta(seconds=30)
    counts = fold(repo, alerts, now=after_midnight)
    assert (counts.customer_months, counts.customers_written) == (2, 1)  # one write, two months
    assert doc(db, "usage_counters", f"mid_{NOV}")["scenes_total"] == 8
    assert doc(db, "usage_counters", f"mid_{DEC}")["scenes_total"] == 4
    cust = doc(db, "customers", "mid")
    assert (cust["scenes_generated_this_month"], cust["quota_period"]) == (4, DEC)
    assert cust["total_scenes_generated"] == 12
    assert cust["quota_reset_at"] is not None  # the month rolled over
    write_shard(db, "mid", NOV, 9, scenes=1)  # a late event of November, folded in December
    fold(repo, alerts, now=after_midnight + timedelta(minutes=1), run_id="run-2")
    assert doc(db, "usage_counters", f"mid_{NOV}")["scenes_total"] == 9
    cust = doc(db, "customers", "mid")
    assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (4, 13)


def test_two_folds_at_once_leave_the_state_one_fold_leaves(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    expected: dict[str, int] = {}
    for i in range(12):
        cid = f"both_{i:02d}"
        customer(db, cid, monthly_scene_quota=20)
        for k in range(4):
            write_shard(db, cid, NOV, k, scenes=i + k, episodes=1)
        expected[cid] = sum(i + k for k in range(4))
    errors: list[BaseException] = []
    results: list[FoldCounts] = []

    def one(run_id: str) -> None:
        try:
            results.append(fold(repo, alerts, run_id=run_id, workers=4))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(f"run-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for cid, scenes in expected.items():
        summary = doc(db, "usage_counters", f"{cid}_{NOV}")
        assert (summary["scenes_total"], summary["episodes_generated"]) == (scenes, 4)
        cust = doc(db, "customers", cid)
        assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (
            scenes,
            scenes,
        )
        assert cust["total_episodes_generated"] == 4
    third = fold(repo, alerts, run_id="run-3", overlap=timedelta(hours=1))
    assert (third.summaries_written, third.customers_written) == (0, 0)
    # 80 % of 20 = 16 scenes: reached by customers 3.. (6 + 4i >= 16), 100 % by 4.. (>= 20).
    sent = sorted(a["alert_id"] for a in alerts.drain())
    wanted = sorted(
        f"{cid}_{NOV}_{p}"
        for cid, scenes in expected.items()
        for p, at in ((80, 16), (100, 20))
        if scenes >= at
    )
    assert sent == wanted  # exactly once each, whichever fold published it


def test_many_buckets_each_keep_their_own_watermark(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    buckets = 64
    for i in range(60):
        customer(db, f"mb_{i:02d}")
        write_shard(db, f"mb_{i:02d}", NOV, i % 16, scenes=i, buckets=buckets)
    counts = fold(repo, alerts, buckets=buckets, page_size=7)
    assert (counts.customers, counts.failed_customers) == (60, 0)
    for i in range(60):
        assert doc(db, "customers", f"mb_{i:02d}")["total_scenes_generated"] == i
    states = list(db.collection("usage_fold_state").stream())
    assert 1 < len(states) <= buckets
    assert counts.watermarks_moved == len(states)
    write_shard(db, "mb_07", NOV, 2, scenes=100, buckets=buckets)
    later = fold(repo, alerts, run_id="run-2", buckets=buckets, overlap=timedelta(0))
    assert (later.customers, later.customers_written) == (1, 1)
    assert doc(db, "customers", "mb_07")["total_scenes_generated"] == 107


def test_alerts_are_published_once_per_threshold_and_month(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "q", monthly_scene_quota=10)
    write_shard(db, "q", NOV, 0, scenes=8)
    assert fold(repo, alerts).alerts_published == 1
    assert fold(repo, alerts, run_id="run-2", overlap=timedelta(hours=1)).alerts_published == 0
    write_shard(db, "q", NOV, 1, scenes=3)
    assert fold(repo, alerts, run_id="run-3").alerts_published == 1
    got = alerts.drain()
    assert [(a["threshold_percent"], a["scenes_generated"], a["over_quota"]) for a in got] == [
        (80, 8, False),
        (100, 11, True),
    ]
    assert set(got[0]) == {
        "schema_version",
        "alert_id",
        "customer_id",
        "month",
        "threshold_percent",
        "monthly_scene_quota",
        "threshold_scenes",
        "scenes_generated",
        "over_quota",
        "event_id",
        "message_id",
        "detected_at",
    }
    marker = doc(db, "quota_alerts", f"q_{NOV}_100")
    assert marker["state"] == "published"
    assert marker["alert_message_id"]


def test_a_failed_first_publish_and_a_dead_run_still_alert_exactly_once(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "f", monthly_scene_quota=10)
    write_shard(db, "f", NOV, 0, scenes=8)
    alerts.fail = 1  # the first publish fails: the claim is released
    first = fold(repo, alerts)
    assert (first.alerts_published, first.alerts_failed) == (0, 1)
    assert doc(db, "quota_alerts", f"f_{NOV}_80")["state"] == "pending"
    second = fold(repo, alerts, now=NOW + timedelta(minutes=1), run_id="run-2")
    assert (second.alerts_taken_over, second.alerts_published) == (1, 1)

    write_shard(db, "f", NOV, 1, scenes=2)  # 100 % reached; the run dies while publishing
    alerts.die = True
    with pytest.raises(RunDied):
        fold(repo, alerts, now=NOW + timedelta(minutes=2), run_id="run-3", workers=1)
    alerts.die = False
    marker = doc(db, "quota_alerts", f"f_{NOV}_100")
    assert (marker["state"], marker["claimed_by"]) == ("pending", "run-3")
    soon = fold(repo, alerts, now=NOW + timedelta(minutes=3), run_id="run-4")
    assert soon.alerts_published == 0  # the claim is young: its run may still be publishing
    late = fold(repo, alerts, now=NOW + timedelta(minutes=2) + LEASE, run_id="run-5")
    assert (late.alerts_taken_over, late.alerts_published) == (1, 1)
    assert fold(repo, alerts, now=NOW + timedelta(hours=1), run_id="run-6").alerts_published == 0
    assert sorted(a["alert_id"] for a in alerts.drain()) == [f"f_{NOV}_100", f"f_{NOV}_80"]


def test_a_claim_stranded_by_a_dead_usage_delivery_is_taken_over(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    """The old design's defect: a marker claimed by a message that later died stayed pending
    for ever (no other message takes over another's claim). The fold finishes it."""
    db = firestore_client
    db.collection("quota_alerts").document(f"old_{NOV}_80").set(
        {
            "schema_version": 1,
            "alert_id": f"old_{NOV}_80",
            "customer_id": "old",
            "month": NOV,
            "threshold_percent": 80,
            "monthly_scene_quota": 10,
            "threshold_scenes": 8,
            "scenes_generated": 8,
            "over_quota": False,
            "event_id": "evt-8",
            "message_id": "msg-dead",
            "detected_at": (NOW - timedelta(hours=1)).isoformat(),
            "state": "pending",
            "claimed_by": "msg-dead",
            "claimed_at": NOW - timedelta(hours=1),
        }
    )
    assert fold(repo, alerts).alerts_published == 1
    assert fold(repo, alerts, run_id="run-2").alerts_published == 0
    [sent] = alerts.drain()
    assert (sent["alert_id"], sent["event_id"], sent["scenes_generated"]) == (
        f"old_{NOV}_80",
        "evt-8",
        8,
    )
    assert doc(db, "quota_alerts", f"old_{NOV}_80")["state"] == "published"


def test_shards_of_an_unknown_customer_are_summed_but_touch_no_customer(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    write_shard(db, "ghost", NOV, 0, scenes=3)
    counts = fold(repo, alerts)
    assert (counts.summaries_written, counts.customers_written) == (1, 0)
    assert doc(db, "usage_counters", f"ghost_{NOV}")["scenes_total"] == 3
    assert not db.collection("customers").document("ghost").get().exists


def test_the_local_suite_folds_on_its_schedule_topic_and_the_trigger_ignores_the_write(
    local_suite: Any,
) -> None:
    db = local_suite.firestore
    cid = f"e2e_fold_{uuid.uuid4().hex[:8]}"
    customer(db, cid, quota_period=NOV, monthly_scene_quota=-1)
    for k in range(3):
        write_shard(db, cid, NOV, k, scenes=2, episodes=5)
    local_suite.wait_quiet(local_suite.mark())  # the customer's own create trigger
    since = local_suite.mark()
    local_suite.fire_fold()
    ran = local_suite.wait_for(
        lambda items: any(
            i["function"] == "fold-usage-counters" and i["status"] < 300 for i in items
        ),
        since,
        timeout=60,
    )
    assert any(i["decision"] == "folded" for i in ran if i["function"] == "fold-usage-counters")
    cust = doc(db, "customers", cid)
    assert (cust["scenes_generated_this_month"], cust["total_episodes_generated"]) == (6, 15)
    triggered = local_suite.wait_for(
        lambda items: any(
            i["function"] == "on-customer-written" and i["document"].endswith(cid) for i in items
        ),
        since,
    )
    decisions = {
        i["decision"]
        for i in triggered
        if i["function"] == "on-customer-written" and i["document"].endswith(cid)
    }
    assert "ignored-counters" in decisions  # counters are not configuration: no invalidation


def test_a_marker_the_pre_fold_usage_function_created_is_not_sent_again(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "pre", quota_period=NOV, monthly_scene_quota=10)
    db.collection("quota_alerts").document(f"pre_{NOV}_80").set({"state": "published"})
    write_shard(db, "pre", NOV, 0, scenes=9)
    counts = fold(repo, alerts)
    assert (counts.failed_customers, counts.alerts_published) == (0, 0)
    assert doc(db, "usage_counters", f"pre_{NOV}")["alerts"] == [80]
    assert doc(db, "customers", "pre")["scenes_generated_this_month"] == 9
    assert alerts.drain() == []


def test_folds_overlapping_with_new_increments_end_exact(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    ids = [f"live_{i}" for i in range(6)]
    for cid in ids:
        customer(db, cid, total_scenes_generated=1)
        write_shard(db, cid, NOV, 0, scenes=1)
    written = dict.fromkeys(ids, 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 60:
            cid = ids[n % len(ids)]
            write_shard(db, cid, NOV, n % 5, scenes=1, episodes=2)
            written[cid] += 1
            n += 1

    def folds(prefix: str) -> None:
        try:
            for k in range(3):
                fold(repo, alerts, run_id=f"{prefix}-{k}", workers=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=folds, args=(p,)) for p in ("a", "b")
    ]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert errors == []
    fold(repo, alerts, run_id="last", overlap=timedelta(hours=1))
    for cid, scenes in written.items():
        assert doc(db, "usage_counters", f"{cid}_{NOV}")["scenes_total"] == scenes
        cust = doc(db, "customers", cid)
        assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (
            scenes,
            1 + scenes,
        )
        assert cust["total_episodes_generated"] == 2 * (scenes - 1)


def test_the_monthly_reset_rolls_over_to_the_folds_month_count(
    repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    from functions.reset import FirestoreResetRepository, run_reset

    db = firestore_client
    before = previous_month(NOV)
    customer(db, "roll", quota_period=before, scenes_generated_this_month=40)
    for k in range(3):
        write_shard(db, "roll", NOV, k, scenes=2)  # this month's first scenes, folded before...
    fold(repo, alerts, now=month_start(NOV) - timedelta(seconds=30))  # ...the fold's month moved
    assert doc(db, "customers", "roll")["quota_period"] == before
    resets = FirestoreResetRepository(db, "customers", "quota_resets")
    summary = run_reset(resets, NOV, NOW)
    assert summary.reset >= 1
    cust = doc(db, "customers", "roll")
    assert (cust["quota_period"], cust["scenes_generated_this_month"]) == (NOV, 6)
    again = run_reset(resets, NOV, NOW)
    assert again.reset == 0  # exactly once
