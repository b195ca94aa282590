"""Setting up the local suite on a loaded machine (no emulator: a slow local HTTP server)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from devstack import cli, runner, suite

SLOW_SECONDS = 6.0
"""Seen on a loaded 2-core machine: the Firestore emulator's first eventarcTrigger POST took
more than the 5 s the harness used to allow, and `make run` died with a TimeoutError."""


class _Slow(http.server.BaseHTTPRequestHandler):
    calls: list[str] = []  # noqa: RUF012 -- test double

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Slow.calls.append(self.path)
        time.sleep(SLOW_SECONDS)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_trigger_registration_waits_for_a_slow_emulator(slow_server: str) -> None:
    fake = SimpleNamespace(
        emulators=SimpleNamespace(firestore=SimpleNamespace(url=slow_server)), project="demo-x"
    )
    suite.register_trigger(fake, "on-customer-written", "customers/{customerId}")  # type: ignore[arg-type]
    assert _Slow.calls[-1].endswith("eventarcTriggerId=on-customer-written")


def test_run_reports_an_unreachable_part_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise TimeoutError("timed out")

    monkeypatch.setattr(runner, "start_local_suite", boom)
    assert cli.main(["run", "--project", "demo-blueprint"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "timed out" in err
    assert "Traceback" not in err
