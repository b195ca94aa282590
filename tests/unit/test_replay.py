"""`ops.replay` without a server: the message rebuilt from a stored rejection, what cannot be
replayed and why, the known kinds, and the checks made before anything is read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.deadletter.ports import Source
from functions.deadletter.service import dead_letter_of, doc_id_of, document_of
from functions.edge.pubsub import Message
from functions.usage.intake import prepare
from functions.usage.ports import Limits, Rejection
from functions.usage.records import rejection_document
from ops import replay
from shared.errors import FieldError
from tests.usage_support import event_body, message

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as Firestore gives it back (`rejected_at` stamped)."""
    return {**doc, "rejected_at": NOW}


def test_a_rejection_rebuilds_the_message_it_was() -> None:
    original = message(event_body(), "m-42", origin="lab")
    doc = stored(rejection_document(original, Rejection("unknown_customer", ())))
    rebuilt = replay.message_of("msg_x", doc)
    assert isinstance(rebuilt, Message)
    assert (rebuilt.message_id, rebuilt.data, dict(rebuilt.attributes)) == (
        "m-42",
        original.data,
        {"origin": "lab"},
    )
    assert rebuilt.publish_time == original.publish_time
    assert rebuilt.problem is None
    assert prepare(rebuilt, NOW, Limits()) == prepare(original, NOW, Limits())


def test_a_body_that_is_not_utf8_comes_back_from_base64() -> None:
    original = message(b"\xff\xfe\x00garbage", "m-bin")
    doc = stored(rejection_document(original, Rejection("not_json", ())))
    assert doc["payload_encoding"] == "base64"
    rebuilt = replay.message_of("msg_x", doc)
    assert isinstance(rebuilt, Message)
    assert rebuilt.data == b"\xff\xfe\x00garbage"


def dead_doc(data: bytes, problem: FieldError | None = None) -> tuple[str, dict[str, Any]]:
    attributes = {
        "origin": "drill",
        "CloudPubSubDeadLetterSourceSubscription": "on-usage-event-push",
        "CloudPubSubDeadLetterSourceDeliveryCount": "10",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2025-01-15T11:59:00.123456Z",
    }
    letter = dead_letter_of(
        Message("dl-1", data, attributes, "2025-01-15T12:00:00Z", problem), Source.USAGE
    )
    return doc_id_of(letter), stored(document_of(letter))


def test_a_dead_letter_is_its_original_message_under_its_document_id() -> None:
    body = message(event_body()).data
    doc_id, doc = dead_doc(body)
    rebuilt = replay.message_of(doc_id, doc)
    assert isinstance(rebuilt, Message)
    assert rebuilt.message_id == doc_id  # Pub/Sub does not carry the original id
    assert rebuilt.data == body
    assert dict(rebuilt.attributes) == {"origin": "drill"}  # Pub/Sub's own are not the message's
    assert rebuilt.publish_time == datetime(2025, 1, 15, 11, 59, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"payload_truncated": True, "payload_bytes": 70_000}, "payload truncated"),
        ({"payload": None}, "no payload stored"),
        ({"payload_encoding": "latin-1"}, "payload_encoding='latin-1'"),
        ({"payload_encoding": "base64", "payload": "not base64!"}, "not base64"),
        ({"kind": "bad_envelope"}, "the unusable envelope"),
    ],
)
def test_what_cannot_be_replayed_says_why(change: dict[str, Any], why: str) -> None:
    doc = stored(rejection_document(message(event_body()), Rejection("invalid_event", ())))
    doc.update(change)
    answer = replay.message_of("msg_x", doc)
    assert isinstance(answer, str)
    assert why in answer


def test_a_dead_letter_of_an_unusable_envelope_is_not_replayed() -> None:
    doc_id, doc = dead_doc(b'{"message": 1}', FieldError("message", "1", "a Pub/Sub message"))
    answer = replay.message_of(doc_id, doc)
    assert isinstance(answer, str)
    assert "unusable envelope" in answer


def test_every_kind_the_functions_store_is_known() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [
            *(ROOT / "functions" / "usage").glob("*.py"),
            ROOT / "functions/deadletter/service.py",
        ]
    )
    stored_kinds = set(re.findall(r'Rejection\(\s*"([a-z_]+)"', source))
    stored_kinds |= set(re.findall(r'kind = "([a-z_]+)"', source))
    stored_kinds |= set(re.findall(r'DEAD_LETTER: Final = "([a-z_]+)"', source))
    assert len(stored_kinds) >= 10, stored_kinds
    assert stored_kinds == set(replay.KINDS)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"kind": "nope"}, "kind='nope'"),
        ({"customer_id": "a/b"}, "customer_id='a/b'"),
        ({"since": datetime(2025, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"before": datetime(2025, 1, 1)}, "before=datetime"),  # noqa: DTZ001
        (
            {"since": datetime(2025, 2, 1, tzinfo=UTC), "before": datetime(2025, 2, 1, tzinfo=UTC)},
            "expected a time after since=",
        ),
        ({"page_size": 0}, "page_size=0"),
        ({"page_size": 1001}, "page_size=1001"),
    ],
)
def test_bad_arguments_fail_before_anything_is_read(kwargs: dict[str, Any], says: str) -> None:
    class NoClient:
        def collection(self, name: str) -> Any:
            raise AssertionError("read before the arguments were checked")

    with pytest.raises(replay.ReplayError, match=re.escape(says)):
        list(replay.replay(NoClient(), **kwargs))


def test_counts_cover_every_outcome() -> None:
    counts = replay.ReplayCounts()
    counts.add(replay.ReplayItem("d1", replay.Outcome.RECORDED, "dead_letter", record_id="r"))
    counts.add(replay.ReplayItem("d2", replay.Outcome.SKIPPED, "dead_letter", reason="x"))
    assert counts.as_json() == {
        "recorded": 1,
        "still_rejected": 0,
        "duplicate": 0,
        "skipped": 1,
        "would_replay": 0,
    }
