"""Counting writes per document with the Firestore emulator's own trigger delivery.

`WriteRecorder` is a small HTTP server; `register(emulator_url, project)` registers wildcard
2nd-gen triggers (`{a}/{b}` and `{a}/{b}/{c}/{d}`) whose events the emulator POSTs to it (the
emulator must have been started with `--functions_emulator` = the recorder's address). Each
event is one write: (document path, ce-time) is recorded (emulators.md "Counting writes per
document").
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.emulators import http
from shared.times import parse_rfc3339

EMPTY_EVENT = "GgA="
"""Body of the event a delete of a missing document fires (neither value nor old value)."""


class WriteRecorder:
    """Records (document path, write time) per trigger event."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, datetime]] = []
        self._lock = threading.Lock()
        self.last_event = time.monotonic()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                document = self.headers.get("ce-document") or ""
                at = parse_rfc3339(self.headers.get("ce-time"), naive_is_utc=True)
                if document and at is not None and body.strip() != EMPTY_EVENT.encode():
                    with recorder._lock:
                        recorder.writes.append((document, at))
                        recorder.last_event = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """HOST:PORT for `--functions_emulator`."""
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def register(self, emulator_url: str, project: str) -> None:
        """Register the two wildcard triggers on the emulator."""
        for trigger_id, pattern in (("rec2", "{a}/{b}"), ("rec4", "{a}/{b}/{c}/{d}")):
            body = {
                "eventType": "google.cloud.firestore.document.v1.written",
                "database": "(default)",
                "namespace": "(default)",
                "document": {"value": pattern, "matchType": "PATH_PATTERN"},
            }
            url = (
                f"{emulator_url}/emulator/v1/projects/{project}/eventarcTrigger"
                f"?eventarcTriggerId={trigger_id}"
            )
            status, answer = http("POST", url, json.dumps(body).encode(), timeout=10)
            if status != 200:
                raise RuntimeError(f"trigger {trigger_id} not registered: {status} {answer!r}")

    def clear(self) -> None:
        with self._lock:
            self.writes.clear()

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 120.0) -> None:
        """Until no event arrived for `quiet` seconds (delivery is one at a time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_event >= quiet:
                return
            time.sleep(0.2)

    def wait_for(self, path: str, timeout: float = 30.0) -> None:
        """Until a write of `path` was recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path in self.per_document():
                return
            time.sleep(0.05)
        raise AssertionError(f"no write of {path} recorded within {timeout} s")

    def per_document(self) -> Counter[str]:
        with self._lock:
            return Counter(path for path, _ in self.writes)

    def max_in_window(self, seconds: float = 10.0) -> tuple[int, str | None]:
        """The most writes any one document took within any `seconds`-long window."""
        times: dict[str, list[float]] = defaultdict(list)
        with self._lock:
            for path, at in self.writes:
                times[path].append(at.timestamp())
        best, where = 0, None
        for path, stamps in times.items():
            stamps.sort()
            start = 0
            for end, t in enumerate(stamps):
                while t - stamps[start] >= seconds:
                    start += 1
                if end - start + 1 > best:
                    best, where = end - start + 1, path
        return best, where

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
