"""The relay turns the Firestore emulator's delivery into what Eventarc sends in production."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from werkzeug.wrappers import Response

from devstack.functions_host import Relay, fix_source

EVENTS = Path(__file__).resolve().parents[1] / "events"


def emulator_delivery() -> tuple[dict[str, str], bytes, bytes]:
    headers = json.loads((EVENTS / "customer_create.headers.json").read_text())
    headers["ce-source"] = "//firestore.googleapis.com/projects/projects/demo-x/databases/(default)"
    headers["Content-Type"] = "application/protobuf"
    headers["Host"] = "127.0.0.1:1"
    body = (EVENTS / "customer_create.body").read_bytes()
    return headers, body, base64.b64encode(body)


def test_fix_source_removes_the_doubled_projects() -> None:
    assert (
        fix_source("//firestore.googleapis.com/projects/projects/p1/databases/(default)", "p1")
        == "//firestore.googleapis.com/projects/p1/databases/(default)"
    )
    assert fix_source("", "p1") == "//firestore.googleapis.com/projects/p1/databases/(default)"


def test_relay_decodes_base64_and_targets_the_function() -> None:
    relay = Relay("http://127.0.0.1:9/", {"on-customer-written"})
    headers, body, b64 = emulator_delivery()
    out = relay.translate("/functions/projects/demo-x/triggers/on-customer-written", headers, b64)
    assert not isinstance(out, Response)
    url, fwd, payload = out
    assert url == "http://127.0.0.1:9/on-customer-written/"
    assert payload == body
    assert fwd["ce-source"] == "//firestore.googleapis.com/projects/demo-x/databases/(default)"
    assert fwd["content-type"] == "application/protobuf"
    assert fwd["ce-id"] == headers["ce-id"]
    assert "host" not in fwd


def test_relay_refuses_unknown_triggers_and_paths() -> None:
    relay = Relay("http://127.0.0.1:9", {"on-customer-written"})
    headers, _, b64 = emulator_delivery()
    unknown = relay.translate("/functions/projects/p/triggers/nope", headers, b64)
    bad = relay.translate("/functions/projects/p/other", headers, b64)
    assert isinstance(unknown, Response)
    assert unknown.status_code == 404
    assert isinstance(bad, Response)
    assert bad.status_code == 404
