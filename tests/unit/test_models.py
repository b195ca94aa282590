"""Models: the example documents validate; bad values fail naming the field, the value, the rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.examples import EXAMPLE_FILES, raw_examples
from shared.errors import InvalidDocumentError
from shared.models import (
    BundleTier,
    Customer,
    Feature,
    FeatureFlags,
    Scene,
    UsageEvent,
    UsageRecord,
    document_errors,
    to_plain,
    validate,
    validate_json,
)

CUSTOMER: dict[str, Any] = raw_examples("customers")["lab_001"]
SCENE: dict[str, Any] = raw_examples("scenes")["scene_kitchen_v2"]
FLAGS: dict[str, Any] = raw_examples("feature_flags")["lab_001"]
USAGE: dict[str, Any] = next(iter(raw_examples("usage_tracking").values()))
EVENT: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "evt-1",
    "customer_id": "lab_001",
    "scene_id": "scene_kitchen_v2",
    "action": "episodes_generated",
    "timestamp": "2025-01-10T14:30:00Z",
    "episodes_generated": 100,
    "compute_minutes": 45.5,
    "storage_gb": 2.3,
}


@pytest.mark.parametrize(
    ("collection", "doc_id"),
    [(c, d) for c in EXAMPLE_FILES for d in raw_examples(c)],
)
def test_every_schema_example_validates(collection: str, doc_id: str) -> None:
    _, model = EXAMPLE_FILES[collection]
    doc = raw_examples(collection)[doc_id]
    assert document_errors(model, doc) == []


def test_example_customer_reads_as_expected() -> None:
    customer = validate(Customer, CUSTOMER)
    assert customer.bundle_tier is BundleTier.PRO
    assert customer.contract_start == datetime(2025, 1, 1, tzinfo=UTC)
    # The specification writes `tactile_sensors`; it is read as the `tactile` feature.
    assert customer.feature_overrides == {Feature.TACTILE: True}


def test_global_flags_keep_their_comment() -> None:
    flags = validate(FeatureFlags, raw_examples("feature_flags")["_global"])
    assert flags.comment is not None
    assert flags.flags() == {Feature.TACTILE: False, Feature.STREAMING_EXPORT: False}
    assert to_plain(flags)["_comment"].startswith("Global policy")


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()

# (model, document, field path named in the error, text expected in the message)
INVALID: list[tuple[type, dict[str, Any], str, str]] = [
    (Customer, _with(CUSTOMER, bundle_tier="gold"), "bundle_tier", "'standard'"),
    (Customer, _with(CUSTOMER, bundle_tier=_DROP), "bundle_tier", "required"),
    (Customer, _with(CUSTOMER, schema_version=2), "schema_version", "1"),
    (Customer, _with(CUSTOMER, schema_version=_DROP), "schema_version", "required"),
    (Customer, _with(CUSTOMER, monthly_scene_quota=-2), "monthly_scene_quota", "-1"),
    (Customer, _with(CUSTOMER, monthly_scene_quota="100"), "monthly_scene_quota", "integer"),
    (Customer, _with(CUSTOMER, monthly_scene_quota=1.5), "monthly_scene_quota", "integer"),
    (Customer, _with(CUSTOMER, scenes_generated_this_month=-1), "scenes_generated_this_month", "0"),
    (Customer, _with(CUSTOMER, total_scenes_generated=True), "total_scenes_generated", "integer"),
    (Customer, _with(CUSTOMER, email="not-an-email"), "email", "email"),
    (Customer, _with(CUSTOMER, email="ops@example.org\n"), "email", "email"),
    (Customer, _with(CUSTOMER, support_tier="gold"), "support_tier", "'basic'"),
    (Customer, _with(CUSTOMER, contract_start="2025-01-01T00:00:00"), "contract_start", "timezone"),
    (Customer, _with(CUSTOMER, contract_end=1735689600), "contract_end", "number"),
    (Customer, _with(CUSTOMER, contract_end="2024-01-01T00:00:00Z"), "(document)", "before"),
    (Customer, _with(CUSTOMER, feature_overrides={"teleport": True}), "feature_overrides", ""),
    (
        Customer,
        _with(CUSTOMER, feature_overrides={"tactile": "yes"}),
        "feature_overrides.tactile",
        "boolean",
    ),
    (Customer, _with(CUSTOMER, audio_narration_enabled=1), "audio_narration_enabled", "boolean"),
    (Customer, _with(CUSTOMER, preferred_language="english!"), "preferred_language", "BCP 47"),
    (Customer, _with(CUSTOMER, preferred_language="en-US\n"), "preferred_language", "BCP 47"),
    (Customer, _with(CUSTOMER, preferred_tts_voice="robot"), "preferred_tts_voice", "voice"),
    (Customer, _with(CUSTOMER, quota_period="2025-13"), "quota_period", "YYYY-MM"),
    (Customer, _with(CUSTOMER, tier="pro"), "tier", "no such field"),
    (Scene, _with(SCENE, customer_id=_DROP), "customer_id", "required"),
    (Scene, _with(SCENE, customer_id="a/b"), "customer_id", "'/'"),
    (Scene, _with(SCENE, data_pack_tier="ultra"), "data_pack_tier", "'core'"),
    (Scene, _with(SCENE, min_quality_score=1.5), "min_quality_score", "1"),
    (Scene, _with(SCENE, min_quality_score=float("nan")), "min_quality_score", "finite"),
    (Scene, _with(SCENE, episodes_per_variation=0), "episodes_per_variation", "1"),
    (Scene, _with(SCENE, max_variations="100"), "max_variations", "integer"),
    (Scene, _with(SCENE, vla_models="openvla"), "vla_models", "list"),
    (Scene, _with(SCENE, vla_models=["OpenVLA!"]), "vla_models.0", "lowercase"),
    (Scene, _with(SCENE, bundle_tier="platinum"), "bundle_tier", "'standard'"),
    (Scene, _with(SCENE, tactile_enabled="false"), "tactile_enabled", "boolean"),
    (FeatureFlags, _with(FLAGS, tactile="off"), "tactile", "boolean"),
    (FeatureFlags, _with(FLAGS, teleport=True), "teleport", "no such field"),
    (FeatureFlags, _with(FLAGS, rollouts={"tactile": 0}), "rollouts.tactile", "1"),
    (FeatureFlags, _with(FLAGS, rollouts={"tactile": 101}), "rollouts.tactile", "100"),
    (FeatureFlags, _with(FLAGS, rollouts={"tactile": "10"}), "rollouts.tactile", "integer"),
    (FeatureFlags, _with(FLAGS, rollouts={"teleport": 10}), "rollouts.teleport", "'tactile'"),
    (UsageRecord, _with(USAGE, estimated_cost=-1.0), "estimated_cost", "0"),
    (UsageRecord, _with(USAGE, compute_minutes=float("inf")), "compute_minutes", "finite"),
    (UsageRecord, _with(USAGE, billable=_DROP), "billable", "required"),
    (UsageRecord, _with(USAGE, storage_gb=-0.1), "storage_gb", "0"),
    (UsageRecord, _with(USAGE, scenes_generated=2), "scenes_generated", "1"),
    (UsageRecord, _with(USAGE, cost_cents=-1), "cost_cents", "0"),
    (UsageRecord, _with(USAGE, fold_bucket="3"), "fold_bucket", "integer"),
    (UsageRecord, _with(USAGE, fold_flag_at=USAGE["timestamp"]), "fold_flag_at", "no such field"),
    (UsageEvent, _with(EVENT, episodes_generated=-5), "episodes_generated", "0"),
    (UsageEvent, _with(EVENT, compute_minutes="45"), "compute_minutes", "number"),
    (UsageEvent, _with(EVENT, timestamp="yesterday"), "timestamp", "datetime"),
    (UsageEvent, _with(EVENT, action="Scene Generated"), "action", "action name"),
    (UsageEvent, _with(EVENT, scene_id=""), "scene_id", "at least 1"),
    (UsageEvent, _with(EVENT, customer_id="__reserved__"), "customer_id", "__...__"),
]


@pytest.mark.parametrize(("model", "doc", "field", "expected"), INVALID)
def test_invalid_document_names_field_and_value(
    model: type, doc: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(InvalidDocumentError) as caught:
        validate(model, doc)
    errors = caught.value.errors
    assert any(e.field.startswith(field) for e in errors), errors
    message = str(caught.value)
    assert field in message
    assert expected.lower() in message.lower()


def test_error_message_carries_the_value_received() -> None:
    with pytest.raises(InvalidDocumentError) as caught:
        validate(Customer, _with(CUSTOMER, monthly_scene_quota=-7))
    assert "monthly_scene_quota=-7" in str(caught.value)


def test_there_are_at_least_twenty_invalid_cases() -> None:
    assert len(INVALID) >= 20


def test_usage_event_from_json_body_and_timestamps_in_utc() -> None:
    body = json.dumps(_with(EVENT, timestamp="2025-01-10T16:30:00+02:00"))
    event = validate_json(UsageEvent, body)
    assert event.timestamp == datetime(2025, 1, 10, 14, 30, tzinfo=UTC)
    assert event.timestamp.utcoffset() is not None
    assert event.timestamp.tzinfo == UTC


def test_usage_event_json_rejects_nan_written_as_literal() -> None:
    body = json.dumps(EVENT).replace("45.5", "NaN")
    with pytest.raises(InvalidDocumentError) as caught:
        validate_json(UsageEvent, body)
    assert "compute_minutes" in str(caught.value)


def test_usage_event_schema_file_is_current() -> None:
    from ops.jsonschema import SCHEMA_FILE, render

    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/usage_event.schema.json is stale: run `python -m ops.jsonschema`"
    )
    schema = json.loads(render())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "schema_version",
        "customer_id",
        "scene_id",
        "action",
        "timestamp",
    }


def test_models_document_themselves() -> None:
    props = Customer.model_json_schema()["properties"]
    assert "unlimited" in props["monthly_scene_quota"]["description"]


def test_feature_flags_record_which_features_a_rollout_turned_on() -> None:
    flags = validate(
        FeatureFlags, {"schema_version": 1, "tactile": True, "rollouts": {"tactile": 20}}
    )
    assert flags.rollouts == {Feature.TACTILE: 20}
    assert flags.flags() == {Feature.TACTILE: True}  # `rollouts` is no feature
