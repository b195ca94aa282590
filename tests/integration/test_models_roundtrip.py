"""Every model round-trips through the real Firestore emulator, timestamps included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from devstack.emulators import Emulators
from functions.usage.entry import build_service
from functions.usage.ports import Outcome
from ops.examples import EXAMPLE_FILES, example_models
from shared.counters import counter_doc_id, fold_bucket
from shared.firestore_values import from_firestore, to_firestore
from shared.models import Customer, Scene, UsageRecord
from shared.settings import load_settings
from tests.usage_support import NOW, event_body, message

pytestmark = pytest.mark.integration


def _cases() -> list[tuple[str, str, BaseModel]]:
    return [
        (collection, doc_id, model)
        for collection, docs in example_models().items()
        for doc_id, model in docs.items()
    ]


@pytest.mark.parametrize(("collection", "doc_id", "model"), _cases())
def test_example_round_trips(
    firestore_client: Any, collection: str, doc_id: str, model: BaseModel
) -> None:
    ref = firestore_client.collection(f"rt_{uuid.uuid4().hex[:8]}_{collection}").document(doc_id)
    ref.set(to_firestore(model))
    snapshot = ref.get()
    back = from_firestore(type(model), snapshot.to_dict())
    assert back == model
    ref.delete()


def test_timestamps_keep_microseconds_and_utc(firestore_client: Any) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    customer = Customer(
        schema_version=1,
        bundle_tier="enterprise",
        contract_start=when,
        scenes_generated_this_month=4,
        quota_period="2025-03",
    )
    ref = firestore_client.collection(f"rt_{uuid.uuid4().hex[:8]}").document("c1")
    ref.set(to_firestore(customer))
    back = from_firestore(Customer, ref.get().to_dict())
    assert back.contract_start == when
    assert back.contract_start is not None
    assert back.contract_start.tzinfo == UTC
    assert back == customer


def test_server_timestamp_becomes_a_real_timestamp(firestore_client: Any) -> None:
    scene = Scene(schema_version=1, customer_id="lab_001", vla_models=["openvla"])
    ref = firestore_client.collection(f"rt_{uuid.uuid4().hex[:8]}").document("s1")
    before = datetime.now(UTC)
    ref.set(to_firestore(scene, server_timestamps=["created_at", "updated_at"]))
    back = from_firestore(Scene, ref.get().to_dict())
    assert back.created_at is not None
    assert back.updated_at == back.created_at
    assert abs((back.created_at - before).total_seconds()) < 60
    assert back.model_copy(update={"created_at": None, "updated_at": None}) == scene


def test_every_collection_has_an_example() -> None:
    assert set(EXAMPLE_FILES) == {"customers", "scenes", "feature_flags", "usage_tracking"}


def test_a_record_the_usage_function_writes_reads_back_as_a_usage_record(
    emulators: Emulators, firestore_client: Any
) -> None:
    prefix = f"rt_{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {
            **emulators.env,
            "BLUEPRINT_CUSTOMERS_COLLECTION": f"{prefix}_customers",
            "BLUEPRINT_USAGE_TRACKING_COLLECTION": f"{prefix}_usage",
        }
    )
    firestore_client.collection(settings.customers_collection).document("lab_001").set(
        {"schema_version": 1, "bundle_tier": "pro"}
    )
    result = build_service(settings, firestore_client).handle(message(event_body()), NOW)
    assert result.outcome is Outcome.RECORDED
    snap = firestore_client.collection(settings.usage_tracking_collection).document(
        result.record_id or ""
    )
    record = from_firestore(UsageRecord, snap.get().to_dict())
    assert record.recorded_at is not None
    assert record.recorded_at.tzinfo == UTC
    assert record.fold_key == counter_doc_id("lab_001", "2025-01")
    assert record.fold_bucket == fold_bucket("lab_001", "2025-01", settings.usage_fold_buckets)
    assert (record.scenes_generated, record.cost_cents) == (0, 1550)
    assert record.estimated_cost == 15.5
