"""`blueprint usage send` and `blueprint watch` with fake Pub/Sub and Firestore clients."""

from __future__ import annotations

import io
import json
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from ops.cli import main, usage_send
from ops.cli import watch as watch_cli
from ops.watch import Item, RejectionPoll
from shared.settings import load_settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


class FakePublisher:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.fail = fail

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        future: Future[str] = Future()
        if self.fail is not None:
            future.set_exception(self.fail)
            return future
        self.sent.append((topic, json.loads(data), attributes))
        future.set_result(f"m-{len(self.sent)}")
        return future


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
    fake = FakePublisher()
    monkeypatch.setattr(usage_send, "publisher_factory", lambda: fake)
    return fake


SEND = ["usage", "send", "--customer", "lab_001", "--action", "scene_generated"]


def test_send_publishes_the_event_and_prints_message_and_event_ids(
    publisher: FakePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*SEND, "--episodes", "5", "--minutes", "1.5", "--gb", "0.25"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    [(topic, body, attributes)] = publisher.sent
    assert topic.endswith("/topics/usage-events")
    assert body["customer_id"] == "lab_001"
    assert body["scene_id"] == usage_send.DEFAULT_SCENE
    assert (body["episodes_generated"], body["compute_minutes"], body["storage_gb"]) == (
        5,
        1.5,
        0.25,
    )
    # A generated idempotency key, printed so the record can be found.
    assert body["event_id"].startswith("cli-")
    assert attributes["event_id"] == body["event_id"]
    sent_at = datetime.fromisoformat(body["timestamp"])
    assert abs(sent_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert "message_id: m-1" in out
    assert f"event_id: {body['event_id']}" in out
    assert "blueprint inspect usage --customer lab_001 --month " in out
    # Sending cannot know whether the event will be refused: where to look if it was.
    assert "or, if it was refused: blueprint inspect rejections --customer lab_001" in out


def test_send_json_and_given_values(
    publisher: FakePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        *SEND,
        "--scene",
        "s1",
        "--event-id",
        "job-7",
        "--timestamp",
        "2026-11-02T10:00:00+01:00",
    ]
    code, out, _ = run([*argv, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result == {
        "message_id": "m-1",
        "event_id": "job-7",
        "customer_id": "lab_001",
        "scene_id": "s1",
        "action": "scene_generated",
        "timestamp": "2026-11-02T09:00:00Z",
    }


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--episodes", "-1"], "--episodes -1: expected a whole number from 0 to 1000000000000"),
        (["--episodes", "2.5"], "--episodes '2.5': expected a whole number"),
        (["--episodes", str(10**13)], "expected a whole number from 0 to 1000000000000"),
        (["--minutes", "-0.5"], "--minutes -0.5: expected a finite number >= 0"),
        (["--gb", "inf"], "--gb 'inf': expected a finite number >= 0"),
        (["--gb", "lots"], "--gb 'lots': expected a finite number >= 0"),
        # Python's int() and float() also take these; the event must carry what was typed.
        (["--episodes", "1_000"], "--episodes '1_000': expected a whole number"),
        (["--episodes", "\u0663"], "--episodes"),
        (["--episodes", " 7\n"], "--episodes"),
        (["--minutes", "1_0"], "--minutes '1_0': expected a finite number >= 0"),
        (["--gb", "\u0663.5"], "--gb"),
        (["--gb", "nan"], "--gb 'nan': expected a finite number >= 0"),
        (["--timestamp", "yesterday"], "--timestamp 'yesterday': expected RFC 3339"),
        (["--timestamp", "2026-11-02T10:00:00"], "expected RFC 3339 with an offset"),
        (["--event-id", "x" * 257], "--event-id 'xxx"),
        (["--scene", "a/b"], "--scene"),
    ],
)
def test_send_bad_values_are_one_line_naming_the_option(
    publisher: FakePublisher, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    code, out, err = run([*SEND, *extra], capsys)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert says in err
    # pydantic's own wording stays out of the CLI's messages.
    assert "Input should" not in err
    assert "validation error" not in err
    assert publisher.sent == []


def test_send_bad_action_says_what_an_action_looks_like(
    publisher: FakePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["usage", "send", "--customer", "c1", "--action", "Scene Generated"]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "usage send: --action 'Scene Generated': expected an action name like" in err


def test_send_with_pubsub_down_is_exit_1_with_the_publishers_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = FakePublisher(fail=gexc.ServiceUnavailable("connection refused"))
    monkeypatch.setattr(usage_send, "publisher_factory", lambda: down)
    code, out, err = run(SEND, capsys)
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("blueprint: error: usage send: usage event not published to topic")
    assert "ServiceUnavailable" in line


# ---- watch -------------------------------------------------------------------------------------


def _message(n: int, data: dict[str, Any]) -> Any:
    message = SimpleNamespace(
        data=json.dumps(data).encode(),
        message_id=str(n),
        publish_time=datetime(2026, 12, 1, 10, 0, n, tzinfo=UTC),
        attributes={"customer_id": "lab_001"},
    )
    return SimpleNamespace(ack_id=f"ack-{n}", message=message)


ALERT = {
    "alert_id": "lab_001_2026-12_80",
    "customer_id": "lab_001",
    "month": "2026-12",
    "threshold_percent": 80,
    "scenes_generated": 80,
    "monthly_scene_quota": 100,
}


class FakeSubscriber:
    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.acked: list[str] = []

    def create_subscription(self, request: dict[str, Any], **_: Any) -> None:
        self.created.append(request)

    def delete_subscription(self, request: dict[str, Any], **_: Any) -> None:
        self.deleted.append(request["subscription"])

    def pull(self, request: dict[str, Any], **_: Any) -> Any:
        batch = self.batches.pop(0) if self.batches else gexc.DeadlineExceeded("quiet")
        if isinstance(batch, BaseException):
            raise batch
        return SimpleNamespace(received_messages=batch)

    def acknowledge(self, request: dict[str, Any], **_: Any) -> None:
        self.acked.extend(request["ack_ids"])


def _subscriber(monkeypatch: pytest.MonkeyPatch, batches: list[Any]) -> FakeSubscriber:
    fake = FakeSubscriber(batches)
    monkeypatch.setattr(watch_cli, "subscriber_factory", lambda: fake)
    monkeypatch.setattr(watch_cli, "POLL_SECONDS", 0.05)
    return fake


def test_watch_alerts_prints_each_message_and_deletes_its_subscription(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _subscriber(monkeypatch, [[_message(1, ALERT)], [_message(2, {**ALERT, "month": "x"})]])
    code, out, err = run(["watch", "alerts", "--for", "0.5"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        "2026-12-01T10:00:01Z  alert         lab_001 2026-12: 80 % of the monthly scene quota "
        "(80/100 scenes)"
    )
    assert len(lines) == 2
    [created] = fake.created
    assert created["topic"].endswith("/topics/quota-alerts")
    assert created["name"].split("/")[-1].startswith("blueprint-watch-alert-")
    assert created["expiration_policy"] == {"ttl": {"seconds": 86_400}}
    assert fake.deleted == [created["name"]]
    assert fake.acked == ["ack-1", "ack-2"]
    assert "listening on topic quota-alerts" in err


def test_watch_invalidations_json_is_one_object_per_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "collection": "customers",
        "document_id": "lab_001",
        "customer_id": "lab_001",
        "change": "updated",
        "valid": False,
        "errors": [{"field": "bundle_tier", "value": "'gold'", "expected": "a tier"}],
    }
    fake = _subscriber(monkeypatch, [[_message(3, body)]])
    code, out, _ = run(["watch", "invalidations", "--for", "0.3", "--json"], capsys)
    assert code == 0
    [line] = out.splitlines()
    item = json.loads(line)
    assert item["kind"] == "invalidation"
    assert item["id"] == "3"
    assert item["at"] == "2026-12-01T10:00:03Z"
    assert item["data"] == body
    assert fake.created[0]["topic"].endswith("/topics/config-invalidations")
    text = Item("invalidation", "3", None, body).line()
    assert text.endswith("customers/lab_001 updated INVALID: bundle_tier")


def test_watch_ctrl_c_deletes_the_subscription(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _subscriber(monkeypatch, [[_message(1, ALERT)], KeyboardInterrupt()])
    code, out, err = run(["watch", "alerts"], capsys)
    assert code == 130
    assert len(out.splitlines()) == 1  # what arrived before Ctrl-C was printed
    assert fake.deleted == [fake.created[0]["name"]]
    assert err.splitlines()[-1] == "blueprint: interrupted"


def test_watch_missing_topic_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _subscriber(monkeypatch, [])

    def missing(request: dict[str, Any], **_: Any) -> None:
        raise gexc.NotFound("Topic not found")

    monkeypatch.setattr(fake, "create_subscription", missing)
    code, _, err = run(["watch", "alerts", "--for", "1"], capsys)
    assert code == 1
    [line] = err.splitlines()
    assert "watch alerts: no topic 'quota-alerts'" in line
    assert "make run" in line


def test_watch_unknown_kind_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["watch", "everything"], capsys)
    assert code == 2
    assert "expected one of alerts, invalidations, rejections" in err


class FakeQuery:
    def __init__(self, docs: list[tuple[str, dict[str, Any]]]) -> None:
        self.docs = docs

    def stream(self, timeout: float) -> list[Any]:
        return [SimpleNamespace(id=i, to_dict=lambda d=d: d) for i, d in self.docs]


def test_rejection_poll_returns_each_new_document_once_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    store: list[tuple[str, dict[str, Any]]] = []
    asked: list[datetime] = []

    def page(client: Any, *, since: datetime, limit: int, settings: Any) -> FakeQuery:
        asked.append(since)
        # newest first, as the real query orders them
        newest = sorted(store, key=lambda d: (d[1]["rejected_at"], d[0]), reverse=True)
        return FakeQuery([d for d in newest if d[1]["rejected_at"] >= since][:limit])

    monkeypatch.setattr("shared.queries.rejections_page", page)
    poll = RejectionPoll(object(), t0, load_settings({}))
    assert poll.poll() == []

    def reject(doc_id: str, seconds: int) -> None:
        at = t0 + timedelta(seconds=seconds)
        store.append((doc_id, {"kind": "invalid_event", "reason": "bad", "rejected_at": at}))

    reject("b", 2)
    reject("a", 1)
    assert [i.id for i in poll.poll()] == ["a", "b"]
    reject("c", 2)  # stored at the same instant as b: still new
    reject("d", 3)
    assert [i.id for i in poll.poll()] == ["c", "d"]
    assert poll.poll() == []
    assert asked[-1] == t0 + timedelta(seconds=3)
    # A rejection's line names its kind, customer and reason.
    text = Item("rejection", "a", t0, {"kind": "unknown_customer", "reason": "no such"}).line()
    assert text == "2026-12-01T10:00:00Z  rejection     unknown_customer customer -: no such"


def test_watch_with_pubsub_unreachable_is_one_line_saying_what_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _subscriber(monkeypatch, [])

    def down(request: dict[str, Any], **_: Any) -> None:
        raise gexc.ServiceUnavailable("connection refused")

    monkeypatch.setattr(fake, "create_subscription", down)
    code, out, err = run(["watch", "invalidations", "--for", "1"], capsys)
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert "watch invalidations: " in line
    assert "is not reachable (ServiceUnavailable)" in line
    assert "make emulators" in line
