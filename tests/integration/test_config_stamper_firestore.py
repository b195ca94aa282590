"""The config trigger's rules with the real Firestore stamper (emulator, no triggers fired):
a user change raced by a counter write before its stamp, and the same event redelivered."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from google.cloud import firestore

from functions.config.adapters import FirestoreStamper
from functions.config.ports import ConfigKind, Decision
from functions.config.service import handle_config_write
from functions.edge.documents import Change


class Publisher:
    def __init__(self) -> None:
        self.count = 0

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        self.count += 1
        return str(self.count)


def _event(path: str, before: dict[str, Any] | None, after: dict[str, Any], written: Any) -> Any:
    return Change(
        event_id=f"evt-{uuid.uuid4().hex[:8]}",
        event_type="google.cloud.firestore.document.v1.written",
        source="//firestore.googleapis.com/projects/p/databases/(default)",
        time=written,
        document=path,
        before=before,
        after=after,
        update_mask=(),
        after_update_time=written,
    )


def test_user_change_raced_by_a_counter_write_is_still_stamped_once(
    emulators: Any, firestore_client: Any
) -> None:
    path = f"customers/race-{uuid.uuid4().hex[:10]}"
    ref = firestore_client.document(path)
    data = {"schema_version": 1, "bundle_tier": "pro", "organization_name": "Race Lab"}
    written = ref.set(data).update_time
    # The usage function counts a scene before the trigger's stamp lands.
    ref.update({"scenes_generated_this_month": firestore.Increment(1)})
    stamper, publisher = FirestoreStamper(firestore_client), Publisher()
    event = _event(path, None, data, written)

    outcome = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)

    assert outcome.decision is Decision.STAMPED
    stamped = ref.get()
    doc = stamped.to_dict()
    assert doc["created_at"] == doc["updated_at"]
    assert doc["updated_at"] >= written
    assert doc["scenes_generated_this_month"] == 1  # the counter write is kept
    assert publisher.count == 1

    # The same event redelivered: nothing more is written.
    again = handle_config_write(ConfigKind.CUSTOMER, event, stamper, publisher)
    assert again.decision is Decision.STALE
    assert ref.get().update_time == stamped.update_time
