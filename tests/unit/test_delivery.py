"""devstack.delivery: the in-process play of Pub/Sub's at-least-once push."""

from __future__ import annotations

import base64
import json
import threading

from devstack.delivery import deliver_all, push_body
from functions.edge.pubsub import decode_envelope


def test_a_delivery_that_raises_is_redelivered_until_it_is_handled() -> None:
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    def handle(n: int) -> int:
        with lock:
            attempts[n] = attempts.get(n, 0) + 1
            tries = attempts[n]
        if n % 3 == 0 and tries < 3:
            raise ConnectionError("transient")
        return n * 10

    results, failures = deliver_all(handle, list(range(30)), workers=4)
    assert sorted(results) == [n * 10 for n in range(30)]
    assert failures == 2 * 10  # each multiple of 3 failed twice
    assert all(attempts[n] == (3 if n % 3 == 0 else 1) for n in range(30))


def test_a_push_body_decodes_as_the_usage_function_reads_it() -> None:
    body = push_body(b'{"a": 1}', "m-1", "projects/p/subscriptions/s", {"customer_id": "c"})
    message = decode_envelope(json.loads(body))
    assert (message.message_id, message.data) == ("m-1", b'{"a": 1}')
    assert message.attributes == {"customer_id": "c"}
    assert message.subscription == "projects/p/subscriptions/s"
    assert message.publish_time is not None
    assert json.loads(body)["message"]["data"] == base64.b64encode(b'{"a": 1}').decode()
