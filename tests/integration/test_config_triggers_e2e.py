"""End to end on the local suite: the emulator's own triggers drive the real functions."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from devstack.suite import LocalSuite

FN = "on-customer-written"
SETTLE = 2.0
"""How long the tests watch for extra invocations after the expected ones (2 s: a stamp that
re-triggered its function would show within it)."""


def customer(**overrides: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "bundle_tier": "pro",
        "organization_name": "E2E Lab",
        "monthly_scene_quota": 100,
        **overrides,
    }


def uid(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def for_doc(items: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [i for i in items if i["document"] == path]


def messages_for(suite: LocalSuite, sub: str, doc_id: str, expect: int) -> list[dict[str, Any]]:
    """Pull until `expect` messages about doc_id came (or 10 s), then 1 s more for extras."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(got) < expect:
        for m in suite.pubsub.pull(sub, count=100, deadline=0.5):
            body = json.loads(m.data)
            if body["document_id"] == doc_id:
                got.append({"body": body, "attributes": m.attributes, "key": m.ordering_key})
    for m in suite.pubsub.pull(sub, count=100, deadline=1.0):
        body = json.loads(m.data)
        if body["document_id"] == doc_id:
            got.append({"body": body, "attributes": m.attributes, "key": m.ordering_key})
    return got


