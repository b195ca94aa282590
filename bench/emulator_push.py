"""How many push requests the Pub/Sub emulator keeps in flight to one endpoint (prints JSON).

    python bench/emulator_push.py [--messages 600] [--handler-ms 50]

Publishes `--messages` messages to a topic with one push subscription whose endpoint (a small
threaded HTTP server here) holds each request `--handler-ms` and answers 204, and counts the
requests in flight at once. Production's push keeps up to the instance's concurrency in flight
(64 for `on-usage-event`); the emulator's figure says how far the local suite's delivery is
from that, and why `bench/usage_cost.py` plays production's push (`--push-concurrency`). The
baseline is the handler's own bound: messages x handler time / the wall time is the mean
number in flight.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import emit  # noqa: E402

from devstack.emulators import free_port, start_emulators  # noqa: E402

PROJECT = "demo-bench-push"


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.done = 0


def _server(counter: _Counter, hold: float) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with counter.lock:
                counter.now += 1
                counter.most = max(counter.most, counter.now)
            time.sleep(hold)
            with counter.lock:
                counter.now -= 1
                counter.done += 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def measure(messages: int, hold: float) -> dict[str, Any]:
    counter = _Counter()
    server, port = _server(counter, hold)
    try:
        with start_emulators(PROJECT) as emulators:
            os.environ.update(emulators.env)
            from devstack.pubsub import PubSubHelper  # noqa: PLC0415 - after the env is set

            pubsub = PubSubHelper(PROJECT)
            topic = pubsub.create_topic("push-probe")
            pubsub.create_subscription(
                topic, "push-probe-sub", push_endpoint=f"http://127.0.0.1:{port}/push"
            )
            started = time.perf_counter()
            futures = [
                pubsub.publisher.publish(pubsub.topic_path(topic), b"x", n=str(n))
                for n in range(messages)
            ]
            for future in futures:
                future.result(timeout=60)
            deadline = time.monotonic() + 300
            while counter.done < messages and time.monotonic() < deadline:
                time.sleep(0.02)
            wall = time.perf_counter() - started
            pubsub.close()
    finally:
        server.shutdown()
    return {
        "benchmark": "emulator_push",
        "messages": messages,
        "delivered": counter.done,
        "handler_ms": hold * 1000,
        "max_in_flight": counter.most,
        "mean_in_flight": round(counter.done * hold / wall, 2),
        "seconds": round(wall, 2),
        "deliveries_per_second": round(counter.done / wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--handler-ms", type=float, default=50.0)
    args = parser.parse_args()
    emit(__file__, measure(args.messages, args.handler_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
