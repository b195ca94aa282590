"""Property tests: generated CloudEvents against the entry points, over the fakes.

For `on_customer_written` / `on_scene_written` / `on_feature_flags_written` and
`reset_monthly_quotas`: whatever the headers and body (valid DocumentEventData around real
documents with mutations, garbage bytes, JSON, wrong types everywhere), the only exception that
leaves a handler is TransientError, and only when a fake injected a transient failure; every
permanent failure is recorded (an ERROR line, an invalidation marked invalid, a rejection record).
"""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.config import entry as config_entry
from functions.config.ports import ConfigKind, Decision
from functions.edge.documents import FIRESTORE_EVENT_TYPES
from functions.reset import entry as reset_entry
from shared.errors import TransientError
from tests.limits_support import (
    OUTAGE,
    PUBLISHED,
    WRITTEN,
    FakePublisher,
    FakeScheduleRepo,
    FakeStamper,
    captured_logs,
    create_body,
    document,
    firestore_event,
    update_body,
)

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_INT = 2**63 - 1

BASES: dict[ConfigKind, tuple[str, dict[str, Any]]] = {
    ConfigKind.CUSTOMER: (
        "customers/lab_001",
        {
            "schema_version": 1,
            "bundle_tier": "pro",
            "organization_name": "AI Research Lab",
            "email": "contact@ailab.edu",
            "monthly_scene_quota": 100,
            "contract_start": datetime(2025, 1, 1, tzinfo=UTC),
            "feature_overrides": {"tactile_sensors": True},
        },
    ),
    ConfigKind.SCENE: (
        "scenes/scene_kitchen_v2",
        {
            "schema_version": 1,
            "customer_id": "lab_001",
            "robot_type": "franka",
            "data_pack_tier": "plus",
            "min_quality_score": 0.85,
            "vla_models": ["openvla", "pi0"],
            "custom_settings": {"lighting_variation": "high"},
        },
    ),
    ConfigKind.FEATURE_FLAGS: ("feature_flags/_global", {"schema_version": 1, "tactile": True}),
}
FUNCTION = {
    ConfigKind.CUSTOMER: "on-customer-written",
    ConfigKind.SCENE: "on-scene-written",
    ConfigKind.FEATURE_FLAGS: "on-feature-flags-written",
}

# --- Firestore values -------------------------------------------------------------------------

