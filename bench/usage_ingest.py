"""Ingest throughput of `on_usage_event` vs a bare client's `create` of the same records.

Starts its own emulators. Three sides, each sequentially (1 in flight) and 8-way (8 threads):
- `handler`: the function's own code in this process, as deployed
  (`functions.usage.entry.handle_cloud_event` over `build_service`): decode the CloudEvent,
  validate, find the customer, price, create the record, log;
- `ingest`: the same through functions-framework (gunicorn, as deployed), POSTing binary-mode
  `messagePublished` CloudEvents (what Eventarc delivers); each 2xx means the record is
  committed. On these 2-core machines its HTTP stack competes with the emulator for the CPU,
  which production's instances do not;
- `bare`: a bare Firestore client creates the same records (`DocumentReference.create` with
  `recorded_at` = the server's time, the records computed before the clock runs).
After a warm-up, in short rounds in which the handler and the bare client alternate which goes
first, the HTTP side last (its load on the emulator lingers into whatever follows it).
ratio = the median over rounds of a side's rate / the bare rate of the round. Target: >= 0.9
for the function's code (`handler`), sequential and 8-way; the HTTP figures are printed beside
it. CPU per event of each side is in the JSON for the 8-way phase. Last, `interleaved_sequential`:
a handler call and a bare create in turn, event by event (the steadiest comparison: both sides
meet the same machine), with the median wall time of each and what the function adds; and
`cold_after_rpc`: the function's validation timed right after a create and again at once.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
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
from _common import emit
from _usage_common import (
    PROJECT,
    ROOT,
    BareWrite,
    bare_commit,
    bare_write,
    event_body,
    run_concurrently,
    seed_customers,
)

from devstack.emulators import free_port, kill_group, start_emulators, start_group

CONCURRENCY = (1, 8)
SERVER_PROCESSES = int(os.environ.get("BENCH_SERVER_PROCESSES", "2"))
EVENTS = {
    1: int(os.environ.get("BENCH_EVENTS_SEQUENTIAL", "150")),
    8: int(os.environ.get("BENCH_EVENTS", "400")),
}
WARMUP = 300
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "8"))
INTERLEAVED = int(os.environ.get("BENCH_INTERLEAVED", "2000"))
TARGET_MIN_RATIO = 0.9
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


def interleave(
    events: list[Any], writes: list[BareWrite], handle: Any, bare: Any
) -> dict[str, float]:
    """One call of each side in turn, one at a time, so that both meet the same machine: the
    median wall time of a handler call and of a bare create, and their ratio (the first tenth
    is warm-up). What the function adds per event is what its code costs between two RPCs,
    with the caches an RPC left cold, not in a tight loop."""
    handler_s: list[float] = []
    bare_s: list[float] = []
    for event, write in zip(events, writes, strict=True):
        started = time.perf_counter()
        handle(event)
        handler_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare(write)
        bare_s.append(time.perf_counter() - started)
    skip = len(events) // 10
    handler_us = statistics.median(handler_s[skip:]) * 1e6
    bare_us = statistics.median(bare_s[skip:]) * 1e6
    return {
        "events": len(events),
        "handler_median_us": round(handler_us),
        "bare_median_us": round(bare_us),
        "added_us_per_event": round(handler_us - bare_us),
        "ratio": round(bare_us / handler_us, 2),
    }


def cold_after_rpc(events: list[Any], writes: list[BareWrite], bare: Any) -> dict[str, float]:
    """The function's validation (`intake.prepare`, pure, no I/O) timed right after a bare
    create and again at once: the same code, cold and then warm. Their ratio is what any code
    run between two RPCs pays on this machine (the emulator shares its two cores)."""
    from functions.edge.pubsub import decode_message  # noqa: PLC0415
    from functions.usage.intake import prepare  # noqa: PLC0415
    from functions.usage.ports import Limits  # noqa: PLC0415

    now, limits = datetime.now(UTC), Limits()
    cold: list[float] = []
    warm: list[float] = []
    for event, write in zip(events, writes, strict=True):
        message = decode_message(event)
        bare(write)
        for side in (cold, warm):
            started = time.perf_counter()
            prepare(message, now, limits)
            side.append(time.perf_counter() - started)
    skip = len(events) // 10
    cold_us = statistics.median(cold[skip:]) * 1e6
    warm_us = statistics.median(warm[skip:]) * 1e6
    return {
        "validation_after_rpc_us": round(cold_us, 1),
        "validation_again_us": round(warm_us, 1),
        "cold_over_warm": round(cold_us / warm_us, 1),
    }


def main() -> None:
    from google.cloud import firestore  # noqa: PLC0415

    emulators = start_emulators(PROJECT)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    server = None
    try:
        emulators.export()
        client = firestore.Client(project=PROJECT)
        seed_customers(client, CUSTOMERS)
        port = free_port()
        log = log_dir / "functions.log"
        # 8 requests in flight, as 2 gunicorn worker processes x 4 threads (the machine's two
        # cores); deployed, one instance serves many at once (BENCH_SERVER_PROCESSES=1 plays
        # one process).
        env = {
            **os.environ,
            **emulators.env,
            "PYTHONPATH": str(ROOT),
            "WORKERS": str(SERVER_PROCESSES),
            "THREADS": str(max(CONCURRENCY) // SERVER_PROCESSES),
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
            return [
                bare_write(event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run)) for n in range(count)
            ]

        def bare(write: BareWrite) -> None:
            bare_commit(client, write)

        from cloudevents.http import CloudEvent  # noqa: PLC0415

        from functions.usage.entry import build_service, handle_cloud_event  # noqa: PLC0415
        from shared.settings import load_settings  # noqa: PLC0415

        settings = load_settings({**emulators.env, "GOOGLE_CLOUD_PROJECT": PROJECT})
        service = build_service(settings, client)

        def handler_items(run: str, count: int) -> list[CloudEvent]:
            out = []
            for n in range(count):
                body, headers = cloud_event_request(
                    event_body(n, CUSTOMERS[n % len(CUSTOMERS)], run), n
                )
                attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
                out.append(CloudEvent(attributes, json.loads(body)))
            return out

        def handle(event: CloudEvent) -> None:
            handle_cloud_event(event, service=service)

        for workers in CONCURRENCY:  # JIT, connections, the function's customer cache
            run_concurrently(ingest_items(f"warm-i{workers}", WARMUP), poster.post, workers)
            run_concurrently(handler_items(f"warm-h{workers}", WARMUP), handle, workers)
            run_concurrently(bare_items(f"warm-b{workers}", WARMUP), bare, workers)
        rates: dict[tuple[str, int], list[float]] = {
            (phase, w): [] for phase in ("ingest", "handler", "bare") for w in CONCURRENCY
        }
        server_procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
        emulator_procs = [
            p for p in psutil.process_iter() if _pgid(p.pid) == emulators.firestore.pgid
        ]
        me = psutil.Process()

        def cpu(procs: list[psutil.Process]) -> float:
            return sum(sum(p.cpu_times()[:2]) for p in procs)

        # CPU seconds of the 8-way phases: the client side (this process, or the function's
        # processes plus this process as load generator) and the emulator.
        spent = {k: 0.0 for k in ("fn", "loadgen", "bare", "emu_ingest", "emu_bare")}
        parallel = max(CONCURRENCY)
        for r in range(ROUNDS):  # alternate, so both sides see the same machine load
            for workers in CONCURRENCY:
                count = EVENTS[workers]
                writes = bare_items(f"bare{workers}-{r}", count)
                items = ingest_items(f"ing{workers}-{r}", count)
                events = handler_items(f"hnd{workers}-{r}", count)
                # The handler and the bare client alternate who goes first; the HTTP side goes
                # last (its load on the emulator lingers into whatever follows it).
                first = ("bare", "handler") if r % 2 == 0 else ("handler", "bare")
                order = (*first, "ingest")
                for phase in order:
                    if phase == "handler":
                        rates["handler", workers].append(run_concurrently(events, handle, workers))
                        continue
                    if phase == "bare":
                        before, emu = cpu([me]), cpu(emulator_procs)
                        rates["bare", workers].append(run_concurrently(writes, bare, workers))
                        if workers == parallel:
                            spent["bare"] += cpu([me]) - before
                            spent["emu_bare"] += cpu(emulator_procs) - emu
                        continue
                    before, emu, gen = cpu(server_procs), cpu(emulator_procs), cpu([me])
                    rates["ingest", workers].append(run_concurrently(items, poster.post, workers))
                    if workers == parallel:
                        spent["fn"] += cpu(server_procs) - before
                        spent["emu_ingest"] += cpu(emulator_procs) - emu
                        spent["loadgen"] += cpu([me]) - gen
        interleaved = interleave(
            handler_items(f"ab-h-{INTERLEAVED}", INTERLEAVED),
            bare_items(f"ab-b-{INTERLEAVED}", INTERLEAVED),
            handle,
            bare,
        )
        cold = cold_after_rpc(
            handler_items(f"cold-{INTERLEAVED}", 1000),
            bare_items(f"cold-b-{INTERLEAVED}", 1000),
            bare,
        )
        total = client.collection("usage_tracking").count().get()[0][0].value
        expected = 3 * WARMUP * len(CONCURRENCY) + 3 * ROUNDS * sum(EVENTS.values())
        expected += 2 * INTERLEAVED + 1000
        phases = {}
        for workers in CONCURRENCY:

            def ratio_of(side: str, w: int = workers) -> float:
                pairs = zip(rates[side, w], rates["bare", w], strict=True)
                return round(statistics.median(s / b for s, b in pairs), 2)

            ratio = ratio_of("handler")
            phases["sequential" if workers == 1 else f"{workers}_way"] = {
                "in_flight": workers,
                "events_per_round": EVENTS[workers],
                "handler_events_per_s": round(statistics.mean(rates["handler", workers]), 1),
                "http_events_per_s": round(statistics.mean(rates["ingest", workers]), 1),
                "bare_creates_per_s": round(statistics.mean(rates["bare", workers]), 1),
                "ratio": ratio,
                "ratio_through_http": ratio_of("ingest"),
                "target_min_ratio": TARGET_MIN_RATIO,
                "met": ratio >= TARGET_MIN_RATIO,
            }
        events = ROUNDS * EVENTS[parallel]
        emit(
            __file__,
            {
                "bench": "usage_ingest",
                "ratio": {name: phase["ratio"] for name, phase in phases.items()},
                "ratio_through_http": {
                    name: phase["ratio_through_http"] for name, phase in phases.items()
                },
                "function_processes": SERVER_PROCESSES,
                "rounds": ROUNDS,
                **phases,
                "cpu_ms_per_event_8_way": {
                    key: round(spent[k] * 1e3 / events, 2)
                    for key, k in (
                        ("function", "fn"),
                        ("ingest_loadgen", "loadgen"),
                        ("ingest_emulator", "emu_ingest"),
                        ("bare_client", "bare"),
                        ("bare_emulator", "emu_bare"),
                    )
                },
                "interleaved_ratio": interleaved["ratio"],
                "interleaved_sequential": interleaved,
                "cold_after_rpc": cold,
                "records_written": total,
                "records_expected": expected,
                "targets_met": all(p["met"] for p in phases.values()),
            },
        )
    finally:
        if server is not None:
            kill_group(server.pid, server)
        emulators.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
