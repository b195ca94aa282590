"""Build the recorded Firestore events of this folder by serializing real DocumentEventData.

Run `python tests/events/build_events.py` to regenerate. Each event is `<name>.body` (the HTTP
body exactly as Eventarc sends it: protobuf bytes, or JSON for `*_json`) and
`<name>.headers.json` (the binary-mode CloudEvent headers).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.events.cloud.firestore_v1.types import (
    ArrayValue,
    Document,
    DocumentEventData,
    DocumentMask,
    MapValue,
    Value,
)
from google.protobuf import json_format

HERE = Path(__file__).parent
PROJECT = "demo-blueprint-test"
DB = f"projects/{PROJECT}/databases/(default)/documents"

T_CREATED = datetime(2025, 1, 5, 9, 15, tzinfo=UTC)
T_OLD = datetime(2025, 1, 10, 16, 45, tzinfo=UTC)
T_WRITE = datetime(2025, 2, 1, 12, 0, 0, 123456, tzinfo=UTC)
T_STAMP = datetime(2025, 2, 1, 12, 0, 0, 140000, tzinfo=UTC)


def value(v: Any) -> Value:  # noqa: PLR0911 -- one return per Value kind
    """A Firestore Value from a plain Python value."""
    if v is None:
        return Value(null_value=0)
    if isinstance(v, bool):
        return Value(boolean_value=v)
    if isinstance(v, int):
        return Value(integer_value=v)
    if isinstance(v, float):
        return Value(double_value=v)
    if isinstance(v, str):
        return Value(string_value=v)
    if isinstance(v, datetime):
        return Value(timestamp_value=v)
    if isinstance(v, list):
        return Value(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, dict):
        return Value(map_value=MapValue(fields={k: value(x) for k, x in v.items()}))
    raise TypeError(type(v))


def doc(path: str, fields: dict[str, Any], created: datetime, updated: datetime) -> Document:
    """A Document message."""
    return Document(
        name=f"{DB}/{path}",
        fields={k: value(v) for k, v in fields.items()},
        create_time=created,
        update_time=updated,
    )


CUSTOMER = {
    "schema_version": 1,
    "bundle_tier": "pro",
    "organization_name": "AI Research Lab",
    "email": "contact@ailab.edu",
    "monthly_scene_quota": 100,
    "scenes_generated_this_month": 45,
    "support_tier": "priority",
    "contract_start": datetime(2025, 1, 1, tzinfo=UTC),
    "contract_end": datetime(2026, 1, 1, tzinfo=UTC),
    "feature_overrides": {"tactile_sensors": True},
}
STAMPED = {**CUSTOMER, "created_at": T_CREATED, "updated_at": T_OLD}
SCENE = {
    "schema_version": 1,
    "customer_id": "lab_001",
    "robot_type": "franka",
    "data_pack_tier": "plus",
    "min_quality_score": 0.85,
    "vla_models": ["openvla", "pi0"],
    "custom_settings": {"lighting_variation": "high"},
}


def headers(event_id: str, path: str, *, content_type: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers as Eventarc sends them."""
    return {
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-subject": f"documents/{path}",
        "ce-id": event_id,
        "ce-time": "2025-02-01T12:00:00.123456Z",
        "ce-document": path,
        "ce-project": PROJECT,
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "Content-Type": content_type,
    }


