"""BlueprintProvider through the real OpenFeature API on the Firestore emulator: each reason once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.provider import ProviderStatus

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from ops.seed import seed_demo
from shared.config_service import CustomerConfigService
from shared.openfeature import BlueprintProvider
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]

TIMEOUT = 1.0
"""The service's read deadline here: a paused Firestore answers stale after about this long."""


@pytest.fixture
def ids() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {k: f"of_{k}_{tag}" for k in ("default", "flag", "override", "killed", "unseen")}


def seed(client: Any, ids: dict[str, str]) -> None:
    customers = client.collection("customers")
    flags = client.collection("feature_flags")
    customers.document(ids["default"]).set({"schema_version": 1, "bundle_tier": "pro"})
    customers.document(ids["flag"]).set({"schema_version": 1, "bundle_tier": "pro"})
    flags.document(ids["flag"]).set({"schema_version": 1, "tactile": True})
    customers.document(ids["override"]).set(
        {"schema_version": 1, "bundle_tier": "standard", "feature_overrides": {"tactile": True}}
    )
    customers.document(ids["killed"]).set({"schema_version": 1, "bundle_tier": "enterprise"})
    flags.document("_global").set({"schema_version": 1, "deformable": False})


@pytest.fixture
def client(clean_firestore: Emulators) -> Iterator[OpenFeatureClient]:
    service = CustomerConfigService(live=False, timeout_seconds=TIMEOUT, retry_seconds=0.5)
    domain = f"live-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(BlueprintProvider(service), domain=domain)
    try:
        yield api.get_client(domain)
    finally:
        api.clear_providers()
        service.close()


def ask(client: OpenFeatureClient, customer_id: str, flag: str = "tactile") -> Any:
    return client.get_boolean_details(flag, False, EvaluationContext(targeting_key=customer_id))


def test_each_reason_once_on_the_emulator(
    client: OpenFeatureClient, clean_firestore: Emulators, firestore_client: Any, ids: Any
) -> None:
    seed(firestore_client, ids)

    default = ask(client, ids["default"])
    assert (default.value, default.reason) == (False, OFReason.DEFAULT)
    assert default.flag_metadata["reason"] == "tier_default"
    assert default.flag_metadata["tier"] == "pro"
    on_by_tier = ask(client, ids["default"], "audio_narration")
    assert (on_by_tier.value, on_by_tier.reason) == (True, OFReason.DEFAULT)

    flag = ask(client, ids["flag"])
    assert (flag.value, flag.reason) == (True, OFReason.TARGETING_MATCH)
    assert flag.flag_metadata["reason"] == "customer_flag"

    override = ask(client, ids["override"])
    assert (override.value, override.reason) == (True, OFReason.TARGETING_MATCH)
    assert override.flag_metadata["reason"] == "override"
    assert override.flag_metadata["tier"] == "standard"

    killed = ask(client, ids["killed"], "deformable")  # enterprise has it; `_global` says no
    assert (killed.value, killed.reason) == (False, OFReason.DISABLED)
    assert killed.flag_metadata["reason"] == "global_kill_switch"
    assert ask(client, ids["killed"]).reason == OFReason.DEFAULT, "only deformable is killed"

    missing = client.get_boolean_details("no_such_feature", True, EvaluationContext(ids["flag"]))
    assert (missing.value, missing.reason) == (True, OFReason.ERROR)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND
    no_key = client.get_boolean_details("tactile", True, EvaluationContext())
    assert (no_key.value, no_key.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)

    unknown = ask(client, f"of_nobody_{uuid.uuid4().hex[:8]}")
    assert (unknown.value, unknown.reason) == (False, OFReason.DEFAULT)
    assert unknown.flag_metadata["customer_exists"] is False
    assert unknown.flag_metadata["tier"] == "standard"

    clean_firestore.pause_firestore()
    try:
        start = time.monotonic()
        stale = ask(client, ids["unseen"])  # never read: tier defaults, marked stale
        elapsed = time.monotonic() - start
        warm = ask(client, ids["flag"])  # read before, within its TTL: no Firestore needed
    finally:
        clean_firestore.resume_firestore()
    assert (stale.value, stale.reason) == (False, OFReason.STALE)
    assert stale.flag_metadata["stale"] is True
    assert stale.error_code is None
    assert elapsed < TIMEOUT * 5, f"stale answer took {elapsed:.1f} s"
    assert (warm.value, warm.reason) == (True, OFReason.TARGETING_MATCH)


def test_provider_creates_starts_and_closes_its_own_service(
    clean_firestore: Emulators, firestore_client: Any, pubsub: PubSubHelper, ids: Any
) -> None:
    seed(firestore_client, ids)
    pubsub.create_topic(get_settings().config_invalidations_topic)
    provider = BlueprintProvider()
    domain = f"own-{uuid.uuid4().hex[:8]}"
    api.set_provider(provider, domain=domain)  # initializes on a thread
    client = api.get_client(domain)
    try:
        deadline = time.monotonic() + 30
        while client.get_provider_status() is not ProviderStatus.READY:
            assert time.monotonic() < deadline, "provider not ready within 30 s"
            time.sleep(0.05)
        service: Any = provider._service
        assert isinstance(service, CustomerConfigService)
        assert service.live, "initialize opened the invalidation stream"
        assert ask(client, ids["flag"]).reason == OFReason.TARGETING_MATCH
    finally:
        api.clear_providers()
    assert not service.live, "shutdown closed the service the provider created"


def test_the_docs_pipeline_snippet_runs(
    clean_firestore: Emulators, firestore_client: Any, pubsub: PubSubHelper
) -> None:
    seed_demo(firestore_client)
    pubsub.create_topic(get_settings().config_invalidations_topic)
    doc = (ROOT / "docs" / "openfeature.md").read_text(encoding="utf-8")
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **clean_firestore.env},
    )
    assert done.returncode == 0, done.stderr
    assert "scene_kitchen_v2: tactile=False DISABLED" in done.stdout
    assert "'reason': 'global_kill_switch'" in done.stdout
