"""Config-write triggers on recorded events (tests/events), with fake Firestore and Pub/Sub."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from cloudevents.http import from_http

from functions.config import entry as config_entry
from functions.config.ports import ConfigKind, Decision, Outcome, StampOutcome
from functions.config.service import changed_fields, handle_config_write
from functions.edge.documents import Change, ChangeKind, decode_document_event
from shared import logs
from shared.errors import InvalidDocumentError

EVENTS = Path(__file__).resolve().parents[1] / "events"
MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


class FakeStamper:
    def __init__(
        self,
        outcome: StampOutcome = StampOutcome.STAMPED,
        *,
        then: Sequence[StampOutcome] = (),
        current: tuple[dict[str, Any], datetime] | None = None,
    ) -> None:
        self.outcomes = [outcome, *then]
        self.calls: list[tuple[str, tuple[str, ...], datetime | None]] = []
        self.values: list[dict[str, datetime | None]] = []
        self.now = current
        self.reads = 0

    def stamp(
        self,
        document: str,
        fields: Mapping[str, datetime | None],
        last_update_time: datetime | None,
    ) -> StampOutcome:
        self.calls.append((document, tuple(fields), last_update_time))
        self.values.append(dict(fields))
        return self.outcomes[min(len(self.calls), len(self.outcomes)) - 1]

    def current(self, document: str) -> tuple[dict[str, Any], datetime] | None:
        self.reads += 1
        return self.now


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], str, dict[str, str]]] = []

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        self.messages.append((json.loads(data), ordering_key, dict(attributes)))
        return str(len(self.messages))


def load(name: str) -> tuple[dict[str, str], bytes]:
    headers = json.loads((EVENTS / f"{name}.headers.json").read_text())
    return headers, (EVENTS / f"{name}.body").read_bytes()


def decoded(name: str) -> Change:
    headers, body = load(name)
    # Exactly what functions-framework does with the request before calling the function.
    return decode_document_event(from_http(headers, body))


def run(
    name: str,
    kind: ConfigKind = ConfigKind.CUSTOMER,
    outcome: StampOutcome = StampOutcome.STAMPED,
) -> tuple[Outcome, FakeStamper, FakePublisher]:
    stamper, publisher = FakeStamper(outcome), FakePublisher()
    result = handle_config_write(kind, decoded(name), stamper, publisher)
    return result, stamper, publisher


def test_decode_create_gives_plain_values() -> None:
    event = decoded("customer_create")
    assert event.kind is ChangeKind.CREATE
    assert event.document == "customers/lab_001"
    assert event.collection == "customers"
    assert event.document_id == "lab_001"
    assert event.event_id.startswith("evt-")
    assert event.before is None
    assert event.after is not None
    assert event.after["bundle_tier"] == "pro"
    assert event.after["monthly_scene_quota"] == 100
    assert event.after["feature_overrides"] == {"tactile_sensors": True}
    assert event.after["contract_start"].isoformat() == "2025-01-01T00:00:00+00:00"
    assert event.after_update_time is not None
    assert event.after_update_time.isoformat() == "2025-02-01T12:00:00.123456+00:00"


def test_create_stamps_created_and_updated_and_publishes_one_message() -> None:
    result, stamper, publisher = run("customer_create")
    assert result.decision is Decision.STAMPED
    assert stamper.calls == [
        (
            "customers/lab_001",
            ("created_at", "updated_at"),
            decoded("customer_create").after_update_time,
        )
    ]
    assert len(publisher.messages) == 1
    body, key, attrs = publisher.messages[0]
    assert body == {
        "collection": "customers",
        "document_id": "lab_001",
        "customer_id": "lab_001",
        "change": "create",
        "valid": True,
        "errors": [],
        "event_id": decoded("customer_create").event_id,
        "update_time": "2025-02-01T12:00:00.123456Z",
    }
    assert key == "lab_001"
    assert attrs == {k: (json.dumps(v) if k == "errors" else str(v)) for k, v in body.items()} | {
        "valid": "true"
    }


def test_create_keeps_an_existing_created_at() -> None:
    result, stamper, _ = run("customer_create_with_created_at")
    assert result.decision is Decision.STAMPED
    assert [c[1] for c in stamper.calls] == [("updated_at",)]


@pytest.mark.parametrize("name", ["customer_update", "customer_update_masked"])
def test_user_visible_update_stamps_updated_at_only(name: str) -> None:
    result, stamper, publisher = run(name)
    assert result.decision is Decision.STAMPED
    assert [c[1] for c in stamper.calls] == [("updated_at",)]
    assert [m[0]["change"] for m in publisher.messages] == ["update"]


@pytest.mark.parametrize(
    "name", ["customer_stamp_only", "customer_stamp_only_masked", "customer_create_stamp_echo"]
)
def test_own_stamp_echo_writes_and_publishes_nothing(name: str) -> None:
    result, stamper, publisher = run(name)
    assert result.decision is Decision.IGNORED_ECHO
    assert stamper.calls == []
    assert publisher.messages == []


def test_identical_write_does_nothing() -> None:
    result, stamper, publisher = run("customer_identical_write")
    assert result.decision is Decision.IGNORED_NO_CHANGE
    assert (stamper.calls, publisher.messages) == ([], [])


def test_mask_is_trusted_when_present() -> None:
    event = decoded("customer_update_masked")
    assert changed_fields(event) == {"email"}
    assert changed_fields(decoded("customer_update")) == {"organization_name"}


def test_delete_publishes_without_writing() -> None:
    result, stamper, publisher = run("customer_delete")
    assert result.decision is Decision.DELETED
    assert stamper.calls == []
    body, key, attrs = publisher.messages[0]
    assert (body["change"], body["valid"], key, attrs["change"]) == (
        "delete",
        True,
        "lab_001",
        "delete",
    )
    assert body["update_time"] == "2025-02-01T12:00:00.123456Z"  # the event's time


def test_empty_event_is_ignored() -> None:
    event = decoded("empty")
    assert (event.before, event.after, event.kind) == (None, None, None)
    result, stamper, publisher = run("empty")
    assert result.decision is Decision.IGNORED_EMPTY
    assert (stamper.calls, publisher.messages) == ([], [])


def test_invalid_document_is_not_rewritten_logged_and_marked_invalid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logs.get_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger=logs.LOGGER_NAME):
            result, stamper, publisher = run("customer_invalid")
    finally:
        logger.removeHandler(caplog.handler)
    assert result.decision is Decision.INVALID
    assert stamper.calls == []
    body, _, attrs = publisher.messages[0]
    assert body["valid"] is False
    assert {e["field"] for e in body["errors"]} == {"bundle_tier", "monthly_scene_quota"}
    assert attrs["valid"] == "false"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "bundle_tier" in errors[0].getMessage()
    assert "platinum" in errors[0].getMessage()
    assert "-5" in errors[0].getMessage()


def test_json_body_scene_is_decoded_and_keyed_by_its_customer() -> None:
    headers, body = load("scene_create_json")
    assert headers["Content-Type"] == "application/json"
    assert body.lstrip().startswith(b"{")
    result, stamper, publisher = run("scene_create_json", ConfigKind.SCENE)
    assert result.decision is Decision.STAMPED
    assert stamper.calls[0][0] == "scenes/scene_kitchen_v2"
    assert publisher.messages[0][1] == "lab_001"
    assert publisher.messages[0][0]["customer_id"] == "lab_001"
    assert decoded("scene_create_json").after == decoded_scene_plain()


def decoded_scene_plain() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "customer_id": "lab_001",
        "robot_type": "franka",
        "data_pack_tier": "plus",
        "min_quality_score": 0.85,
        "vla_models": ["openvla", "pi0"],
        "custom_settings": {"lighting_variation": "high"},
    }


def test_global_flags_update_uses_doc_id_as_customer() -> None:
    result, _, publisher = run("flags_global_update", ConfigKind.FEATURE_FLAGS)
    assert result.decision is Decision.STAMPED
    assert publisher.messages[0][1] == "_global"


@pytest.mark.parametrize(
    ("outcome", "decision"),
    [(StampOutcome.GONE, Decision.GONE), (StampOutcome.STALE, Decision.STALE)],
)
def test_stamp_refused_still_publishes(outcome: StampOutcome, decision: Decision) -> None:
    event = decoded("customer_update")
    assert event.after is not None
    assert event.after_update_time is not None
    # Stale: the document has since been stamped by a newer event (or this one, redelivered).
    now = {**event.after, "updated_at": event.after_update_time}
    stamper = FakeStamper(outcome, current=(now, event.after_update_time))
    publisher = FakePublisher()
    result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert result.decision is decision
    assert result.stamped_fields == ()
    assert len(publisher.messages) == 1


def test_garbage_body_is_an_invalid_document_error() -> None:
    headers, _ = load("customer_create")
    with pytest.raises(InvalidDocumentError, match="DocumentEventData"):
        decode_document_event(from_http(headers, b"\xff\xfe not a protobuf"))


# --- the deployed entry points, through functions-framework's own request handling ----------


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeStamper, FakePublisher]:
    stamper, publisher = FakeStamper(), FakePublisher()
    monkeypatch.setattr(config_entry, "_STAMPER", stamper)
    monkeypatch.setattr(config_entry, "_PUBLISHER", publisher)
    return stamper, publisher


@pytest.mark.parametrize(
    ("target", "name", "stamps", "messages"),
    [
        ("on_customer_written", "customer_create", 1, 1),
        ("on_customer_written", "customer_stamp_only", 0, 0),
        ("on_customer_written", "customer_delete", 0, 1),
        ("on_customer_written", "empty", 0, 0),
        ("on_scene_written", "scene_create_json", 1, 1),
        ("on_feature_flags_written", "flags_global_update", 1, 1),
    ],
)
def test_entry_points_accept_binary_cloudevents(
    fakes: tuple[FakeStamper, FakePublisher], target: str, name: str, stamps: int, messages: int
) -> None:
    stamper, publisher = fakes
    client = functions_framework.create_app(target, str(MAIN), "cloudevent").test_client()
    headers, body = load(name)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (len(stamper.calls), len(publisher.messages)) == (stamps, messages)


def _customer_update(before: dict[str, Any], after: dict[str, Any], mask: tuple[str, ...] = ()):
    base = decoded("customer_update")
    return Change(
        event_id="evt-counters",
        event_type=base.event_type,
        source=base.source,
        time=base.time,
        document=base.document,
        before=before,
        after=after,
        update_mask=mask,
        before_update_time=base.before_update_time,
        after_update_time=base.after_update_time,
    )


@pytest.mark.parametrize("masked", [False, True])
def test_usage_counter_changes_are_not_config_changes(masked: bool) -> None:
    before = {
        "schema_version": 1,
        "bundle_tier": "pro",
        "scenes_generated_this_month": 4,
        "total_scenes_generated": 9,
        "quota_period": "2026-11",
    }
    after = {
        **before,
        "scenes_generated_this_month": 5,
        "total_scenes_generated": 10,
        "total_episodes_generated": 2,
    }
    mask = (
        ("scenes_generated_this_month", "total_scenes_generated", "total_episodes_generated")
        if masked
        else ()
    )
    stamper, publisher = FakeStamper(StampOutcome.STAMPED), FakePublisher()
    result = handle_config_write(
        ConfigKind.CUSTOMER, _customer_update(before, after, mask), stamper, publisher
    )
    assert result.decision is Decision.IGNORED_BOOKKEEPING
    assert (stamper.calls, publisher.messages) == ([], [])


def test_a_legacy_documents_first_fold_commit_is_not_a_config_change() -> None:
    # The fold's commit that records a legacy document's counter period (quota_period appears).
    before = {"schema_version": 1, "bundle_tier": "pro", "scenes_generated_this_month": 95}
    after = {
        **before,
        "scenes_generated_this_month": 96,
        "quota_period": "2026-10",
        "total_scenes_generated": 1,
    }
    stamper, publisher = FakeStamper(StampOutcome.STAMPED), FakePublisher()
    result = handle_config_write(
        ConfigKind.CUSTOMER, _customer_update(before, after), stamper, publisher
    )
    assert result.decision is Decision.IGNORED_BOOKKEEPING
    assert (stamper.calls, publisher.messages) == ([], [])


def test_a_quota_change_beside_counters_is_a_config_change() -> None:
    before = {"schema_version": 1, "bundle_tier": "pro", "scenes_generated_this_month": 4}
    after = {**before, "scenes_generated_this_month": 0, "monthly_scene_quota": 200}
    stamper, publisher = FakeStamper(StampOutcome.STAMPED), FakePublisher()
    result = handle_config_write(
        ConfigKind.CUSTOMER, _customer_update(before, after), stamper, publisher
    )
    assert result.decision is Decision.STAMPED
    assert len(publisher.messages) == 1


STAMPED_AT = datetime(2025, 3, 1, tzinfo=UTC)
STAMPED = {"schema_version": 1, "bundle_tier": "pro", "created_at": STAMPED_AT}
STAMPED["updated_at"] = STAMPED_AT


@pytest.mark.parametrize(
    ("changes", "value"),
    [
        ({"created_at": 12345}, "12345"),
        ({"created_at": {"a": 1}}, "{'a': 1}"),
        ({"updated_at": "yesterday"}, "'yesterday'"),
        ({"created_at": True, "updated_at": "yesterday"}, "'yesterday'"),
        ({"scenes_generated_this_month": "lots"}, "'lots'"),
        ({"quota_period": "March"}, "'March'"),
        ({"total_scenes_generated": -1, "quota_period": "2026-11"}, "-1"),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_an_invalid_value_in_a_stamp_or_counter_field_is_reported_not_ignored(
    caplog: pytest.LogCaptureFixture, changes: dict[str, Any], value: str, masked: bool
) -> None:
    """Only a person writes an invalid timestamp or counter: it is no echo of the stamp and no
    usage write. Like any invalid document: not rewritten, one ERROR line naming the field and
    value, the invalidation says `valid: false` (readers then distrust the field)."""
    after = {**STAMPED, **changes}
    event = _customer_update(STAMPED, after, tuple(changes) if masked else ())
    stamper, publisher = FakeStamper(), FakePublisher()
    logger = logs.get_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger=logs.LOGGER_NAME):
            result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    finally:
        logger.removeHandler(caplog.handler)
    assert result.decision is Decision.INVALID
    assert stamper.calls == []
    [(body, _, attrs)] = publisher.messages
    assert (body["valid"], attrs["valid"]) == (False, "false")
    invalid = {e["field"] for e in body["errors"]}
    assert invalid
    assert invalid <= set(changes)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert all(f"{name}=" in errors[0] for name in invalid)
    assert value in errors[0]


def test_repairing_an_invalid_stamp_field_is_a_config_change() -> None:
    """Readers distrust a field announced invalid until a message says the document is valid:
    the write that repairs it is announced (and stamped), though it changes only created_at."""
    broken = {**STAMPED, "created_at": 12345}
    stamper, publisher = FakeStamper(), FakePublisher()
    event = _customer_update(broken, STAMPED, ("created_at",))
    result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert result.decision is Decision.STAMPED
    assert [c[1] for c in stamper.calls] == [("updated_at",)]
    assert [m[0]["valid"] for m in publisher.messages] == [True]
    # Its own stamp then comes back as an echo: nothing more.
    echo = _customer_update(STAMPED, {**STAMPED, "updated_at": T3}, ("updated_at",))
    assert handle_config_write(ConfigKind.CUSTOMER, echo, stamper, publisher).decision is (
        Decision.IGNORED_ECHO
    )
    assert (len(stamper.calls), len(publisher.messages)) == (1, 1)


def test_a_counter_write_on_a_document_invalid_elsewhere_is_still_ignored() -> None:
    """The invalid field was reported when it was written; every usage write of that customer
    is not reported again."""
    before = {**STAMPED, "bundle_tier": "platinum", "scenes_generated_this_month": 4}
    after = {**before, "scenes_generated_this_month": 5}
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(
        ConfigKind.CUSTOMER, _customer_update(before, after), stamper, publisher
    )
    assert result.decision is Decision.IGNORED_BOOKKEEPING
    assert (stamper.calls, publisher.messages) == ([], [])


# --- review: bodies and values that once broke the decoder or the loop guard ----------------


def _protobuf_event_with_value_of_123_bytes() -> tuple[dict[str, str], bytes, str]:
    """A real DocumentEventData whose `value` serializes to 123 bytes: the body then starts
    with b"\\n{" (field 1, length 123), which a leading-whitespace strip turns into "{"."""
    from google.events.cloud.firestore_v1.types import Document, DocumentEventData, Value

    headers, _ = load("customer_create")
    for n in range(1, 100):
        doc_id = "c" * n
        value = Document(
            name=f"projects/p/databases/(default)/documents/customers/{doc_id}",
            fields={
                "schema_version": Value(integer_value=1),
                "bundle_tier": Value(string_value="pro"),
            },
        )
        body = DocumentEventData.serialize(DocumentEventData(value=value))
        if body[:2] == b"\n{":
            return headers, body, doc_id
    raise AssertionError("no size gives a 123-byte value")


def test_protobuf_body_whose_length_byte_is_a_brace_is_still_protobuf() -> None:
    headers, body, doc_id = _protobuf_event_with_value_of_123_bytes()
    event = decode_document_event(from_http(headers, body))
    assert event.kind is ChangeKind.CREATE
    assert event.document == f"customers/{doc_id}"
    assert event.after is not None
    assert event.after["bundle_tier"] == "pro"
    # Without a content type too (undeclared bytes are read as protobuf first).
    from functions.edge.documents import parse_document_event_data

    assert parse_document_event_data(body).value.name.endswith(f"/customers/{doc_id}")


def test_entry_point_accepts_a_protobuf_body_starting_with_newline_brace(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    stamper, publisher = fakes
    headers, body, _ = _protobuf_event_with_value_of_123_bytes()
    client = functions_framework.create_app("on_customer_written", str(MAIN), "cloudevent")
    response = client.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (len(stamper.calls), len(publisher.messages)) == (1, 1)


def _event(
    kind_doc: str, before: dict[str, Any], after: dict[str, Any], mask: tuple[str, ...] = ()
) -> Change:
    return dataclasses.replace(
        _customer_update(before, after, mask), document=kind_doc, event_id="evt-review"
    )


def test_nan_in_an_open_map_does_not_defeat_the_loop_guard() -> None:
    """The emulator sends no mask: NaN != NaN must not make the stamp's echo look like a user
    change (that re-stamps without end)."""
    scene = {
        "schema_version": 1,
        "customer_id": "lab_001",
        "custom_settings": {"gain": float("nan"), "curve": [1.0, float("nan")]},
        "created_at": decoded("customer_update").after_update_time,
    }
    echo = {**scene, "custom_settings": {"gain": float("nan"), "curve": [1.0, float("nan")]}}
    echo["updated_at"] = echo["created_at"]
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(
        ConfigKind.SCENE, _event("scenes/s1", scene, echo), stamper, publisher
    )
    assert result.decision is Decision.IGNORED_ECHO
    assert (stamper.calls, publisher.messages) == ([], [])


def test_a_type_change_is_a_change() -> None:
    """1 -> true (integer to boolean) is a user-visible change: here it makes the doc valid."""
    before = {"schema_version": 1, "tactile": 1}
    after = {"schema_version": 1, "tactile": True}
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(
        ConfigKind.FEATURE_FLAGS, _event("feature_flags/lab_001", before, after), stamper, publisher
    )
    assert result.decision is Decision.STAMPED
    assert [m[0]["valid"] for m in publisher.messages] == [True]


# --- review: a user overwrite that drops the timestamps; a stamp raced by a counter write ----

T1 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 1, 10, 0, 1, tzinfo=UTC)
T3 = datetime(2025, 3, 1, 10, 0, 2, tzinfo=UTC)
BASE = {"schema_version": 1, "bundle_tier": "pro", "organization_name": "Lab"}


def _update(before: dict[str, Any], after: dict[str, Any], written: datetime) -> Change:
    return dataclasses.replace(
        _customer_update(before, after), after_update_time=written, event_id="evt-race"
    )


@pytest.mark.parametrize("masked", [False, True])
def test_overwrite_without_timestamps_is_restamped_keeping_created_at(masked: bool) -> None:
    """set() of the same config without the timestamps is a user write, not the stamp's echo:
    the stamp never removes a field. created_at keeps its first value."""
    before = {**BASE, "created_at": T1, "updated_at": T2}
    event = _update(before, dict(BASE), T3)
    if masked:
        event = dataclasses.replace(event, update_mask=("created_at", "updated_at"))
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert result.decision is Decision.STAMPED
    assert stamper.values == [{"created_at": T1, "updated_at": None}]
    assert len(publisher.messages) == 1


def test_overwrite_dropping_created_at_with_a_change_keeps_the_first_created_at() -> None:
    before = {**BASE, "created_at": T1, "updated_at": T2}
    after = {**BASE, "organization_name": "Renamed"}
    stamper, publisher = FakeStamper(), FakePublisher()
    handle_config_write(ConfigKind.CUSTOMER, _update(before, after, T3), stamper, publisher)
    assert stamper.values == [{"created_at": T1, "updated_at": None}]


def test_a_create_with_a_null_created_at_gets_a_creation_time() -> None:
    created = dataclasses.replace(
        _customer_update(None, {**BASE, "created_at": None}),  # type: ignore[arg-type]
        before=None,
    )
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(ConfigKind.CUSTOMER, created, stamper, publisher)
    assert result.decision is Decision.STAMPED
    assert stamper.values == [{"created_at": None, "updated_at": None}]  # both server time
    assert len(publisher.messages) == 1


@pytest.mark.parametrize("masked", [False, True])
def test_nulling_created_at_is_restamped_with_its_first_value(masked: bool) -> None:
    """A null created_at is no creation time: like a removed one, it gets its earlier value."""
    before = {**BASE, "created_at": T1, "updated_at": T2}
    event = _update(before, {**before, "created_at": None}, T3)
    if masked:
        event = dataclasses.replace(event, update_mask=("created_at",))
    stamper, publisher = FakeStamper(), FakePublisher()
    result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert result.decision is Decision.STAMPED
    assert stamper.values == [{"created_at": T1, "updated_at": None}]
    assert len(publisher.messages) == 1


def test_an_update_of_a_document_with_a_null_created_at_stamps_it() -> None:
    before = {**BASE, "created_at": None, "updated_at": T1}
    after = {**before, "organization_name": "Renamed"}
    stamper = FakeStamper()
    handle_config_write(ConfigKind.CUSTOMER, _update(before, after, T2), stamper, FakePublisher())
    assert stamper.values == [{"created_at": None, "updated_at": None}]


def test_stale_stamp_raced_by_a_counter_write_is_retried_on_the_newer_version() -> None:
    """A user change at T2, then a usage counter write at T3 before the stamp: the counter
    write's own event is `ignored-counters`, so this event must still stamp the user change."""
    before = {**BASE, "created_at": T1, "updated_at": T1}
    after = {**before, "organization_name": "Renamed"}
    now = {**after, "scenes_generated_this_month": 3}
    stamper = FakeStamper(StampOutcome.STALE, then=[StampOutcome.STAMPED], current=(now, T3))
    publisher = FakePublisher()
    result = handle_config_write(
        ConfigKind.CUSTOMER, _update(before, after, T2), stamper, publisher
    )
    assert result.decision is Decision.STAMPED
    assert [c[2] for c in stamper.calls] == [T2, T3]
    assert stamper.values[1] == {"updated_at": None}
    assert len(publisher.messages) == 1


