"""The config read path's shape and its adapters' error handling, with fake Google clients."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared import logs
from shared.config.adapters import MAX_REOPEN_DELAY, FirestoreConfigReader, PubSubInvalidationFeed
from shared.config.service import CustomerConfigService
from shared.errors import PermanentError, TransientError
from shared.models import BundleTier
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "config"
SETTINGS = load_settings({})


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_adapters_and_service_meet_only_at_the_ports() -> None:
    """Nobody imports the service (or its facade) to get a type: that is how the circle began."""
    for path in sorted(PACKAGE.glob("*.py")):
        imported = _imports(path)
        assert "shared.config_service" not in imported, path.name
        assert "shared.config_adapters" not in imported, path.name
        if path.name != "service.py":
            assert "shared.config.service" not in imported, path.name
    adapters = _imports(PACKAGE / "adapters.py")
    assert "shared.config.ports" in adapters
    assert not any(m.startswith("shared.config.") and m != "shared.config.ports" for m in adapters)


def test_import_stays_cheap_and_one_way() -> None:
    probe = (
        "import json, sys\n"
        "import shared.config_service\n"
        "heavy = ('google.cloud.firestore', 'google.cloud.pubsub', 'grpc', 'shared.config.adapters')\n"
        "after_service = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "import shared.config.adapters\n"
        "print(json.dumps(after_service))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


class FakeRef:
    def __init__(self, collection: str, doc_id: str) -> None:
        self.parent = type("Parent", (), {"id": collection})()
        self.id = doc_id


class FakeFirestore:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def collection(self, name: str) -> Any:
        class Collection:
            def document(self, doc_id: str) -> FakeRef:
                return FakeRef(name, doc_id)

        return Collection()

    def get_all(self, refs: list[FakeRef], **kwargs: Any) -> Iterator[Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        for ref in refs:
            yield type("Snap", (), {"reference": ref, "exists": False})()


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (gexc.ServiceUnavailable("down"), TransientError),
        (gexc.DeadlineExceeded("slow"), TransientError),
        (gexc.RetryError("gave up", cause=None), TransientError),
        (ConnectionResetError("reset"), TransientError),
        (gexc.PermissionDenied("no"), PermanentError),
        (gexc.NotFound("no database"), PermanentError),
    ],
)
def test_reader_classifies_failures_once(error: BaseException, outcome: type[Exception]) -> None:
    reader = FirestoreConfigReader(SETTINGS, client=FakeFirestore(error))
    with pytest.raises(outcome, match="Firestore read of 1 documents"):
        reader.get_documents([("customers", "c1")], timeout=0.5)


def test_reader_reads_in_one_call_with_a_deadline_and_no_retries() -> None:
    client = FakeFirestore()
    reader = FirestoreConfigReader(SETTINGS, client=client)
    got = reader.get_documents([("customers", "c1"), ("feature_flags", "c1")], timeout=0.5)
    assert client.calls == [{"retry": None, "timeout": 0.5}]
    assert {k: v.data for k, v in got.items()} == {
        ("customers", "c1"): None,
        ("feature_flags", "c1"): None,
    }


@pytest.fixture
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logs.get_logger()
    handler = Keep()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_permanent_refusal_is_served_stale_and_said_so(
    captured_logs: list[logging.LogRecord],
) -> None:
    reader = FirestoreConfigReader(SETTINGS, client=FakeFirestore(gexc.PermissionDenied("no")))
    service = CustomerConfigService(reader, live=False, settings=SETTINGS)
    config = service.get_customer_config("c1")
    assert config.stale
    assert config.tier is BundleTier.STANDARD
    warnings = [r.getMessage() for r in captured_logs if "Firestore refused" in r.getMessage()]
    assert len(warnings) == 1
    assert "PermissionDenied" in warnings[0]


class FakeSubscriber:
    def __init__(self, create_error: BaseException | None = None) -> None:
        self.create_error = create_error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_subscription(self, **kwargs: Any) -> None:
        self.calls.append(("create", kwargs))
        if self.create_error is not None:
            raise self.create_error

    def delete_subscription(self, **kwargs: Any) -> None:
        self.calls.append(("delete", kwargs))

    def close(self) -> None:
        self.calls.append(("close", {}))


def _feed(subscriber: FakeSubscriber, monkeypatch: pytest.MonkeyPatch) -> PubSubInvalidationFeed:
    feed = PubSubInvalidationFeed(SETTINGS, subscriber=subscriber)
    monkeypatch.setattr(feed, "_open", lambda: None)  # the stream itself needs a real Pub/Sub
    return feed


def test_feed_start_takes_an_existing_subscription_as_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscriber = FakeSubscriber(gexc.AlreadyExists("there"))
    feed = _feed(subscriber, monkeypatch)
    feed.start(lambda _m: None, lambda _w: None)
    (kind, kwargs), *_ = subscriber.calls
    assert kind == "create"
    assert kwargs["timeout"] == 30


def test_feed_start_raises_a_refusal_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = _feed(FakeSubscriber(gexc.PermissionDenied("no")), monkeypatch)
    with pytest.raises(PermanentError, match="creating subscription"):
        feed.start(lambda _m: None, lambda _w: None)


def test_feed_close_deletes_its_subscription_and_leaves_the_shared_client_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscriber = FakeSubscriber()
    feed = _feed(subscriber, monkeypatch)
    feed.start(lambda _m: None, lambda _w: None)
    feed.close()
    kinds = [kind for kind, _ in subscriber.calls]
    assert kinds == ["create", "delete"]
    assert subscriber.calls[1][1]["timeout"] == 10


def test_reopen_backs_off_to_a_bound(
    monkeypatch: pytest.MonkeyPatch, captured_logs: list[logging.LogRecord]
) -> None:
    feed = _feed(FakeSubscriber(gexc.NotFound("topic gone")), monkeypatch)
    feed.subscription = "projects/p/subscriptions/s"
    waits: list[float] = []
    monkeypatch.setattr(feed, "_reopen_later", waits.append)
    delay = 1.0
    for _ in range(8):
        feed._reopen(delay)
        delay = waits[-1]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert MAX_REOPEN_DELAY == 60.0
    assert "a retry may not help" in captured_logs[0].getMessage()


def test_a_reopened_stream_drops_what_was_cached_while_none_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A change published while the subscription was gone reaches no one: values read in that
    # gap must not be served for a whole TTL.
    feed = _feed(FakeSubscriber(), monkeypatch)
    resets: list[str] = []
    feed.start(lambda _m: None, resets.append)
    feed._reopen(1.0)
    assert resets == ["stream reopened"]
