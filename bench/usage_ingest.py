"""Ingest throughput of `on_usage_event` vs the bare commit rate of the same writes.

Starts its own emulators and serves `on_usage_event` with functions-framework (gunicorn, as
deployed). `ingest`: 8 threads POST binary-mode `messagePublished` CloudEvents (what Eventarc
delivers); each 2xx means the record and its counter shard are committed. `bare`: 8 threads
make the same writes with a bare Firestore client (one WriteBatch: create record + merge set of
Increments on a shard, one commit per event; the records are computed before the clock runs).
Rounds alternate, after a warm-up; ratio = ingest rate / bare rate. Target >= 0.7.

The function builds its commit's protobufs itself (`FirestoreUsageRepository.commit_usage`),
which costs about half the client's WriteBatch CPU. For transparency a third phase, `raw`, makes
the same writes through that very encoding without the function: `ratio_vs_raw_commits` is the
function's overhead alone (HTTP stack, decoding, validation, pricing, customer reads, logs).
CPU per event of each side (function processes, load generator, emulator) is in the JSON.
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
    BareWrite,
    bare_commit,
    bare_write,
    event_body,
    raw_commit,
    run_concurrently,
    seed_customers,
)

from devstack.emulators import free_port, kill_group, start_emulators, start_group
from functions.usage.adapters import FirestoreUsageRepository
from shared.settings import load_settings

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


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


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
        # 8 requests in flight, as 2 gunicorn worker processes x 4 threads (the machine's two
        # cores); deployed, one instance serves 8 at once (BENCH_SERVER_PROCESSES=1 plays that).
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

        def ingest_items(run: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
            return [
                cloud_event_request(event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run), n)
                for n in range(count)
            ]

        def bare_items(run: str, count: int) -> list[BareWrite]:
            bodies = [event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run) for n in range(count)]
            return [bare_write(b, n) for n, b in enumerate(bodies)]

        def bare(write: BareWrite) -> None:
            bare_commit(client, write)

        repository = FirestoreUsageRepository(load_settings(emulators.env), client)

        def raw(write: BareWrite) -> None:
            raw_commit(repository, write)

        run_concurrently(ingest_items("warm-i", WARMUP), poster.post, WORKERS)
        run_concurrently(bare_items("warm-b", WARMUP), bare, WORKERS)
        run_concurrently(bare_items("warm-r", WARMUP), raw, WORKERS)
        rates: dict[str, list[float]] = {"ingest": [], "bare": [], "raw": []}
        server_procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
        emulator_procs = [
            p for p in psutil.process_iter() if _pgid(p.pid) == emulators.firestore.pgid
        ]
        me = psutil.Process()

        def cpu(procs: list[psutil.Process]) -> float:
            return sum(sum(p.cpu_times()[:2]) for p in procs)

        # CPU seconds per phase: the client side (this process, or the function's processes
        # plus this process as load generator) and the emulator.
        spent = {k: 0.0 for k in ("fn", "loadgen", "bare", "raw", "emu_ingest", "emu_bare")}
        for r in range(ROUNDS):
            for phase, work in (("bare", bare), ("raw", raw)):
                writes = bare_items(f"{phase}{r}", EVENTS)
                before, emu = cpu([me]), cpu(emulator_procs)
                rates[phase].append(run_concurrently(writes, work, WORKERS))
                spent[phase] += cpu([me]) - before
                if phase == "bare":
                    spent["emu_bare"] += cpu(emulator_procs) - emu
            items = ingest_items(f"ing{r}", EVENTS)
            before, emu, gen = cpu(server_procs), cpu(emulator_procs), cpu([me])
            rates["ingest"].append(run_concurrently(items, poster.post, WORKERS))
            spent["fn"] += cpu(server_procs) - before
            spent["emu_ingest"] += cpu(emulator_procs) - emu
            spent["loadgen"] += cpu([me]) - gen
        total = client.collection("usage_tracking").count().get()[0][0].value
        expected = 3 * WARMUP + 3 * ROUNDS * EVENTS
        ingest = statistics.mean(rates["ingest"])
        bare_rate = statistics.mean(rates["bare"])
        raw_rate = statistics.mean(rates["raw"])
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
                    "raw_commits_per_s": round(raw_rate, 1),
                    "ratio_vs_raw_commits": round(ingest / raw_rate, 2),
                    **{
                        f"{key}_cpu_ms_per_event": round(spent[k] * 1e3 / (ROUNDS * EVENTS), 2)
                        for key, k in (
                            ("function", "fn"),
                            ("ingest_loadgen", "loadgen"),
                            ("ingest_emulator", "emu_ingest"),
                            ("bare_client", "bare"),
                            ("bare_emulator", "emu_bare"),
                            ("raw_client", "raw"),
                        )
                    },
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