def test_stale_stamp_already_covered_by_a_newer_stamp_writes_nothing_more() -> None:
    """Redelivery after the stamp (or a newer user write already stamped): nothing to do."""
    before = {**BASE, "created_at": T1, "updated_at": T1}
    after = {**before, "organization_name": "Renamed"}
    now = {**after, "updated_at": T3}
    stamper = FakeStamper(StampOutcome.STALE, current=(now, T3))
    result = handle_config_write(
        ConfigKind.CUSTOMER, _update(before, after, T2), stamper, FakePublisher()
    )
    assert result.decision is Decision.STALE
    assert len(stamper.calls) == 1


def test_stale_stamp_never_stamps_a_newer_invalid_version() -> None:
    before = {**BASE, "created_at": T1, "updated_at": T1}
    after = {**before, "organization_name": "Renamed"}
    now = {**after, "bundle_tier": "platinum"}
    stamper = FakeStamper(StampOutcome.STALE, current=(now, T3))
    result = handle_config_write(
        ConfigKind.CUSTOMER, _update(before, after, T2), stamper, FakePublisher()
    )
    assert result.decision is Decision.STALE
    assert len(stamper.calls) == 1


def test_stale_stamp_of_a_deleted_document_is_gone() -> None:
    before = {**BASE, "created_at": T1, "updated_at": T1}
    after = {**before, "organization_name": "Renamed"}
    stamper = FakeStamper(StampOutcome.STALE, current=None)
    result = handle_config_write(
        ConfigKind.CUSTOMER, _update(before, after, T2), stamper, FakePublisher()
    )
    assert result.decision is Decision.GONE
    assert len(stamper.calls) == 1