def wait_doc(suite: LocalSuite, path: str, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        snap = suite.firestore.document(path).get()
        data = snap.to_dict() or {}
        if check(data):
            return data
        time.sleep(0.05)
    pytest.fail(f"{path} never satisfied the check; last data {data}")


@pytest.fixture
def invalidations(local_suite: LocalSuite) -> str:
    """A fresh pull subscription on config-invalidations."""
    return local_suite.subscribe(local_suite.settings.config_invalidations_topic)


def test_create_is_stamped_once_and_announced_once(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    cid = uid("e2e-create")
    path = f"customers/{cid}"
    mark = suite.mark()
    suite.firestore.document(path).set(customer())
    data = wait_doc(suite, path, lambda d: "created_at" in d and "updated_at" in d)
    assert data["created_at"] == data["updated_at"]
    time.sleep(SETTLE)
    runs = for_doc(suite.invocations(mark), path)
    assert [r["decision"] for r in runs] == ["stamped", "ignored-own-stamp"]
    assert all(r["status"] == 200 for r in runs)
    after = suite.firestore.document(path).get()
    assert after.to_dict()["updated_at"] == data["updated_at"]  # wrote once
    got = messages_for(suite, invalidations, cid, 1)
    assert len(got) == 1
    body = got[0]["body"]
    assert (body["collection"], body["customer_id"], body["change"], body["valid"]) == (
        "customers",
        cid,
        "create",
        True,
    )
    assert body["errors"] == []
    assert body["event_id"] == runs[0]["event_id"]
    assert got[0]["key"] == cid
    assert got[0]["attributes"]["change"] == "create"
    assert got[0]["attributes"]["valid"] == "true"
    assert datetime.fromisoformat(body["update_time"].replace("Z", "+00:00")).tzinfo is not None


def test_update_restamps_updated_at_and_keeps_created_at(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    cid = uid("e2e-update")
    path = f"customers/{cid}"
    suite.firestore.document(path).set(customer())
    first = wait_doc(suite, path, lambda d: "updated_at" in d)
    suite.wait_quiet(suite.mark(), quiet=0.5, timeout=10)
    mark = suite.mark()
    messages_for(suite, invalidations, cid, 1)  # the create's message
    suite.firestore.document(path).update({"organization_name": "Renamed Lab"})
    data = wait_doc(suite, path, lambda d: d["updated_at"] > first["updated_at"])
    time.sleep(SETTLE)
    runs = for_doc(suite.invocations(mark), path)
    assert [r["decision"] for r in runs] == ["stamped", "ignored-own-stamp"]
    assert data["created_at"] == first["created_at"]
    assert data["organization_name"] == "Renamed Lab"
    got = messages_for(suite, invalidations, cid, 1)
    assert [g["body"]["change"] for g in got] == ["update"]


def test_delete_is_announced_and_not_resurrected(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    cid = uid("e2e-delete")
    path = f"customers/{cid}"
    suite.firestore.document(path).set(customer())
    wait_doc(suite, path, lambda d: "updated_at" in d)
    suite.wait_quiet(suite.mark(), quiet=0.5, timeout=10)
    messages_for(suite, invalidations, cid, 1)
    mark = suite.mark()
    suite.firestore.document(path).delete()
    time.sleep(SETTLE)
    runs = for_doc(suite.invocations(mark), path)
    assert [r["decision"] for r in runs] == ["deleted"]
    assert not suite.firestore.document(path).get().exists
    got = messages_for(suite, invalidations, cid, 1)
    assert [(g["body"]["change"], g["body"]["valid"]) for g in got] == [("delete", True)]


def test_invalid_document_is_not_rewritten_and_marked_invalid(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    cid = uid("e2e-invalid")
    path = f"customers/{cid}"
    mark = suite.mark()
    suite.firestore.document(path).set(customer(bundle_tier="platinum"))
    got = messages_for(suite, invalidations, cid, 1)
    time.sleep(SETTLE / 2)
    runs = for_doc(suite.invocations(mark), path)
    assert [r["decision"] for r in runs] == ["invalid-not-stamped"]
    data = suite.firestore.document(path).get().to_dict()
    assert data == customer(bundle_tier="platinum")  # untouched: no created_at/updated_at
    assert len(got) == 1
    assert got[0]["body"]["valid"] is False
    assert [e["field"] for e in got[0]["body"]["errors"]] == ["bundle_tier"]
    assert "platinum" in got[0]["body"]["errors"][0]["value"]
    assert got[0]["attributes"]["valid"] == "false"


def test_scene_and_flags_are_stamped_too(local_suite: LocalSuite) -> None:
    suite = local_suite
    sid, cid = uid("e2e-scene"), uid("e2e-flags")
    mark = suite.mark()
    suite.firestore.document(f"scenes/{sid}").set({"schema_version": 1, "customer_id": cid})
    suite.firestore.document(f"feature_flags/{cid}").set({"schema_version": 1, "tactile": True})
    wait_doc(suite, f"scenes/{sid}", lambda d: "created_at" in d)
    wait_doc(suite, f"feature_flags/{cid}", lambda d: "created_at" in d)
    runs = suite.wait_quiet(mark, quiet=1.0, timeout=20)
    assert [r["function"] for r in for_doc(runs, f"scenes/{sid}")] == ["on-scene-written"] * 2
    assert [r["function"] for r in for_doc(runs, f"feature_flags/{cid}")] == [
        "on-feature-flags-written"
    ] * 2


@pytest.mark.slow
def test_batch_of_200_writes(local_suite: LocalSuite, invalidations: str) -> None:
    suite = local_suite
    prefix = uid("e2e-batch")
    ids = [f"{prefix}-{i:03d}" for i in range(200)]
    mark = suite.mark()
    batch = suite.firestore.batch()
    for cid in ids:
        batch.set(suite.firestore.document(f"customers/{cid}"), customer())
    batch.commit()
    paths = {f"customers/{cid}" for cid in ids}
    suite.wait_for(
        lambda items: sum(1 for i in items if i["document"] in paths) >= 400, mark, timeout=120
    )
    time.sleep(SETTLE)
    runs = [i for i in suite.invocations(mark) if i["document"] in paths]
    decisions = [r["decision"] for r in runs]
    assert decisions.count("stamped") == 200
    assert decisions.count("ignored-own-stamp") == 200
    assert len(runs) == 400  # 0 extra invocations
    stamped = [
        s.to_dict() for s in suite.firestore.get_all([suite.firestore.document(p) for p in paths])
    ]
    assert sum(1 for d in stamped if "created_at" in d and "updated_at" in d) == 200
    got: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(got) < 200:
        for m in suite.pubsub.pull(invalidations, count=500, deadline=1.0):
            body = json.loads(m.data)
            if body["document_id"].startswith(prefix):
                got.append(body["document_id"])
    got += [
        json.loads(m.data)["document_id"]
        for m in suite.pubsub.pull(invalidations, count=500, deadline=1.0)
        if json.loads(m.data)["document_id"].startswith(prefix)
    ]
    assert sorted(got) == sorted(ids)


def test_redelivered_event_changes_nothing_more(local_suite: LocalSuite) -> None:
    """The relay forwards the same event twice: the second one writes nothing."""
    suite = local_suite
    cid = uid("e2e-redeliver")
    path = f"customers/{cid}"
    mark = suite.mark()
    suite.firestore.document(path).set(customer())
    first = wait_doc(suite, path, lambda d: "updated_at" in d)
    runs = suite.wait_quiet(mark, quiet=0.5, timeout=10)
    create = for_doc(runs, path)[0]
    assert create["decision"] == "stamped"
    # Replay the create event through the function's own URL, as a redelivery would.
    replay = suite.replay(create)
    assert replay["status"] == 200
    assert replay["decision"] == "stale-not-stamped"
    time.sleep(0.5)
    assert suite.firestore.document(path).get().to_dict()["updated_at"] == first["updated_at"]


def test_usage_counters_do_not_stamp_or_invalidate_the_customer(
    local_suite: LocalSuite, invalidations: str
) -> None:
    from datetime import UTC, datetime

    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.publisher import publish_usage_event

    suite = local_suite
    doc_id = uid("cust-usage")
    path = f"customers/{doc_id}"
    suite.firestore.document(path).set(customer())
    stamped = wait_doc(suite, path, lambda d: "updated_at" in d)
    assert len(messages_for(suite, invalidations, doc_id, expect=1)) == 1
    mark = suite.mark()
    for n in range(3):
        publish_usage_event(
            customer_id=doc_id,
            scene_id="s1",
            action="scene_generated",
            timestamp=datetime.now(UTC),
            event_id=f"{doc_id}-{n}",
            client=suite.pubsub.publisher,
            settings=suite.settings,
        )
    # The usage function counts in month shards and writes nothing under customers/ (the fold
    # mirrors the counts there, at most once per fold): the customer trigger does not even run.
    records = suite.firestore.collection(suite.settings.usage_tracking_collection)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mine = list(records.where(filter=FieldFilter("customer_id", "==", doc_id)).stream())
        if len(mine) == 3:
            break
        time.sleep(0.3)
    assert len(mine) == 3
    suite.wait_quiet(since=mark)
    assert for_doc(suite.invocations(mark), path) == []
    assert suite.firestore.document(path).get().to_dict()["updated_at"] == stamped["updated_at"]
    assert messages_for(suite, invalidations, doc_id, expect=1) == []


def test_overwrite_without_timestamps_gets_them_back(local_suite: LocalSuite) -> None:
    """A set() of the config without created_at/updated_at (a re-import, a script) is a user
    write, not the stamp's echo: both come back, created_at with its first value."""
    suite = local_suite
    path = f"customers/{uid('e2e-overwrite')}"
    suite.firestore.document(path).set(customer())
    first = wait_doc(suite, path, lambda d: "updated_at" in d)
    suite.wait_quiet(suite.mark(), quiet=0.5, timeout=10)
    mark = suite.mark()
    suite.firestore.document(path).set(customer())
    data = wait_doc(suite, path, lambda d: "updated_at" in d)
    time.sleep(SETTLE / 2)
    runs = for_doc(suite.invocations(mark), path)
    assert [r["decision"] for r in runs] == ["stamped", "ignored-own-stamp"]
    assert data["created_at"] == first["created_at"]
    assert data["updated_at"] > first["updated_at"]
