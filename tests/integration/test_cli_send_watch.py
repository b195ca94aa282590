"""`blueprint usage send` and `blueprint watch` against the local suite on the real emulators:
a sent event becomes a record, a config change and a quota alert reach `watch`, a bad event's
rejection reaches `watch rejections`; the watch's subscription is gone afterwards."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.suite import LocalSuite
from ops.cli import main
from shared import names
from shared.settings import get_settings
from tests.conftest import E2E_PROJECT

pytestmark = pytest.mark.usefixtures("cli_logs")


@pytest.fixture
def suite(local_suite: LocalSuite) -> Iterator[LocalSuite]:
    """The CLI pointed at the local suite's project (where its functions and topics are)."""
    saved = os.environ.get("GOOGLE_CLOUD_PROJECT")
    os.environ["GOOGLE_CLOUD_PROJECT"] = E2E_PROJECT
    get_settings.cache_clear()
    try:
        yield local_suite
    finally:
        if saved is None:
            os.environ.pop("GOOGLE_CLOUD_PROJECT", None)
        else:
            os.environ["GOOGLE_CLOUD_PROJECT"] = saved
        get_settings.cache_clear()


def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


class Watch:
    """`blueprint watch ... --json --for N` in a thread, started once its subscription exists."""

    def __init__(self, suite: LocalSuite, what: str, seconds: float) -> None:
        self.suite = suite
        self.what = what
        self.out = io.StringIO()
        self.code: int | None = None
        argv = ["watch", what, "--for", str(seconds), "--json"]
        self.thread = threading.Thread(target=self._run, args=(argv,), daemon=True)

    def _run(self, argv: list[str]) -> None:
        self.code = main(argv, out=self.out)

    def subscriptions(self, topic: str) -> list[str]:
        path = names.topic_path(self.suite.project, topic)
        listed = self.suite.pubsub.publisher.list_topic_subscriptions(request={"topic": path})
        return [s for s in listed if "/blueprint-watch-" in s]

    def start(self, topic: str | None = None) -> Watch:
        self.thread.start()
        if topic is None:
            time.sleep(2.0)  # the rejections' poll starts at once: let it take its start time
            return self
        deadline = time.monotonic() + 20
        while not self.subscriptions(topic):
            assert time.monotonic() < deadline, "the watch created no subscription"
            time.sleep(0.1)
        return self

    def items(self) -> list[dict[str, Any]]:
        self.thread.join(timeout=90)
        assert not self.thread.is_alive()
        assert self.code == 0
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


def _customer(suite: LocalSuite, customer_id: str) -> None:
    suite.firestore.collection(suite.settings.customers_collection).document(customer_id).set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 10}
    )


def _records(suite: LocalSuite, event_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    query = suite.firestore.collection(suite.settings.usage_tracking_collection).where(
        filter=FieldFilter("event_id", "==", event_id)
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d.to_dict() for d in query.stream(timeout=10)]
        if found:
            return found
        time.sleep(0.3)
    return []


def test_sent_event_becomes_one_record(suite: LocalSuite) -> None:
    cid = f"send_{uuid.uuid4().hex[:8]}"
    _customer(suite, cid)
    argv = ["usage", "send", "--customer", cid, "--action", "scene_generated", "--episodes", "3"]
    code, out = cli([*argv, "--json"])
    assert code == 0
    sent = json.loads(out)
    [record] = _records(suite, sent["event_id"])
    assert (record["customer_id"], record["action"], record["episodes_generated"]) == (
        cid,
        "scene_generated",
        3,
    )
    assert record["scene_id"] == "cli-scene"
    assert record["message_id"] == sent["message_id"]


def test_watch_invalidations_prints_a_config_change(suite: LocalSuite) -> None:
    topic = suite.settings.config_invalidations_topic
    watch = Watch(suite, "invalidations", 15).start(topic)
    cid = f"watch_{uuid.uuid4().hex[:8]}"
    _customer(suite, cid)
    items = watch.items()
    mine = [i for i in items if i["data"].get("document_id") == cid]
    assert mine, items
    assert mine[0]["kind"] == "invalidation"
    assert mine[0]["data"]["collection"] == suite.settings.customers_collection
    assert watch.subscriptions(topic) == []  # deleted when the watch ended


def test_watch_alerts_prints_a_published_alert(suite: LocalSuite) -> None:
    topic = suite.settings.quota_alerts_topic
    watch = Watch(suite, "alerts", 6).start(topic)
    cid = f"alert_{uuid.uuid4().hex[:8]}"
    alert = {
        "alert_id": f"{cid}_2026-12_80",
        "customer_id": cid,
        "month": "2026-12",
        "threshold_percent": 80,
        "scenes_generated": 8,
        "monthly_scene_quota": 10,
    }
    suite.publish(topic, json.dumps(alert))
    items = watch.items()
    assert [i["data"] for i in items if i["data"].get("customer_id") == cid] == [alert]
    assert watch.subscriptions(topic) == []


def test_watch_rejections_prints_a_bad_events_rejection(suite: LocalSuite) -> None:
    watch = Watch(suite, "rejections", 20).start()
    ghost = f"ghost_{uuid.uuid4().hex[:8]}"  # no customer document: the function refuses it
    code, _ = cli(["usage", "send", "--customer", ghost, "--action", "scene_generated"])
    assert code == 0
    items = watch.items()
    mine = [i for i in items if i["data"].get("customer_id") == ghost]
    assert len(mine) == 1, items
    assert mine[0]["kind"] == "rejection"
    assert mine[0]["data"]["kind"] == "unknown_customer"
