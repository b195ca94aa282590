"""End to end on the local suite: config documents at Firestore's limits through the
emulator's own triggers, and bad messages on the reset's schedule topic, each acknowledged (2xx)
and recorded where a person finds it (one ERROR line, the invalidation, `quota_resets/_rejected`).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devstack.suite import LocalSuite
from functions.reset.adapters import REJECTED_DOC, REJECTED_MESSAGES
from tests.limits_support import PUBLISHED, create_body, firestore_headers, job_body

SCENE_FN = "on-scene-written"
RESET_FN = "reset-monthly-quotas"
STAMP_FIELDS = {"created_at", "updated_at"}


def uid(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to a function of the host; the HTTP status."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 -- local http only
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def runs_for(suite: LocalSuite, mark: int, what: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """The invocations since `mark` matching `what`, once the host has been quiet for 1 s."""
    return [r for r in suite.wait_quiet(mark, quiet=1.0, timeout=60) if what(r)]


def error_lines(suite: LocalSuite, needle: str) -> list[dict[str, Any]]:
    """The functions host's ERROR log lines (JSON) mentioning `needle`."""
    out = []
    for line in suite.host.log_path.read_text(errors="replace").splitlines():
        if needle in line and line.startswith("{"):
            entry = json.loads(line)
            if entry.get("severity") == "ERROR":
                out.append(entry)
    return out


