"""CustomerConfigService on the real emulators: RPC counts, live invalidation, outage, recovery.

Here the change announcement is published by the test itself, in the shape the triggers publish
(JSON body + the same keys as attributes, ordering key = customer id), so RPCs can be counted
without trigger traffic; the service under test is the real one, streaming-pulling its own
subscription. The path through the real triggers is `test_config_service_e2e.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import firestore

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from shared.config.adapters import FirestoreConfigReader
from shared.config_service import CustomerConfigService
from shared.features import Reason
from shared.models import BundleTier, Feature
from shared.settings import get_settings

RPC_METHODS = (
    "batch_get_documents",
    "get_document",
    "run_query",
    "list_documents",
    "commit",
    "begin_transaction",
    "run_aggregation_query",
)


class RpcCounter:
    """Counts every Firestore RPC a client makes (wraps its GAPIC methods)."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        api = client._firestore_api  # created now; every RPC of the client goes through it
        for name in RPC_METHODS:
            original = getattr(api, name)
            setattr(api, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return original(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def announce(
    pubsub: PubSubHelper, collection: str, doc_id: str, customer_id: str, change: str = "update"
) -> None:
    """Publish what the trigger publishes for one user-visible change."""
    body = {
        "collection": collection,
        "document_id": doc_id,
        "customer_id": customer_id,
        "change_kind": change,
        "valid": True,
        "errors": [],
        "event_id": uuid.uuid4().hex,
        "update_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    attributes = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in body.items()}
    pubsub.publish(
        get_settings().config_invalidations_topic,
        json.dumps(body),
        ordering_key=customer_id,
        **attributes,
    )


def seed(client: Any, customer_id: str, scene_id: str) -> None:
    client.collection("customers").document(customer_id).set(
        {"schema_version": 1, "bundle_tier": "pro", "organization_name": "Live Lab"}
    )
    client.collection("feature_flags").document(customer_id).set(
        {"schema_version": 1, "sim2real": True}
    )
    client.collection("feature_flags").document("_global").set(
        {"schema_version": 1, "streaming_export": False}
    )
    client.collection("scenes").document(scene_id).set(
        {"schema_version": 1, "customer_id": customer_id, "data_pack_tier": "full"}
    )


def wait_for(check: Callable[[], bool], deadline: float, step: float = 0.05) -> float:
    """Seconds until `check()` held; fails the test after `deadline` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            pytest.fail(f"condition not met within {deadline} s")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture
def ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"cfg_cust_{tag}", f"cfg_scene_{tag}"


@pytest.fixture
def live_service(
    clean_firestore: Emulators, pubsub: PubSubHelper
) -> Iterator[tuple[CustomerConfigService, RpcCounter]]:
    pubsub.create_topic(get_settings().config_invalidations_topic)
    client = firestore.Client(project=clean_firestore.project)
    counter = RpcCounter(client)
    service = CustomerConfigService(FirestoreConfigReader(client=client), ttl_seconds=300)
    service.start()
    try:
        yield service, counter
    finally:
        service.close()


def test_rpc_counts_and_invalidation_end_to_end(
    live_service: tuple[CustomerConfigService, RpcCounter],
    firestore_client: Any,
    pubsub: PubSubHelper,
    ids: tuple[str, str],
) -> None:
    service, counter = live_service
    customer_id, scene_id = ids
    seed(firestore_client, customer_id, scene_id)
    assert service.live

    cold = service.get_scene_config(scene_id, customer_id=customer_id)
    assert counter.calls == Counter({"batch_get_documents": 1}), "cold scene lookup: ONE RPC"
    assert cold.effective.bundle_tier is BundleTier.PRO
    assert not cold.stale
    assert [c.field for c in cold.clamped] == ["data_pack_tier"]

    service.get_scene_config(scene_id, customer_id=customer_id)
    service.get_customer_config(customer_id)
    service.is_feature_enabled(customer_id, Feature.SIM2REAL)
    service.feature_flags(customer_id)
    assert counter.total == 1, "warm lookups: zero RPCs"

    firestore_client.collection("customers").document(customer_id).update(
        {"bundle_tier": "enterprise"}
    )
    announce(pubsub, "customers", customer_id, customer_id)
    took = wait_for(
        lambda: service.get_customer_config(customer_id).tier is BundleTier.ENTERPRISE, 3
    )
    assert took < 3
    scene = service.get_scene_config(scene_id)
    assert scene.effective.bundle_tier is BundleTier.ENTERPRISE
    assert not scene.clamped

    firestore_client.collection("feature_flags").document("_global").update({"sim2real": False})
    announce(pubsub, "feature_flags", "_global", "_global")
    wait_for(lambda: not service.is_feature_enabled(customer_id, "sim2real"), 3)
    answer = service.is_feature_enabled(customer_id, "sim2real")
    assert answer.reason is Reason.GLOBAL_KILL_SWITCH
    assert not answer.stale


def test_stream_loss_drops_cache_and_resubscribes(
    live_service: tuple[CustomerConfigService, RpcCounter],
    firestore_client: Any,
    pubsub: PubSubHelper,
    ids: tuple[str, str],
) -> None:
    service, counter = live_service
    customer_id, scene_id = ids
    seed(firestore_client, customer_id, scene_id)
    service.get_customer_config(customer_id)
    feed: Any = service._feed
    subscription = feed.subscription
    pubsub.subscriber.delete_subscription(request={"subscription": subscription})
    wait_for(lambda: service.stats["resets"] >= 1, 30, step=0.2)

    def subscribed() -> bool:
        try:
            pubsub.subscriber.get_subscription(request={"subscription": subscription})
        except Exception:
            return False
        return True

    wait_for(subscribed, 30, step=0.2)
    before = counter.total
    service.get_customer_config(customer_id)
    assert counter.total == before + 1, "the cache was dropped on the stream error"
    time.sleep(1.0)  # let the reopened stream attach before the next change
    firestore_client.collection("customers").document(customer_id).update(
        {"bundle_tier": "foundation"}
    )
    announce(pubsub, "customers", customer_id, customer_id)
    wait_for(lambda: service.get_customer_config(customer_id).tier is BundleTier.FOUNDATION, 10)


def test_paused_firestore_gives_stale_defaults_then_recovers(
    clean_firestore: Emulators, firestore_client: Any, ids: tuple[str, str]
) -> None:
    customer_id, scene_id = ids
    seed(firestore_client, customer_id, scene_id)
    timeout = 1.0
    service = CustomerConfigService(
        FirestoreConfigReader(client=firestore.Client(project=clean_firestore.project)),
        live=False,
        timeout_seconds=timeout,
        retry_seconds=0.5,
    )
    assert service.get_customer_config(customer_id).tier is BundleTier.PRO
    service.get_customer_config.cache_clear()
    clean_firestore.pause_firestore()
    try:
        start = time.monotonic()
        config = service.get_customer_config(customer_id)
        elapsed = time.monotonic() - start
        assert config.stale
        assert config.tier is BundleTier.STANDARD
        assert elapsed < timeout + 1.0, f"fallback took {elapsed:.2f} s"
        scene = service.get_scene_config(scene_id, customer_id=customer_id)
        assert scene.stale
        assert scene.effective.bundle_tier is BundleTier.STANDARD
    finally:
        clean_firestore.resume_firestore()
    wait_for(lambda: not service.get_customer_config(customer_id).stale, 20, step=0.2)
    fresh = service.get_customer_config(customer_id)
    assert fresh.tier is BundleTier.PRO
    assert fresh.exists