timestamps = st.datetimes(
    min_value=datetime(1, 1, 1),  # noqa: DTZ001 -- hypothesis wants naive bounds
    max_value=datetime(9999, 12, 31, 23, 59, 59),  # noqa: DTZ001
    timezones=st.just(UTC),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), MAX_INT),
    st.sampled_from([0, -1, MAX_INT, -(2**63), 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -0.0, 1e308, 5e-324]),
    st.text(max_size=40),
    st.text(alphabet="é漢字🙂\u0000\u202e\ud7ff", max_size=10),
    st.binary(max_size=40),
    timestamps,
)
keys = st.text(alphabet=string.ascii_letters + "_.é `", min_size=1, max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The base document with a few fields given other values (a wrong type in any field),
    removed or added; sometimes near the size limits."""
    doc = dict(base)
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
        if draw(st.booleans()):
            doc[name] = draw(values)
        else:
            doc.pop(name)
    doc.update(draw(st.dictionaries(keys, values, max_size=3)))
    size = draw(st.sampled_from([0, 0, 0, 0, 1, 2]))
    if size == 1:
        doc["custom_settings"] = {"blob": "x" * draw(st.integers(100_000, 900_000))}
    elif size == 2:
        doc["vla_models"] = [f"M{i}" for i in range(draw(st.integers(100, 5000)))]
    if draw(st.booleans()):
        doc["created_at"] = draw(timestamps)
    return doc


@st.composite
def config_events(draw: st.DrawFn, kind: ConfigKind) -> CloudEvent:
    path, base = BASES[kind]
    shape = draw(st.sampled_from(["create", "update", "delete", "garbage", "json", "empty"]))
    content = draw(
        st.sampled_from(
            ["application/protobuf", "application/json", "text/plain", "", "application/xml"]
        )
    )
    body: Any
    if shape == "create":
        body = create_body(path, draw(mutated(base)))
    elif shape == "update":
        body = update_body(path, draw(mutated(base)), draw(mutated(base)))
    elif shape == "delete":
        from google.events.cloud.firestore_v1.types import DocumentEventData

        old = document(path, draw(mutated(base)))
        body = bytes(DocumentEventData.serialize(DocumentEventData(old_value=old)))
    elif shape == "garbage":
        body = draw(
            st.one_of(
                st.binary(max_size=200),
                st.just(b"[" * 1000),
                st.just(b"\n{" + b"\xff" * 50),
            )
        )
    elif shape == "json":
        body = draw(
            st.one_of(
                st.dictionaries(
                    keys, values.filter(lambda v: not isinstance(v, bytes)), max_size=4
                ).map(lambda d: json.dumps(d, default=str).encode()),
                st.just(
                    json.dumps({"value": {"name": "x", "fields": {"a": {"nope": 1}}}}).encode()
                ),
                st.text(max_size=50).map(str.encode),
            )
        )
    else:
        body = b""
    ce_type = draw(
        st.one_of(
            st.just(WRITTEN),
            st.just(WRITTEN),
            st.sampled_from([PUBLISHED, "google.cloud.firestore.document.v1.deleted", "x"]),
            st.text(min_size=1, max_size=30),
        )
    )
    attrs = {"type": ce_type, "datacontenttype": content} if content else {"type": ce_type}
    event = firestore_event(path, body, event_id=draw(st.text(max_size=20)) or "e", **attrs)
    if not content:
        del event["datacontenttype"]
    return event


@pytest.mark.parametrize("kind", list(ConfigKind))
@EXAMPLES
@given(data=st.data())
def test_config_entry_points_raise_only_injected_transient_errors(
    kind: ConfigKind, data: st.DataObject
) -> None:
    event = data.draw(config_events(kind))
    inject = data.draw(st.sampled_from([None, None, None, "stamper", "publisher"]))
    stamper = FakeStamper(OUTAGE if inject == "stamper" else None)
    publisher = FakePublisher(OUTAGE if inject == "publisher" else None)
    saved = config_entry._STAMPER, config_entry._PUBLISHER
    config_entry._STAMPER, config_entry._PUBLISHER = stamper, publisher
    try:
        with captured_logs() as lines:
            try:
                outcome = config_entry.run_trigger(FUNCTION[kind], kind, event)
            except TransientError:
                assert inject is not None, "a TransientError without an injected failure"
                return
    finally:
        config_entry._STAMPER, config_entry._PUBLISHER = saved
    if event["type"] not in FIRESTORE_EVENT_TYPES:  # another event's body: never processed
        assert outcome is None
        assert stamper.calls == []
    if outcome is None:  # refused: acknowledged, one ERROR line
        assert len(lines.errors()) == 1
        assert publisher.messages == []
        return
    if outcome.decision is Decision.INVALID:
        [body] = publisher.bodies()
        assert body["valid"] is False
        assert body["errors"]
        assert len(lines.errors()) == 1
    elif outcome.decision in {Decision.STAMPED, Decision.DELETED}:
        assert lines.errors() == []
        assert len(publisher.messages) == 1
    # every message fits Pub/Sub's limits (FakePublisher checks), and stays small
    assert all(len(data) < 64 * 1024 for data, _, _ in publisher.messages)


# --- the schedule topic -----------------------------------------------------------------------

NOW = datetime.now(UTC)


@st.composite
def schedule_events(draw: st.DrawFn) -> CloudEvent:
    data: Any = draw(
        st.one_of(
            st.just(b'{"job": "monthly-quota-reset"}'),
            st.sampled_from(["2026-12", "2026-13", "12/2026", "0000-01", "9999-12", ""]).map(
                lambda p: json.dumps({"period": p}).encode()
            ),
            st.just(NOW.strftime('{"period": "%Y-%m"}').encode()),
            st.binary(max_size=100),
            st.just(b"[" * 1000),
            values.filter(lambda v: not isinstance(v, bytes)).map(
                lambda v: json.dumps(v, default=str).encode()
            ),
        )
    )
    encoded: Any = base64.b64encode(data).decode()
    if draw(st.integers(0, 9)) == 0:  # data as an object, a number, not base64
        encoded = draw(st.one_of(st.just({"job": "x"}), st.integers(), st.just("not base64!")))
    publish_time = draw(
        st.one_of(
            st.none(),
            st.just(NOW.isoformat()),
            st.just((NOW - timedelta(days=3)).isoformat()),
            st.sampled_from(
                [
                    "0001-01-01T00:00:00Z",
                    "0001-01-01T00:30:00+01:00",
                    "9999-12-31T23:30:00-01:00",
                    "20250110",
                    "",
                ]
            ),
            timestamps.map(datetime.isoformat),
            st.text(max_size=30),
            st.integers(),
        )
    )
    message: dict[str, Any] = {"data": encoded}
    if publish_time is not None:
        message["publishTime"] = publish_time
    if draw(st.booleans()):
        message["messageId"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        message["attributes"] = draw(st.dictionaries(keys, st.text(max_size=10), max_size=3))
    envelope: Any = {"message": message, "subscription": "projects/p/subscriptions/s"}
    if draw(st.integers(0, 9)) == 0:
        envelope = draw(st.one_of(st.just({"message": "hi"}), values))
    ce_type = draw(st.one_of(st.just(PUBLISHED), st.just(PUBLISHED), st.text(max_size=20)))
    attrs = {"type": ce_type or "x", "source": "//pubsub", "id": draw(st.text(max_size=10)) or "1"}
    event = CloudEvent(attrs, envelope)
    del event["time"]
    return event


@EXAMPLES
@given(event=schedule_events(), inject=st.booleans())
def test_reset_entry_point_raises_only_injected_transient_errors(
    event: CloudEvent, inject: bool
) -> None:
    repo = FakeScheduleRepo(OUTAGE if inject else None)
    with captured_logs() as lines:
        try:
            summary = reset_entry.handle_schedule_event(event, 540, repo)
        except TransientError:
            assert inject, "a TransientError without an injected failure"
            return
    if summary is None:  # refused: recorded for a person and one ERROR line
        assert len(repo.rejections) == 1
        assert repo.audits == {}
        assert len(lines.errors()) == 1
        return
    assert summary.complete
    assert repo.rejections == {}
    assert list(repo.audits) == [summary.period]