def test_long_ids_still_fit_pubsub_limits() -> None:
    """Pub/Sub refuses attribute values and ordering keys over 1024 bytes; a retried publish
    would fail forever. A document id may have 1500 bytes; an invalid scene's customer_id any."""
    long_id = "é" * 700  # 1400 bytes: a valid document id
    scene = {"schema_version": 1, "customer_id": "ü" * 3000, "min_quality_score": 7}
    event = dataclasses.replace(
        _customer_update(None, scene), document=f"scenes/{long_id}", before=None
    )  # type: ignore[arg-type]
    publisher = FakePublisher()
    result = handle_config_write(ConfigKind.SCENE, event, FakeStamper(), publisher)
    assert result.decision is Decision.INVALID
    body, key, attrs = publisher.messages[0]
    assert body["document_id"] == long_id  # the body keeps everything
    assert body["customer_id"] == "ü" * 3000
    assert len(key.encode()) <= 1024
    assert all(len(v.encode()) <= 1024 for v in attrs.values()), {
        k: len(v.encode()) for k, v in attrs.items()
    }
    assert attrs["document_id"].startswith("é" * 500)


def test_many_field_errors_are_bounded_in_the_message_and_counted() -> None:
    """The shared Invalidation model carries at most MAX_ERRORS errors and counts the rest."""
    from shared.invalidation import MAX_ERRORS

    flags = {"schema_version": 1, **{f"flag_{i:02d}": "yes" for i in range(MAX_ERRORS + 5)}}
    event = dataclasses.replace(
        _customer_update(None, flags), document="feature_flags/lab_001", before=None
    )  # type: ignore[arg-type]
    publisher = FakePublisher()
    result = handle_config_write(ConfigKind.FEATURE_FLAGS, event, FakeStamper(), publisher)
    assert result.decision is Decision.INVALID
    assert len(result.errors) == MAX_ERRORS + 5  # the log line names them all
    body, _, attrs = publisher.messages[0]
    assert len(body["errors"]) == MAX_ERRORS
    assert body["errors_omitted"] == 5
    assert "errors_omitted" not in attrs  # attributes keep today's keys


