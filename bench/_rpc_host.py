"""The functions host, counting billed Firestore operations and Pub/Sub publishes (bench helper).

`bench/usage_cost.py` starts the local suite with this host (`host_module`). It wraps every
Firestore emulator channel the functions open with a gRPC interceptor and counts what Firestore
bills: a document read per document a get / query returns (a query returning nothing: one),
a document write per write of a Commit or BatchWrite (transforms add none). Publishes of the
functions' Pub/Sub clients are counted per topic. The counts are served as JSON on
`http://127.0.0.1:$BENCH_RPC_COUNTER_PORT/`.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

_LOCK = threading.Lock()
COUNTS: collections.Counter[str] = collections.Counter()


def _add(key: str, n: int = 1) -> None:
    with _LOCK:
        COUNTS[key] += n


def _method(details: Any) -> str:
    return str(details.method).rsplit("/", 1)[-1]


class _Counter(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = _method(details)
        _add(f"rpc.{method}")
        if method in {"Commit", "BatchWrite"}:
            _add("writes", len(request.writes))
        elif method == "GetDocument":
            _add("reads")
        return continuation(details, request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = _method(details)
        _add(f"rpc.{method}")
        responses = continuation(details, request)
        if method == "BatchGetDocuments":
            return _each(responses, lambda r: _add("reads"))
        if method == "RunQuery":
            return _query(responses)
        if method == "RunAggregationQuery":
            # Billed one read per 1,000 index entries matched, at least one; the benches'
            # aggregations match fewer (bench/usage_cost.py, assumptions).
            _add("reads")
        return responses


def _each(responses: Iterator[Any], count: Callable[[Any], None]) -> Iterator[Any]:
    for response in responses:
        count(response)
        yield response


def _query(responses: Iterator[Any]) -> Iterator[Any]:
    found = 0
    for response in responses:
        if response._pb.HasField("document"):
            found += 1
        yield response
    _add("reads", max(found, 1))  # a query that returns nothing is billed one read


def install() -> None:
    """Wrap the Firestore client's emulator channel, count Pub/Sub publishes."""
    from google.cloud.firestore_v1 import base_client  # noqa: PLC0415 - after the patch point
    from google.cloud.pubsub_v1 import PublisherClient  # noqa: PLC0415

    original = base_client.BaseClient._emulator_channel

    def counted_channel(self: Any, transport: Any) -> Any:
        return grpc.intercept_channel(original(self, transport), _Counter())

    base_client.BaseClient._emulator_channel = counted_channel  # type: ignore[method-assign]
    publish = PublisherClient.publish

    def counted_publish(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        _add(f"publish.{topic.rsplit('/', 1)[-1]}")
        return publish(self, topic, *args, **kwargs)

    PublisherClient.publish = counted_publish  # type: ignore[method-assign]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with _LOCK:
            body = json.dumps(dict(COUNTS)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    install()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["BENCH_RPC_COUNTER_PORT"])), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from devstack import functions_host  # noqa: PLC0415 - imports the functions: patched first

    return functions_host.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