def invalidations_for(suite: LocalSuite, sub: str, doc_id: str) -> list[dict[str, Any]]:
    """Messages about doc_id on the subscription (waits up to 15 s for the first)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not got:
        for m in suite.pubsub.pull(sub, count=100, deadline=1.0):
            body = json.loads(m.data)
            if body["document_id"] == doc_id:
                got.append(body)
    return got


@pytest.fixture
def invalidations(local_suite: LocalSuite) -> str:
    return local_suite.subscribe(local_suite.settings.config_invalidations_topic)


def largest_accepted_blob(suite: LocalSuite, collection: str, doc_id: str) -> int:
    """The longest `custom_settings.blob` the emulator accepts in such a document (the stamp's
    two timestamps then push it past 1 MiB). Probed in a collection without a trigger whose
    name has the same length, so the document sizes are the same."""
    ref = suite.firestore.collection(collection).document(doc_id)
    low, high = 1_000_000, 1_048_576  # accepted / refused
    while high - low > 1:
        mid = (low + high) // 2
        try:
            ref.set(
                {
                    "schema_version": 1,
                    "customer_id": "lab_001",
                    "custom_settings": {"blob": "x" * mid},
                }
            )
            low = mid
        except Exception:  # InvalidArgument: too large
            high = mid
    ref.delete()
    return low


def test_a_scene_at_1_mib_is_acknowledged_logged_once_and_the_invalidation_says_so(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    sid = uid("e2e-1mib")
    blob = largest_accepted_blob(suite, "scenez", sid)
    assert blob < 1_048_576, "the emulator enforces Firestore's 1 MiB document limit"
    path = f"scenes/{sid}"
    mark = suite.mark()
    suite.firestore.document(path).set(
        {"schema_version": 1, "customer_id": "lab_001", "custom_settings": {"blob": "x" * blob}}
    )
    got = invalidations_for(suite, invalidations, sid)
    runs = runs_for(suite, mark, lambda r: r["document"] == path)
    assert [(r["decision"], r["status"]) for r in runs] == [("stamp-refused", 200)]
    assert not STAMP_FIELDS & set(suite.firestore.document(path).get().to_dict())
    [line] = error_lines(suite, path)
    assert "InvalidArgument" in line["message"]
    [body] = got
    assert body["valid"] is True
    assert body["notes"][0].startswith("stamp refused by Firestore: ")


def test_a_scene_with_120000_invalid_vla_models_fits_pubsub_and_one_bounded_log_line(
    local_suite: LocalSuite, invalidations: str
) -> None:
    suite = local_suite
    sid = uid("e2e-vla")
    path = f"scenes/{sid}"
    mark = suite.mark()
    suite.firestore.document(path).set(
        {"schema_version": 1, "customer_id": "lab_001", "vla_models": list(range(120_000))}
    )
    got = invalidations_for(suite, invalidations, sid)
    runs = runs_for(suite, mark, lambda r: r["document"] == path)
    assert [(r["decision"], r["status"]) for r in runs] == [("invalid-not-stamped", 200)]
    [body] = got
    assert body["valid"] is False
    assert len(body["errors"]) == 20
    assert body["errors_omitted"] == 120_000 - 20
    [line] = error_lines(suite, f"invalid document scenes/{sid}")
    assert len(json.dumps(line)) < 16 * 1024
    assert "(and 119980 more)" in line["message"]
    assert line["errors_omitted"] == 119_980


def test_twenty_levels_and_many_fields_are_decoded_and_stamped(local_suite: LocalSuite) -> None:
    suite = local_suite
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(19):  # 20 levels of maps: Firestore's own limit
        deep = {"n": deep}
    wide = {f"f{i:05d}": i for i in range(19_000)}
    paths = {f"scenes/{uid('e2e-deep')}": deep, f"scenes/{uid('e2e-wide')}": wide}
    mark = suite.mark()
    for path, settings in paths.items():
        suite.firestore.document(path).set(
            {"schema_version": 1, "customer_id": "lab_001", "custom_settings": settings}
        )
    runs = runs_for(suite, mark, lambda r: r["document"] in paths)
    for path in paths:
        mine = [(r["decision"], r["status"]) for r in runs if r["document"] == path]
        assert mine == [("stamped", 200), ("ignored-own-stamp", 200)], path


@pytest.mark.parametrize(
    ("body_of", "headers"),
    [
        (lambda path: b"\xff\xfe not a protobuf", {}),
        # (A JSON body nested ~1000 deep never reaches the function: functions-framework's own
        # CloudEvent parser fails first and answers 500. Eventarc sends protobuf; see
        # docs/config-triggers.md.)
        (lambda path: b'{"value": {"fields": 5}}', {"Content-Type": "application/json"}),
        (lambda path: create_body(path, {"schema_version": 1}), {"ce-type": PUBLISHED}),
    ],
    ids=["garbage", "json-not-a-document", "wrong-ce-type"],
)
def test_an_unusable_firestore_event_is_acknowledged_and_logged_not_processed(
    local_suite: LocalSuite, body_of: Callable[[str], bytes], headers: dict[str, str]
) -> None:
    suite = local_suite
    path = f"scenes/{uid('e2e-bad-event')}"
    event_id = uid("evt")
    mark = suite.mark()
    status = post(
        suite.function_url(SCENE_FN) + "/",
        body_of(path),
        firestore_headers(path, event_id, **headers),
    )
    assert status == 200
    runs = runs_for(suite, mark, lambda r: r["event_id"] == event_id)
    assert [r["decision"] for r in runs] == ["refused-permanent-error"]
    assert len(error_lines(suite, event_id)) == 1
    assert not suite.firestore.document(path).get().exists  # nothing written


# --- the reset's schedule topic -------------------------------------------------------------


def rejections(suite: LocalSuite) -> dict[str, dict[str, Any]]:
    coll = (
        suite.firestore.collection(suite.settings.quota_resets_collection)
        .document(REJECTED_DOC)
        .collection(REJECTED_MESSAGES)
    )
    return {s.id: s.to_dict() for s in coll.stream()}


def test_brackets_on_the_schedule_topic_are_recorded_and_acknowledged(
    local_suite: LocalSuite,
) -> None:
    suite = local_suite
    mark = suite.mark()
    message_id = suite.publish(suite.settings.quota_reset_schedule_topic, b"[" * 1000)
    runs = runs_for(suite, mark, lambda r: r["function"] == RESET_FN)
    assert [(r["decision"], r["status"]) for r in runs] == [("refused-schedule-message", 200)]
    [(doc_id, record)] = [
        (k, r) for k, r in rejections(suite).items() if r["message_id"] == message_id
    ]
    assert "expected a JSON object" in record["reason"]
    assert record["data_bytes"] == 1000
    assert len(error_lines(suite, f"_rejected/messages/{doc_id}")) == 1


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"data": {"job": "monthly-quota-reset"}}, "message.data"),
        (
            {
                "data": base64.b64encode(job_body()).decode(),
                "publishTime": "0001-01-01T00:00:00Z",
            },
            "publishTime",
        ),
    ],
    ids=["data-object", "year-1"],
)
def test_a_malformed_push_to_the_reset_is_recorded_and_acknowledged(
    local_suite: LocalSuite, message: dict[str, Any], reason: str
) -> None:
    suite = local_suite
    message_id = uid("push")
    envelope = {
        "message": {"messageId": message_id, **message},
        "subscription": f"projects/{suite.project}/subscriptions/x",
    }
    mark = suite.mark()
    status = post(
        suite.function_url(RESET_FN) + "/",
        json.dumps(envelope).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200
    runs = runs_for(suite, mark, lambda r: r["function"] == RESET_FN)
    assert [r["decision"] for r in runs] == ["refused-schedule-message"]
    [record] = [r for r in rejections(suite).values() if r["message_id"] == message_id]
    assert reason in record["reason"]