def test_entry_point_acknowledges_a_body_that_is_no_document_event(
    fakes: tuple[FakeStamper, FakePublisher], caplog: pytest.LogCaptureFixture
) -> None:
    """A permanent error is acknowledged (2xx) and logged at ERROR naming the body; a 500 would
    have the platform redeliver the same garbage until the retry window ends."""
    stamper, publisher = fakes
    headers, _ = load("customer_create")
    client = functions_framework.create_app("on_customer_written", str(MAIN), "cloudevent")
    logger = logs.get_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger=logs.LOGGER_NAME):
            response = client.test_client().post(
                "/", headers=headers, data=b"\xff\xfe not a protobuf"
            )
    finally:
        logger.removeHandler(caplog.handler)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (stamper.calls, publisher.messages) == ([], [])
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "DocumentEventData" in errors[0]
    assert headers["ce-id"] in errors[0]


def _customer_create_body(mutate: Any) -> bytes:
    from google.events.cloud.firestore_v1.types import DocumentEventData

    message = DocumentEventData.pb()()
    message.value.name = "projects/p/databases/(default)/documents/customers/c1"
    message.value.fields["schema_version"].integer_value = 1
    message.value.fields["bundle_tier"].string_value = "pro"
    message.value.update_time.seconds = 1_735_689_600
    mutate(message)
    return bytes(message.SerializeToString())


