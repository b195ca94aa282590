"""CustomerConfigService kept fresh by the real triggers of the local suite (no hand-made messages).

A write through the client -> the emulator's trigger -> relay -> on_customer_written /
on_feature_flags_written -> `config-invalidations` -> the service's own streaming pull.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from devstack.suite import LocalSuite
from shared.config.adapters import FirestoreConfigReader, PubSubInvalidationFeed
from shared.config_service import CustomerConfigService
from shared.features import Reason
from shared.models import BundleTier, Feature


def _wait(check: Callable[[], bool], deadline: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            pytest.fail(f"condition not met within {deadline} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def service(local_suite: LocalSuite) -> Iterator[CustomerConfigService]:
    feed = PubSubInvalidationFeed(local_suite.settings, prefix=f"e2e-{uuid.uuid4().hex[:6]}")
    svc = CustomerConfigService(
        FirestoreConfigReader(client=local_suite.firestore, settings=local_suite.settings),
        feed=feed,
        settings=local_suite.settings,
        ttl_seconds=300,
    )
    svc.start()
    try:
        yield svc
    finally:
        svc.close()


def test_a_write_anywhere_reaches_a_warm_service_within_3_seconds(
    local_suite: LocalSuite, service: CustomerConfigService
) -> None:
    tag = uuid.uuid4().hex[:8]
    customer_id = f"e2e_cfg_{tag}"
    db = local_suite.firestore
    mark = local_suite.mark()
    db.collection("customers").document(customer_id).set(
        {"schema_version": 1, "bundle_tier": "pro"}
    )
    local_suite.wait_quiet(since=mark)
    assert service.get_customer_config(customer_id).tier is BundleTier.PRO  # warm now

    db.collection("customers").document(customer_id).update({"bundle_tier": "enterprise"})
    took = _wait(lambda: service.get_customer_config(customer_id).tier is BundleTier.ENTERPRISE, 3)
    assert took < 3

    assert service.is_feature_enabled(customer_id, Feature.SIM2REAL).enabled
    db.collection("feature_flags").document(customer_id).set(
        {"schema_version": 1, "sim2real": False}
    )
    _wait(lambda: not service.is_feature_enabled(customer_id, Feature.SIM2REAL).enabled, 3)
    assert service.is_feature_enabled(customer_id, Feature.SIM2REAL).reason is Reason.CUSTOMER_FLAG
