"""Ingest throughput of `on_usage_event` vs the bare commit rate of the same writes.

Starts its own emulators and serves `on_usage_event` with functions-framework (gunicorn, as
deployed). `ingest`: 8 threads POST binary-mode `messagePublished` CloudEvents (what Eventarc
delivers); each 2xx means the record and counters are committed. `bare`: 8 threads make the same
writes with a bare Firestore client (one WriteBatch: create record + Increment customer).
Rounds alternate, after a warm-up; ratio = ingest rate / bare rate. Target >= 0.7. Prints JSON.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _usage_common import (
    PROJECT,
    ROOT,
    bare_commit,
    event_body,
    run_concurrently,
    seed_customers,
)

from devstack.emulators import free_port, kill_group, start_emulators, start_group

WORKERS = 8
SERVER_PROCESSES = int(os.environ.get("BENCH_SERVER_PROCESSES", "2"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "800"))
WARMUP = 300
ROUNDS = 2
CUSTOMERS = [f"cust_{i:03d}" for i in range(20)]


def cloud_event_request(body: dict[str, Any], n: int) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(body).encode()
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {"customer_id": body["customer_id"]},
            "messageId": f"bench-{body['event_id']}-{n}",
            "publishTime": datetime.now(UTC).isoformat(),
        },
        "subscription": f"projects/{PROJECT}/subscriptions/usage-events",
    }
    headers = {
        "Content-Type": "application/json",
        "ce-id": envelope["message"]["messageId"],  # type: ignore[index]
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/usage-events",
    }
    return json.dumps(envelope).encode(), headers


class Poster:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, request: tuple[bytes, dict[str, str]]) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.local.conn = conn
        body, headers = request
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"function answered HTTP {response.status}")


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError(f"functions-framework did not answer on port {port}")


def main() -> None:
    from google.cloud import firestore  # noqa: PLC0415

    emulators = start_emulators(PROJECT)
    server = None
    try:
        emulators.export()
        client = firestore.Client(project=PROJECT)
        seed_customers(client, CUSTOMERS)
        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="bench-usage-")) / "functions.log"
        # 8 requests in flight, as 2 gunicorn worker processes x 4 threads: deployed, each
        # request would have an instance of its own (concurrency 1), so processes, not one GIL.
        env = {
            **os.environ,
            **emulators.env,
            "PYTHONPATH": str(ROOT),
            "WORKERS": str(SERVER_PROCESSES),
            "THREADS": str(WORKERS // SERVER_PROCESSES),
        }
        server = start_group(
            "functions-framework",
            [
                str(Path(sys.executable).parent / "functions-framework"),
                "--target",
                "on_usage_event",
                "--source",
                str(ROOT / "functions" / "main.py"),
                "--port",
                str(port),
            ],
            log,
            env,
        )
        wait_for_port(port)
        poster = Poster(port)
        now = datetime.now(UTC)

        def ingest_items(run: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
            return [
                cloud_event_request(event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run), n)
                for n in range(count)
            ]

        def bare_items(run: str, count: int) -> list[dict[str, Any]]:
            return [event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run) for n in range(count)]

        run_concurrently(ingest_items("warm-i", WARMUP), poster.post, WORKERS)
        run_concurrently(
            bare_items("warm-b", WARMUP), lambda b: bare_commit(client, b, now), WORKERS
        )
        ingest_rates, bare_rates = [], []
        server_procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]

        def server_cpu_now() -> float:
            return sum(sum(p.cpu_times()[:2]) for p in server_procs)

        me = psutil.Process()
        server_cpu = bare_cpu = 0.0
        for r in range(ROUNDS):
            bare = bare_items(f"bare{r}", EVENTS)
            before = sum(me.cpu_times()[:2])
            bare_rates.append(
                run_concurrently(bare, lambda b: bare_commit(client, b, now), WORKERS)
            )
            bare_cpu += sum(me.cpu_times()[:2]) - before
            items = ingest_items(f"ing{r}", EVENTS)
            before = server_cpu_now()
            ingest_rates.append(run_concurrently(items, poster.post, WORKERS))
            server_cpu += server_cpu_now() - before
        total = client.collection("usage_tracking").count().get()[0][0].value
        expected = 2 * WARMUP + 2 * ROUNDS * EVENTS
        ingest = statistics.mean(ingest_rates)
        bare_rate = statistics.mean(bare_rates)
        print(
            json.dumps(
                {
                    "bench": "usage_ingest",
                    "workers": WORKERS,
                    "function_processes": SERVER_PROCESSES,
                    "events_per_round": EVENTS,
                    "rounds": ROUNDS,
                    "ingest_events_per_s": round(ingest, 1),
                    "bare_commits_per_s": round(bare_rate, 1),
                    "ratio": round(ingest / bare_rate, 2),
                    "target_min_ratio": 0.7,
                    "function_cpu_ms_per_event": round(server_cpu * 1e3 / (ROUNDS * EVENTS), 2),
                    "bare_client_cpu_ms_per_commit": round(bare_cpu * 1e3 / (ROUNDS * EVENTS), 2),
                    "records_written": total,
                    "records_expected": expected,
                }
            )
        )
    finally:
        if server is not None:
            kill_group(server.pid, server)
        emulators.stop()


if __name__ == "__main__":
    main()
