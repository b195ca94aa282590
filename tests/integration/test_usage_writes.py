"""Writes per document on the usage path, counted by the Firestore emulator's own triggers.

A dedicated emulator pair delivers one trigger event per write to a `WriteRecorder`
(tests/write_recorder.py). The usage function runs as deployed: its functions-framework app
(`functions/main.py`, `on_usage_event`), served Pub/Sub push envelopes by 8 threads, with the
settings of the deployed function (its customer cache): each event writes its record, once, and
nothing else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore

from devstack.delivery import push_body
from devstack.emulators import Emulators, start_emulators
from devstack.functions_host import MAIN_SOURCE
from functions.usage import entry
from shared import clients
from shared.settings import get_settings
from shared.times import month_of
from tests.usage_support import sum_records
from tests.write_recorder import WriteRecorder

PROJECT = "demo-usage-writes"
EVENTS = 1200
WORKERS = 8


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Emulators, WriteRecorder]]:
    recorder = WriteRecorder()
    pair = start_emulators(PROJECT, functions_emulator=recorder.address)
    try:
        recorder.register(pair.firestore.url, PROJECT)
        yield pair, recorder
    finally:
        pair.stop()
        recorder.close()


@pytest.fixture
def usage_app(
    recorded: tuple[Emulators, WriteRecorder], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The deployed function's functions-framework app, talking to the recorded emulator."""
    import functions_framework

    pair, _ = recorded
    for key, value in pair.env.items():
        monkeypatch.setenv(key, value)

    def forget() -> None:
        get_settings.cache_clear()
        entry.reset_default_service()
        clients.reset_clients()

    forget()
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        "on_usage_event", str(MAIN_SOURCE), "cloudevent"
    )
    try:
        yield app
    finally:
        forget()


def push_envelope(body: dict[str, Any], message_id: str) -> bytes:
    return push_body(
        json.dumps(body).encode(),
        message_id,
        f"projects/{PROJECT}/subscriptions/on-usage-event-push",
        {"customer_id": body["customer_id"]},
    )


def test_1200_events_of_one_customer_at_8_way_write_no_hot_document(
    recorded: tuple[Emulators, WriteRecorder], usage_app: Any
) -> None:
    _, recorder = recorded
    client = firestore.Client(project=PROJECT)
    settings = get_settings()
    client.collection(settings.customers_collection).document("hot").set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 100}
    )
    seeded = f"{settings.customers_collection}/hot"
    recorder.wait_for(seeded)  # the seed's own write is not part of the burst
    recorder.clear()
    now = datetime.now(UTC)
    bodies = [
        {
            "schema_version": 1,
            "event_id": f"burst-{n}",
            "customer_id": "hot",
            "scene_id": f"scene_{n % 7}",
            "action": "scene_generated",
            "timestamp": now.isoformat(),
            "episodes_generated": 3,
            "compute_minutes": 1.5,
        }
        for n in range(EVENTS)
    ]
    statuses: list[int] = []
    lock = threading.Lock()

    def work(chunk: list[tuple[int, dict[str, Any]]]) -> None:
        http = usage_app.test_client()
        for n, body in chunk:
            response = http.post(
                f"/projects/{PROJECT}/topics/usage-events",
                data=push_envelope(body, f"push-{n}"),
                content_type="application/json",
            )
            with lock:
                statuses.append(response.status_code)

    items = list(enumerate(bodies))
    threads = [threading.Thread(target=work, args=(items[i::WORKERS],)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == EVENTS, sorted(set(statuses))
    recorder.wait_quiet(quiet=2.0)

    writes = recorder.per_document()

    def under(collection: str) -> dict[str, int]:
        return {p: n for p, n in writes.items() if p.split("/")[0] == collection}

    assert under(settings.customers_collection) == {}
    assert under(settings.usage_counters_collection) == {}  # the fold's alone
    records = under(settings.usage_tracking_collection)
    assert len(records) == EVENTS
    assert set(records.values()) == {1}  # every record written exactly once
    assert sum(writes.values()) == EVENTS  # and nothing else: one write per event
    busiest, where = recorder.max_in_window(10.0)
    assert busiest == 1, (busiest, where)  # no document written twice, so none is hot
    totals = sum_records(client, "hot", month_of(now), settings.usage_tracking_collection)
    assert (totals.records, totals.scenes_generated) == (EVENTS, EVENTS)
    assert totals.episodes_generated == 3 * EVENTS
    print(
        json.dumps(
            {
                "events": EVENTS,
                "record_writes": sum(records.values()),
                "writes_per_event": round(sum(writes.values()) / EVENTS, 3),
                "busiest_document_10s": busiest,
            }
        )
    )
