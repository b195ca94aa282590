"""The usage service over the real Firestore emulator (in-process deliveries).

Each test works in its own collections (settings with a unique prefix). Deliveries are played by
worker threads: a delivery that raises goes back on the queue, as Pub/Sub would redeliver it.
Counts are read from the records themselves (`sum_records`): what the fold must reach.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.delivery import deliver_all
from devstack.emulators import Emulators
from functions.edge.pubsub import Message
from functions.usage.adapters import FirestoreUsageRepository
from functions.usage.entry import build_service
from functions.usage.ports import Outcome
from functions.usage.service import UsageService
from shared.counters import Sums, counter_doc_id, fold_bucket
from shared.ids import message_doc_id
from shared.settings import Settings, load_settings
from tests.usage_support import event_body, malformed_bodies, sum_records

NOW = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


class Env:
    """Unique collections for one test; the service as deployed (`build_service`)."""

    def __init__(self, emulators: Emulators, client: Any, **settings: str) -> None:
        self.prefix = f"u{uuid.uuid4().hex[:8]}"
        self.client = client
        self.settings: Settings = load_settings(
            {
                **emulators.env,
                "BLUEPRINT_CUSTOMERS_COLLECTION": f"{self.prefix}_customers",
                "BLUEPRINT_USAGE_TRACKING_COLLECTION": f"{self.prefix}_usage",
                "BLUEPRINT_USAGE_REJECTIONS_COLLECTION": f"{self.prefix}_rejections",
                "BLUEPRINT_USAGE_COUNTERS_COLLECTION": f"{self.prefix}_counters",
                "BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": "15",  # a loaded 2-core machine
                **settings,
            }
        )
        self.service: UsageService = build_service(self.settings, client)
        self.repo = self.service.repository
        assert isinstance(self.repo, FirestoreUsageRepository)

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

    def sums(self, customer_id: str, month: str) -> Sums:
        return sum_records(self.client, customer_id, month, self.settings.usage_tracking_collection)


@pytest.fixture
def env(emulators: Emulators, firestore_client: Any) -> Env:
    return Env(emulators, firestore_client)


def msg(body: dict[str, Any] | bytes, message_id: str) -> Message:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Message(message_id, data, {}, NOW.isoformat())


def test_create_record_stores_the_record_as_given_and_the_commit_time_once(env: Env) -> None:
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
        "fold_bucket": 3,
        "fold_key": "c1_2025-01",
        "scenes_generated": 1,
        "cost_cents": 1550,
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
    before = datetime.now(UTC)
    assert env.repo.create_record("r1", record) is True
    ref = env.col("usage_tracking").document("r1")
    stored = ref.get().to_dict()
    recorded_at = stored.pop("recorded_at")
    assert stored == record
    # The server's commit time, not the client's clock (the emulator's clock is this machine's).
    assert abs((recorded_at - before).total_seconds()) < 60
    update_time = ref.get().update_time
    # Created once: the same id again writes nothing, whatever it carries.
    assert env.repo.create_record("r1", {**record, "cost_cents": 1}) is False
    assert ref.get().update_time == update_time
    assert ref.get().to_dict()["cost_cents"] == 1550
    # The usage path writes no summary: only the fold does.
    assert env.count("usage_counters") == 0


def test_a_redelivered_record_is_counted_once(env: Env) -> None:
    env.put_customer("c1", bundle_tier="pro")
    body = event_body(event_id="once", customer_id="c1", action="scene_generated")
    first = env.service.handle(msg(body, "m1"), NOW)
    again = env.service.handle(msg(body, "m2"), NOW)
    assert (first.outcome, again.outcome) == (Outcome.RECORDED, Outcome.DUPLICATE)
    totals = env.sums("c1", "2025-01")
    assert (totals.records, totals.scenes_generated, totals.cost_cents) == (1, 1, 1550)
    [record] = [d.to_dict() for d in env.col("usage_tracking").stream()]
    assert record["fold_key"] == counter_doc_id("c1", "2025-01")
    assert record["fold_bucket"] == fold_bucket("c1", "2025-01", env.settings.usage_fold_buckets)
    assert isinstance(record["recorded_at"], datetime)
    assert env.customer("c1") == {"schema_version": 1, "bundle_tier": "pro"}


def _random_events(rng: random.Random, n: int, customers: list[str]) -> list[dict[str, Any]]:
    bodies = []
    for k in range(n):
        action = rng.choice(["scene_generated", "scene_generated", "episodes_generated", "x_op"])
        bodies.append(
            event_body(
                event_id=f"e{k}",
                customer_id=rng.choice(customers),
                action=action,
                # Both sides of the year boundary: each event counts in its own month.
                timestamp=rng.choice(["2024-12-31T23:59:59.999Z", "2025-01-01T00:00:00Z"])
                if k % 5 == 0
                else f"2025-01-{1 + k % 19:02d}T10:00:00Z",
                episodes_generated=rng.randint(0, 20),
                compute_minutes=round(rng.uniform(0, 60), 2),
                storage_gb=rng.choice([None, 0.25, 1.5]),
                details=None,
            )
        )
    return bodies


def _expected(bodies: list[dict[str, Any]], records: dict[str, dict[str, Any]]) -> dict[Any, Any]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for body in bodies:
        month = body["timestamp"][:7]
        row = out.setdefault(
            (body["customer_id"], month),
            {"records": 0, "scenes_generated": 0, "episodes_generated": 0, "cost_cents": 0},
        )
        row["records"] += 1
        row["scenes_generated"] += body["action"] == "scene_generated"
        row["episodes_generated"] += body["episodes_generated"]
        row["cost_cents"] += round(records[body["event_id"]]["estimated_cost"] * 100)
    return out


def test_1000_events_delivered_3_times_shuffled_record_exactly_once(env: Env) -> None:
    rng = random.Random(1000)
    customers = {"a": "standard", "b": "pro", "c": "enterprise"}
    for cid, tier in customers.items():
        env.put_customer(cid, bundle_tier=tier)
    bodies = _random_events(rng, 1000, list(customers))
    messages = [msg(b, f"m{n}") for n, b in enumerate(bodies)] * 3
    rng.shuffle(messages)
    results, _ = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=8)

    outcomes = Counter(r.outcome for r in results)
    assert outcomes[Outcome.RECORDED] == 1000
    assert outcomes[Outcome.DUPLICATE] == 2000
    assert env.count("usage_tracking") == 1000
    records = {d.get("event_id"): d.to_dict() for d in env.col("usage_tracking").stream()}
    for (cid, month), want in _expected(bodies, records).items():
        got = env.sums(cid, month)
        assert {k: getattr(got, k) for k in want} == want, (cid, month)
    # Nothing under customers/ moved.
    for cid, tier in customers.items():
        assert env.customer(cid) == {"schema_version": 1, "bundle_tier": tier}


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
    assert env.sums("lab_001", "2025-01") == Sums()
    assert env.count("usage_counters") == 0
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


def test_32_threads_one_service_concurrent_duplicates_exact(env: Env) -> None:
    """Thread safety of one service instance (its customer cache) on the real emulator: 32
    threads, 4 customers x 2 months, every message delivered twice at once."""
    customers = ["t0", "t1", "t2", "t3"]
    for cid in customers:
        env.put_customer(cid, bundle_tier="pro")
    bodies = [
        event_body(
            event_id=f"t{n}",
            customer_id=customers[n % 4],
            action="scene_generated",
            timestamp="2024-12-31T23:59:59Z" if n % 3 else "2025-01-01T00:00:00Z",
            episodes_generated=1,
            compute_minutes=None,
            storage_gb=None,
            details=None,
        )
        for n in range(1600)
    ]
    messages = []
    for n, body in enumerate(bodies):
        messages += [msg(body, f"tm{n}"), msg(body, f"tm{n}")]  # back to back: concurrent
    results, _ = deliver_all(lambda m: env.service.handle(m, NOW), messages, workers=32)

    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.RECORDED: 1600, Outcome.DUPLICATE: 1600}
    assert env.count("usage_tracking") == 1600
    for cid in customers:
        for month in ("2024-12", "2025-01"):
            want = sum(1 for b in bodies if b["customer_id"] == cid and b["timestamp"][:7] == month)
            got = env.sums(cid, month)
            assert (got.records, got.scenes_generated) == (want, want), (cid, month)


def test_a_rejection_the_client_cannot_encode_is_stored_reduced_not_retried(env: Env) -> None:
    # An attribute with an empty key: Firestore's client refuses the map before sending it
    # (ValueError). It is the document's fault, so a retry cannot help: stored reduced.
    message = Message("odd-attrs", b"not json", {"": "x", "origin": "pipeline"}, NOW.isoformat())
    result = env.service.handle(message, NOW)
    assert result.outcome is Outcome.REJECTED
    data = env.col("usage_rejections").document(message_doc_id("odd-attrs")).get().to_dict()
    assert (data["kind"], data["message_id"], data["payload_bytes"]) == ("not_json", "odd-attrs", 8)
    assert "attributes" not in data
    assert env.service.handle(message, NOW).outcome is Outcome.REJECTED_BEFORE
