"""The running devstack functions host (local suite) and bodies functions-framework cannot parse.

A Firestore-trigger body nested 1,000 levels, posted as JSON to the function or delivered
through the relay as the Firestore emulator does (base64 text), is refused and acknowledged
(2xx, decision `refused-permanent-error`), no longer a 500; requests that are no CloudEvent
are answered 400 (see tests/unit/test_unparsed_requests.py for the apps themselves).
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from typing import Any

from functions.config.entry import REFUSED
from tests.unit.test_config_triggers import load

DEEP = b'{"a":' * 1000 + b"1" + b"}" * 1000


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 -- local http
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_host_refuses_deep_trigger_bodies_and_answers_400_to_non_cloud_events(
    local_suite: Any,
) -> None:
    suite = local_suite
    function = suite.function_url("on-customer-written") + "/"
    headers, _ = load("customer_create")
    headers["ce-id"] = "deep-e2e-1"
    mark = suite.mark()
    assert _post(function, DEEP, {**headers, "Content-Type": "application/json"}) == 200
    relay = f"{suite.host_url}/functions/projects/{suite.project}/triggers/on-customer-written"
    relayed = {**headers, "ce-id": "deep-e2e-2", "Content-Type": "application/octet-stream"}
    assert _post(relay, base64.b64encode(DEEP), relayed) == 200
    structured = {"Content-Type": "application/cloudevents+json"}
    assert _post(function, b"[" * 1000, structured) == 400
    assert _post(function, b"[1]", structured) == 400
    assert _post(function, b'{"x": 1}', {"Content-Type": "application/json"}) == 400
    ran = suite.invocations(since=mark, function="on-customer-written")
    refused = {i["event_id"]: i for i in ran if i["event_id"].startswith("deep-e2e-")}
    assert sorted(refused) == ["deep-e2e-1", "deep-e2e-2"]
    assert all(i["status"] == 200 and i["decision"] == REFUSED for i in refused.values())
    assert [i["status"] for i in ran if i["status"] >= 500] == []