def _post_logging_errors(
    caplog: pytest.LogCaptureFixture, headers: dict[str, str], body: bytes
) -> tuple[int, list[str]]:
    client = functions_framework.create_app("on_customer_written", str(MAIN), "cloudevent")
    logger = logs.get_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger=logs.LOGGER_NAME):
            response = client.test_client().post("/", headers=headers, data=body)
    finally:
        logger.removeHandler(caplog.handler)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    return response.status_code, errors


def _year_10000(message: Any) -> None:
    message.value.fields["contract_start"].timestamp_value.seconds = 253_402_300_800


def _nanos_of_a_whole_second(message: Any) -> None:
    message.value.fields["contract_start"].timestamp_value.nanos = 1_000_000_000


def _update_time_before_year_1(message: Any) -> None:
    message.value.update_time.seconds = -(10**12)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (_year_10000, "value.contract_start"),
        (_nanos_of_a_whole_second, "value.contract_start"),
        (_update_time_before_year_1, "value.update_time"),
    ],
)
def test_entry_point_acknowledges_a_timestamp_out_of_range(
    fakes: tuple[FakeStamper, FakePublisher],
    caplog: pytest.LogCaptureFixture,
    mutate: Any,
    named: str,
) -> None:
    """A timestamp protobuf allows but no datetime holds is an undecodable event: 2xx and one
    ERROR line naming the field, not a 500 redelivered for the whole retry window."""
    stamper, publisher = fakes
    headers, _ = load("customer_create")
    status, errors = _post_logging_errors(caplog, headers, _customer_create_body(mutate))
    assert status == 200
    assert (stamper.calls, publisher.messages) == ([], [])
    assert len(errors) == 1
    assert named in errors[0]
    assert "acknowledged" in errors[0]


