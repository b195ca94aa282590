"""Pub/Sub's delivery, played in-process for tests and benchmarks: a push request's body, and
a pool of workers that redelivers every message whose handler raised (at-least-once)."""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

M = TypeVar("M")
R = TypeVar("R")


def push_envelope(
    data: bytes,
    message_id: str,
    subscription: str,
    attributes: Mapping[str, str] | None = None,
    publish_time: str | None = None,
) -> dict[str, Any]:
    """The JSON body Pub/Sub push POSTs for one message (`publish_time` None: now)."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes or {}),
            "messageId": message_id,
            "publishTime": publish_time or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        "subscription": subscription,
    }


def push_body(
    data: bytes, message_id: str, subscription: str, attributes: Mapping[str, str] | None = None
) -> bytes:
    """`push_envelope` as the request's bytes."""
    return json.dumps(push_envelope(data, message_id, subscription, attributes)).encode()


def deliver_all(handle: Callable[[M], R], messages: list[M], workers: int) -> tuple[list[R], int]:
    """Deliver with `workers` threads; a delivery that raises is queued again (a redelivery),
    until each has been handled once without raising. Returns the results (in completion
    order) and how many deliveries raised."""
    todo: queue.Queue[M] = queue.Queue()
    for m in messages:
        todo.put(m)
    results: list[R] = []
    failures = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal failures
        while True:
            try:
                m = todo.get_nowait()
            except queue.Empty:
                return
            try:
                r = handle(m)
            except Exception:
                with lock:
                    failures += 1
                todo.put(m)
                continue
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, failures
