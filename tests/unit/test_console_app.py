"""The console app without Firestore: read-only routes, the unreachable banner, bad input."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from ops.console.app import create_app
from shared.settings import load_settings

NOW = datetime(2026, 3, 15, tzinfo=UTC)
SETTINGS = load_settings(
    {"GOOGLE_CLOUD_PROJECT": "demo-console", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"}
)


class _DownRef:
    def get(self, **_: Any) -> Any:
        raise gexc.ServiceUnavailable("failed to connect to all addresses")


class _DownClient:
    """A client whose every read fails as an unreachable emulator's does."""

    def __init__(self) -> None:
        self.calls = 0

    def collection(self, _name: str) -> Any:
        self.calls += 1
        return self

    def document(self, _doc_id: str) -> _DownRef:
        return _DownRef()


def _app(client: Any) -> Any:
    return create_app(lambda: client, settings=SETTINGS, clock=lambda: NOW).test_client()


def test_every_route_is_read_only() -> None:
    app = create_app(_DownClient, settings=SETTINGS, clock=lambda: NOW)
    methods = {m for rule in app.url_map.iter_rules() for m in rule.methods or ()}
    assert methods <= {"GET", "HEAD", "OPTIONS"}
    refused = _app(_DownClient()).post("/")
    assert refused.status_code == 405
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert refused.mimetype == "text/html"


@pytest.mark.parametrize(
    "url", ["/", "/customers/lab_001", "/problems", "/months/2026-02", "/months/2026-02/export.csv"]
)
def test_firestore_unreachable_is_a_banner_and_503(url: str) -> None:
    answer = _app(_DownClient()).get(url)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503
    assert "Firestore is unreachable at 127.0.0.1:9: ServiceUnavailable" in page
    assert "Traceback" not in page


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/months/2026-13", "expected YYYY-MM"),
        ("/months/2026-04", "a future month has no usage yet"),
        ("/customers/c1?month=Jan", "expected YYYY-MM"),
        ("/months/2026-02%0A", "expected YYYY-MM"),
        ("/months/2026-02%0A/export.csv", "expected YYYY-MM"),
        ("/customers/c1?month=2026-02%0A", "expected YYYY-MM"),
        ("/month?month=2026-02%0A", "expected YYYY-MM"),
        ("/problems?since=yesterday", "expected a day"),
        ("/months/2026-02/export.xml", "csv or jsonl"),
        ("/customers/__reserved__", "customer id &#39;__reserved__&#39;"),
    ],
)
def test_bad_input_is_refused_before_any_read(url: str, says: str) -> None:
    client = _DownClient()
    answer = _app(client).get(url)
    assert answer.status_code in (400, 404)
    assert says in answer.get_data(as_text=True)
    assert client.calls == 0


def test_the_console_needs_only_the_runtime_dependencies() -> None:
    """Cloud Run installs requirements.txt alone: no typer, rich or matplotlib (the ops
    extra) and nothing of devstack may be imported on the way to a page."""
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('typer', 'rich', 'matplotlib', 'devstack'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import ops.console.app, ops.console.reads, ops.replay\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