def events() -> dict[str, tuple[str, DocumentEventData]]:
    """name -> (document path, event data)."""
    c1 = "customers/lab_001"
    return {
        "customer_create": (c1, DocumentEventData(value=doc(c1, CUSTOMER, T_WRITE, T_WRITE))),
        "customer_create_with_created_at": (
            c1,
            DocumentEventData(
                value=doc(c1, {**CUSTOMER, "created_at": T_CREATED}, T_WRITE, T_WRITE)
            ),
        ),
        "customer_update": (
            c1,
            DocumentEventData(
                old_value=doc(c1, STAMPED, T_CREATED, T_OLD),
                value=doc(c1, {**STAMPED, "organization_name": "AI Lab 2"}, T_CREATED, T_WRITE),
            ),
        ),
        "customer_update_masked": (
            c1,
            DocumentEventData(
                old_value=doc(c1, STAMPED, T_CREATED, T_OLD),
                value=doc(c1, {**STAMPED, "email": "ops@ailab.edu"}, T_CREATED, T_WRITE),
                update_mask=DocumentMask(field_paths=["email"]),
            ),
        ),
        "customer_stamp_only": (
            c1,
            DocumentEventData(
                old_value=doc(c1, STAMPED, T_CREATED, T_WRITE),
                value=doc(c1, {**STAMPED, "updated_at": T_STAMP}, T_CREATED, T_STAMP),
            ),
        ),
        "customer_create_stamp_echo": (
            c1,
            DocumentEventData(
                old_value=doc(c1, CUSTOMER, T_WRITE, T_WRITE),
                value=doc(
                    c1, {**CUSTOMER, "created_at": T_STAMP, "updated_at": T_STAMP}, T_WRITE, T_STAMP
                ),
            ),
        ),
        "customer_stamp_only_masked": (
            c1,
            DocumentEventData(
                old_value=doc(c1, STAMPED, T_CREATED, T_WRITE),
                value=doc(c1, {**STAMPED, "updated_at": T_STAMP}, T_CREATED, T_STAMP),
                update_mask=DocumentMask(field_paths=["updated_at"]),
            ),
        ),
        "customer_identical_write": (
            c1,
            DocumentEventData(
                old_value=doc(c1, STAMPED, T_CREATED, T_OLD),
                value=doc(c1, STAMPED, T_CREATED, T_WRITE),
            ),
        ),
        "customer_delete": (c1, DocumentEventData(old_value=doc(c1, STAMPED, T_CREATED, T_OLD))),
        "customer_invalid": (
            c1,
            DocumentEventData(
                value=doc(
                    c1,
                    {**CUSTOMER, "bundle_tier": "platinum", "monthly_scene_quota": -5},
                    T_WRITE,
                    T_WRITE,
                )
            ),
        ),
        "empty": ("customers/ghost", DocumentEventData()),
        "scene_create_json": (
            "scenes/scene_kitchen_v2",
            DocumentEventData(value=doc("scenes/scene_kitchen_v2", SCENE, T_WRITE, T_WRITE)),
        ),
        "flags_global_update": (
            "feature_flags/_global",
            DocumentEventData(
                old_value=doc(
                    "feature_flags/_global",
                    {"schema_version": 1, "tactile": False, "created_at": T_CREATED},
                    T_CREATED,
                    T_OLD,
                ),
                value=doc(
                    "feature_flags/_global",
                    {
                        "schema_version": 1,
                        "tactile": False,
                        "streaming_export": False,
                        "created_at": T_CREATED,
                    },
                    T_CREATED,
                    T_WRITE,
                ),
            ),
        ),
    }


def main() -> None:
    """Write every event into this folder."""
    for i, (name, (path, data)) in enumerate(sorted(events().items()), start=1):
        pb = DocumentEventData.pb(data)
        if name.endswith("_json"):
            body = json.dumps(json_format.MessageToDict(pb), indent=1).encode()
            ctype = "application/json"
        else:
            body = pb.SerializeToString()
            ctype = "application/protobuf"
        if name == "empty":
            # What the emulator sends when a missing document is deleted (`GgA=` decoded):
            # an empty update mask, neither value nor old value.
            body = b"\x1a\x00"
        (HERE / f"{name}.body").write_bytes(body)
        hdrs = headers(f"evt-{i:04d}-{name}", path, content_type=ctype)
        (HERE / f"{name}.headers.json").write_text(json.dumps(hdrs, indent=1) + "\n")


if __name__ == "__main__":
    main()