@pytest.mark.parametrize("document", ["", "customers", "customers/c1/sub", "/c1", "customers/"])
def test_an_event_naming_no_document_of_the_collection_is_refused(document: str) -> None:
    """Firestore would refuse the stamp with ValueError (an odd path), which counts as transient:
    the event was redelivered for 24 h. No retry gives it a document: a permanent refusal."""
    event = dataclasses.replace(decoded("customer_update"), document=document)
    stamper, publisher = FakeStamper(), FakePublisher()
    with pytest.raises(InvalidDocumentError, match="document") as caught:
        handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher, "customers")
    [error] = caught.value.errors
    assert (error.field, error.value) == ("document", document or None)
    assert (stamper.calls, publisher.messages) == ([], [])


def test_a_document_of_another_collection_is_refused() -> None:
    event = dataclasses.replace(decoded("customer_update"), document="scenes/s1")
    stamper, publisher = FakeStamper(), FakePublisher()
    with pytest.raises(InvalidDocumentError, match="customers/"):
        handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher, "customers")
    assert (stamper.calls, publisher.messages) == ([], [])
    # Without a collection to compare with, any top-level document is one.
    result = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert result.decision is Decision.STAMPED


def _named(name: str) -> Any:
    def mutate(message: Any) -> None:
        message.value.name = name

    return mutate


