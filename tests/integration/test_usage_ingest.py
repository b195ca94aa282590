"""The usage service over the real Firestore and Pub/Sub emulators (in-process deliveries).

Each test works in its own collections (settings with a unique prefix) and its own alerts topic.
Deliveries are played by worker threads: a delivery that raises goes back on the queue, as
Pub/Sub would redeliver it.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from functions.reset import FirestoreResetRepository, run_reset
from functions.usage import (
    CommitConflictError,
    CustomerCache,
    Limits,
    Outcome,
    PubSubMessage,
    UsageService,
)
from functions.usage_firestore import FirestoreUsageRepository, PubSubAlertPublisher
from shared.ids import message_doc_id
from shared.settings import Settings, load_settings
from shared.times import month_of, next_month_start
from tests.usage_support import event_body, malformed_bodies

NOW = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


class Env:
    """Unique collections and an alerts topic with a pull subscription, for one test."""

    def __init__(
        self, emulators: Emulators, pubsub: PubSubHelper, client: Any, cache: bool = False
    ) -> None:
        self.prefix = f"u{uuid.uuid4().hex[:8]}"
        self.alerts_topic = pubsub.create_topic(pubsub.unique("alerts"))
        self.alerts_sub = pubsub.create_subscription(self.alerts_topic)
        self.pubsub = pubsub
        self.client = client
        self.settings: Settings = load_settings(
            {
                **emulators.env,
                "BLUEPRINT_CUSTOMERS_COLLECTION": f"{self.prefix}_customers",
                "BLUEPRINT_USAGE_TRACKING_COLLECTION": f"{self.prefix}_usage",
                "BLUEPRINT_USAGE_REJECTIONS_COLLECTION": f"{self.prefix}_rejections",
                "BLUEPRINT_QUOTA_ALERTS_COLLECTION": f"{self.prefix}_alerts",
                "BLUEPRINT_QUOTA_ALERTS_TOPIC": self.alerts_topic,
                "BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": "5",
            }
        )
        self.repo = FirestoreUsageRepository(self.settings, client)
        self.service = UsageService(
            self.repo,
            PubSubAlertPublisher(self.settings, pubsub.publisher),
            limits=Limits(),
            customer_cache=CustomerCache(timedelta(seconds=1)) if cache else None,
        )

    def col(self, name: str) -> Any:
        return self.client.collection(getattr(self.settings, f"{name}_collection"))

    def put_customer(self, customer_id: str, **fields: Any) -> None:
        self.col("customers").document(customer_id).set({"schema_version": 1, **fields})

    def customer(self, customer_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.col("customers").document(customer_id).get().to_dict()
        return data

    def count(self, name: str) -> int:
        result = self.col(name).count().get()
        return int(result[0][0].value)

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(m.data) for m in self.pubsub.drain(self.alerts_sub, quiet=1.5)]


@pytest.fixture
def env(emulators: Emulators, pubsub: PubSubHelper, firestore_client: Any) -> Env:
    return Env(emulators, pubsub, firestore_client)


def deliver_all(
    handle: Callable[[PubSubMessage], Any], messages: list[PubSubMessage], workers: int
) -> tuple[list[Any], int]:
    """Deliver with `workers` threads; a delivery that raises is queued again (redelivery)."""
    todo: queue.Queue[PubSubMessage] = queue.Queue()
    for m in messages:
        todo.put(m)
    results: list[Any] = []
    failures = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal failures
        while True:
            try:
                m = todo.get_nowait()
            except queue.Empty:
                return
            try:
                r = handle(m)
            except Exception:
                with lock:
                    failures += 1
                todo.put(m)
                continue
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, failures


def msg(body: dict[str, Any] | bytes, message_id: str) -> PubSubMessage:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return PubSubMessage(message_id, data, {}, NOW.isoformat())


def test_one_commit_returns_counters_in_field_path_order(env: Env) -> None:
    env.put_customer("c1", bundle_tier="pro", total_scenes_generated=10)
    increments = {
        ("total_scenes_generated",): 1,
        ("scene_counts_by_month", "2025-01"): 3,
        ("scenes_generated_this_month",): 5,
        ("total_episodes_generated",): 7,
    }
    counters = env.repo.commit_usage("r1", {"schema_version": 1}, "c1", increments, None)
    assert counters == {
        ("total_scenes_generated",): 11,
        ("scene_counts_by_month", "2025-01"): 3,
        ("scenes_generated_this_month",): 5,
        ("total_episodes_generated",): 7,
    }
    doc = env.customer("c1")
    assert doc["scene_counts_by_month"] == {"2025-01": 3}
    # Same record again: nothing written, nothing counted.
    assert env.repo.commit_usage("r1", {"schema_version": 1}, "c1", increments, None) is None
    assert env.customer("c1")["total_scenes_generated"] == 11
    record = env.col("usage_tracking").document("r1").get().to_dict()
    assert isinstance(record["recorded_at"], datetime)
    # A stale update-time guard fails the whole batch.
    stale = env.repo.get_customer("c1")
    assert stale is not None
    env.repo.commit_usage("r2", {"schema_version": 1}, "c1", increments, None)
    with pytest.raises(CommitConflictError):
        env.repo.commit_usage("r3", {"schema_version": 1}, "c1", increments, stale.update_time)
    assert not env.col("usage_tracking").document("r3").get().exists


def test_raw_commit_stores_what_the_client_stores(env: Env) -> None:
    # commit_usage builds its protobufs itself: what it stores must be exactly what the
    # client's WriteBatch.create / update store for the same data.
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment
    from google.cloud.firestore_v1.field_path import FieldPath as FsPath

    record: dict[str, Any] = {
        "schema_version": 1,
        "customer_id": "c1",
        "action": "scene_generated",
        "timestamp": datetime(2025, 1, 10, 14, 30, 5, 123456, tzinfo=UTC),
        "billable": True,
        "estimated_cost": 15.5,
        "episodes_generated": 2**63 - 1,
        "storage_gb": 0.0,
        "compute_minutes": None,
        "details": {
            "batch_size": 10,
            "ratio": -1.25e-300,
            "none": None,
            "flag": False,
            "ünïcode key": "välue ✓",
            "a.b": {"`tick`": [1, "two", {"three": [3.0]}, None, True]},
            "empty_map": {},
            "empty_list": [],
        },
    }
    for cid in ("c1", "c2"):
        env.put_customer(cid, bundle_tier="pro", total_scenes_generated=10)
    increments = {
        ("total_scenes_generated",): 1,
        ("scene_counts_by_month", "2025-01"): 1,
        ("total_episodes_generated",): 7,
    }
    # With a plain field set in the same write (a legacy document's adopted quota_period).
    sets = {"quota_period": "2025-01"}
    assert env.repo.commit_usage("raw", record, "c1", increments, None, sets=sets) is not None
    batch = env.client.batch()
    batch.create(
        env.col("usage_tracking").document("client"), {**record, "recorded_at": SERVER_TIMESTAMP}
    )
    batch.update(
        env.col("customers").document("c2"),
        {FsPath(*p).to_api_repr(): Increment(v) for p, v in increments.items()} | sets,
    )
    batch.commit()
    raw = env.col("usage_tracking").document("raw").get().to_dict()
    client = env.col("usage_tracking").document("client").get().to_dict()
    assert isinstance(raw.pop("recorded_at"), datetime)
    assert isinstance(client.pop("recorded_at"), datetime)
    assert raw == client
    assert raw["timestamp"] == record["timestamp"]
    assert env.customer("c1") == env.customer("c2")
    assert env.customer("c1")["quota_period"] == "2025-01"
    # A fresh update-time guard (nanoseconds of the server time as read) lets the commit pass.
    fresh = env.repo.get_customer("c1")
    assert fresh is not None
    counters = env.repo.commit_usage("raw2", record, "c1", increments, fresh.update_time)
    assert counters == {
        ("total_scenes_generated",): 12,
        ("scene_counts_by_month", "2025-01"): 2,
        ("total_episodes_generated",): 14,
    }


def test_1000_events_delivered_3_times_shuffled_record_exactly_once(env: Env) -> None:
    rng = random.Random(1000)
    customers = {"a": ("standard", 300), "b": ("pro", 50), "c": ("enterprise", -1)}
    for cid, (tier, q) in customers.items():
        # The counter's period is the month of NOW (the emulator's write time is today's).
        env.put_customer(cid, bundle_tier=tier, monthly_scene_quota=q, quota_period="2025-01")
    bodies = []
    for n in range(1000):
        cid = rng.choice(list(customers))
        action = rng.choice(["scene_generated", "scene_generated", "episodes_generated", "x_op"])
        body = event_body(
            event_id=f"e{n}",
            customer_id=cid,
            action=action,
            timestamp=f"2025-01-{1 + n % 19:02d}T10:00:00Z",
            episodes_generated=rng.randint(0, 20),
            compute_minutes=round(rng.uniform(0, 60), 2),
            storage_gb=None,
            details=None,
        )
        bodies.append(body)
    messages = [msg(b, f"m{n}") for n, b in enumerate(bodies)] * 3
    rng.shuffle(messages)
    results, _ = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=8)

    outcomes = Counter(r.outcome for r in results)
    assert outcomes[Outcome.RECORDED] == 1000
    assert outcomes[Outcome.DUPLICATE] == 2000
    assert env.count("usage_tracking") == 1000
    for cid in customers:
        mine = [b for b in bodies if b["customer_id"] == cid]
        scenes = sum(b["action"] == "scene_generated" for b in mine)
        episodes = sum(b["episodes_generated"] for b in mine)
        doc = env.customer(cid)
        assert doc.get("total_scenes_generated", 0) == scenes, cid
        assert doc.get("scenes_generated_this_month", 0) == scenes, cid
        assert doc.get("scene_counts_by_month", {}).get("2025-01", 0) == scenes, cid
        assert doc.get("total_episodes_generated", 0) == episodes, cid
    alerts = Counter((a["customer_id"], a["threshold_percent"]) for a in env.alerts())
    assert alerts == {("b", 80): 1, ("b", 100): 1}


def test_8_workers_2000_events_one_hot_customer(
    emulators: Emulators, pubsub: PubSubHelper, firestore_client: Any
) -> None:
    # As deployed: the customer cache on.
    env = Env(emulators, pubsub, firestore_client, cache=True)
    quotas = {"hot": 1500, "warm1": 100, "warm2": 100}
    for cid, q in quotas.items():
        env.put_customer(cid, bundle_tier="pro", monthly_scene_quota=q, quota_period="2025-01")
    rng = random.Random(2000)
    owners = ["hot"] * 1700 + ["warm1"] * 150 + ["warm2"] * 150
    rng.shuffle(owners)
    messages = [
        msg(
            event_body(
                event_id=f"h{n}",
                customer_id=cid,
                action="scene_generated",
                timestamp="2025-01-20T11:00:00Z",
                episodes_generated=2,
                details=None,
            ),
            f"hm{n}",
        )
        for n, cid in enumerate(owners)
    ]
    results, failures = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=8)

    assert failures == 0
    assert all(r.outcome is Outcome.RECORDED for r in results)
    assert env.count("usage_tracking") == 2000
    for cid in quotas:
        n = owners.count(cid)
        doc = env.customer(cid)
        assert doc["scenes_generated_this_month"] == n
        assert doc["total_scenes_generated"] == n
        assert doc["total_episodes_generated"] == 2 * n
    alerts = env.alerts()
    assert Counter((a["customer_id"], a["threshold_percent"]) for a in alerts) == {
        ("hot", 80): 1,
        ("hot", 100): 1,
        ("warm1", 80): 1,
        ("warm1", 100): 1,
        ("warm2", 80): 1,
        ("warm2", 100): 1,
    }
    # Each alert names the count at which its threshold is reached, and the count when a
    # delivery detected it (a concurrent event past the threshold may claim it first).
    by_key = {(a["customer_id"], a["threshold_percent"]): a for a in alerts}
    assert by_key[("hot", 80)]["threshold_scenes"] == 1200
    assert 1200 <= by_key[("hot", 80)]["scenes_generated"] < 1500
    assert by_key[("warm1", 100)]["threshold_scenes"] == 100
    assert 100 <= by_key[("warm1", 100)]["scenes_generated"] <= 150
    markers = [d.to_dict() for d in env.col("quota_alerts").stream()]
    assert len(markers) == 6
    assert all(m["state"] == "published" for m in markers)


def test_malformed_messages_stored_once_never_counted(env: Env) -> None:
    env.put_customer("lab_001", bundle_tier="pro", total_scenes_generated=5)
    bodies = malformed_bodies()
    assert len(bodies) >= 30
    messages = [msg(b, f"bad-{name}") for name, b in bodies.items()] * 2
    results, failures = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=4)

    assert failures == 0
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.REJECTED: len(bodies), Outcome.REJECTED_BEFORE: len(bodies)}
    assert env.count("usage_rejections") == len(bodies)
    assert env.count("usage_tracking") == 0
    assert env.customer("lab_001") == {
        "schema_version": 1,
        "bundle_tier": "pro",
        "total_scenes_generated": 5,
    }
    for name, body in bodies.items():
        doc = env.col("usage_rejections").document(message_doc_id(f"bad-{name}")).get()
        data = doc.to_dict()
        assert data["reason"], name
        assert data["message_id"] == f"bad-{name}"
        assert data["payload_bytes"] == len(body)
        assert isinstance(data["rejected_at"], datetime)


def test_legacy_document_at_the_first_month_boundary_keeps_the_new_month_apart(env: Env) -> None:
    """A document that predates the suite (95 of 100, neither quota_period nor quota_reset_at),
    last written in month `old`; the first events of the next month arrive before the scheduled
    reset reached it. They count in the new month only, no alert; the reset then derives the
    new month's counter and later events alert at the right thresholds."""
    env.put_customer(
        "lab", bundle_tier="pro", monthly_scene_quota=100, scenes_generated_this_month=95
    )
    written = env.col("customers").document("lab").get().update_time
    old = month_of(written)
    start = next_month_start(old)
    new = month_of(start)

    def scene(n: int, at: datetime) -> PubSubMessage:
        body = event_body(
            event_id=f"lg{n}",
            customer_id="lab",
            action="scene_generated",
            timestamp=at.isoformat(),
            episodes_generated=None,
            compute_minutes=None,
            storage_gb=None,
            details=None,
        )
        return msg(body, f"lgm{n}")

    now = start + timedelta(seconds=40)
    first = env.service.handle(scene(1, start + timedelta(seconds=30)), now)
    assert (first.outcome, first.alerts) == (Outcome.RECORDED, ())
    doc = env.customer("lab")
    assert doc["quota_period"] == old  # recorded by the usage commit itself
    assert doc["scene_counts_by_month"] == {new: 1}
    assert doc["scenes_generated_this_month"] == 95
    # That commit moved the update time into the new month: the next event still keeps apart.
    second = env.service.handle(scene(2, start + timedelta(seconds=35)), now)
    assert second.alerts == ()
    doc = env.customer("lab")
    assert (doc["scene_counts_by_month"], doc["scenes_generated_this_month"]) == ({new: 2}, 95)

    repo = FirestoreResetRepository(
        env.client, env.settings.customers_collection, f"{env.prefix}_audits"
    )
    summary = run_reset(repo, new, start + timedelta(minutes=1), as_of=start)
    assert (summary.reset, summary.kept) == (1, 0)
    doc = env.customer("lab")
    assert (doc["quota_period"], doc["scenes_generated_this_month"]) == (new, 2)

    later = start + timedelta(minutes=5)
    for n in range(3, 101):
        env.service.handle(scene(n, later), later)
    doc = env.customer("lab")
    assert doc["scenes_generated_this_month"] == 100
    assert doc["scene_counts_by_month"] == {new: 100}
    sent = sorted((a["threshold_percent"], a["scenes_generated"], a["month"]) for a in env.alerts())
    assert sent == [(80, 80, new), (100, 100, new)]