@pytest.mark.parametrize(
    ("name", "subject", "named"),
    [
        ("", None, "document=None"),
        ("", "documents/customers", "'customers'"),
        ("projects/p/databases/(default)/documents/customers", None, "'customers'"),
        ("projects/p/databases/(default)/documents/customers/c1/sub", None, "customers/c1/sub"),
    ],
)
def test_entry_point_acknowledges_an_event_naming_no_customer_document(
    fakes: tuple[FakeStamper, FakePublisher],
    caplog: pytest.LogCaptureFixture,
    name: str,
    subject: str | None,
    named: str,
) -> None:
    stamper, publisher = fakes
    headers, _ = load("customer_create")
    headers = {k: v for k, v in headers.items() if k not in ("ce-subject", "ce-document")}
    if subject is not None:
        headers["ce-subject"] = subject
    status, errors = _post_logging_errors(caplog, headers, _customer_create_body(_named(name)))
    assert status == 200
    assert (stamper.calls, publisher.messages) == ([], [])
    assert len(errors) == 1
    assert named in errors[0]
    assert "acknowledged" in errors[0]


def test_entry_point_raises_for_a_transient_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pub/Sub down: the event must come again (the platform redelivers on a 500)."""
    from shared.errors import TransientError

    class DownPublisher(FakePublisher):
        def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
            raise TransientError("Pub/Sub: publishing to t: ServiceUnavailable")

    monkeypatch.setattr(config_entry, "_STAMPER", FakeStamper())
    monkeypatch.setattr(config_entry, "_PUBLISHER", DownPublisher())
    headers, body = load("customer_create")
    client = functions_framework.create_app("on_customer_written", str(MAIN), "cloudevent")
    response = client.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 500


def test_an_event_that_changes_nothing_logs_at_debug_and_a_stamp_at_info(
    fakes: tuple[FakeStamper, FakePublisher], caplog: pytest.LogCaptureFixture
) -> None:
    """One line per fold write of a customer (its own stamp's echo too) cost more than the
    write's share of logs: "nothing to do" is DEBUG, what changed something stays INFO."""
    client = functions_framework.create_app(
        "on_customer_written", str(MAIN), "cloudevent"
    ).test_client()
    logger = logs.get_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger=logs.LOGGER_NAME):
            for name in ("customer_stamp_only", "customer_create"):
                headers, body = load(name)
                assert client.post("/", headers=headers, data=body).status_code == 200
    finally:
        logger.removeHandler(caplog.handler)
    levels = {
        getattr(r, "fields", {}).get("decision"): r.levelno
        for r in caplog.records
        if getattr(r, "fields", {}).get("decision")
    }
    assert levels == {"ignored-own-stamp": logging.DEBUG, "stamped": logging.INFO}
