"""Trigger overhead of the config-write functions, measured on the local suite. Prints JSON.

- write-to-stamp latency: a customer is written; the clock stops when `on-customer-written`
  has finished its stamp (the end of the invocation, as the functions host records it).
- baseline, same run: the Firestore emulator's own delivery latency to an empty endpoint (a
  trigger on another collection that the relay answers at once).
- ratio = median(write-to-stamp) / median(empty delivery).
- handler CPU per event: (a) decode + rules in-process on the recorded protobuf events with fake
  Firestore/Pub/Sub; (b) CPU of the whole functions-host process per invocation during the run
  (functions-framework, relay, clients included).

Usage: python bench/trigger_overhead.py [--events 60] [--warmup 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from _common import emit  # noqa: E402
from cloudevents.http import from_http  # noqa: E402

from devstack.suite import LocalSuite, register_trigger, start_local_suite  # noqa: E402
from functions.config.ports import ConfigKind, StampOutcome  # noqa: E402
from functions.config.service import handle_config_write  # noqa: E402
from functions.edge.documents import decode_document_event  # noqa: E402

EMPTY_TRIGGER = "empty-endpoint-bench"
EMPTY_COLLECTION = "bench_empty"


def customer() -> dict[str, Any]:
    return {"schema_version": 1, "bundle_tier": "pro", "organization_name": "Bench Lab"}


def wait_invocation(suite: LocalSuite, since: int, document: str, decision: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for item in suite.invocations(since):
            if item["document"] == document and item["decision"] == decision:
                return item
        time.sleep(0.002)
    raise TimeoutError(f"no {decision} invocation for {document}")


def measure(suite: LocalSuite, collection: str, decision: str, n: int, data: Any) -> list[float]:
    """Sequential writes; latency (ms) from before the write to the recorded invocation end."""
    out = []
    for _ in range(n):
        path = f"{collection}/{uuid.uuid4().hex[:12]}"
        since = suite.mark()
        started = time.time()
        suite.firestore.document(path).set(data)
        item = wait_invocation(suite, since, path, decision)
        out.append((item["time"] - started) * 1000)
        suite.wait_quiet(since, quiet=0.15, timeout=10)  # let the stamp's echo pass
    return out


def handler_cpu_us(rounds: int = 400) -> float:
    """CPU microseconds per event to decode and apply the rules (fakes for I/O)."""

    class Stamper:
        def stamp(self, *args: Any) -> StampOutcome:
            return StampOutcome.STAMPED

    class Publisher:
        def publish(self, *args: Any) -> str:
            return "1"

    events_dir = ROOT / "tests" / "events"
    names = ["customer_create", "customer_update", "customer_stamp_only", "customer_delete"]
    recorded = [
        (
            json.loads((events_dir / f"{n}.headers.json").read_text()),
            (events_dir / f"{n}.body").read_bytes(),
        )
        for n in names
    ]
    for headers, body in recorded * 20:  # warm up
        handle_config_write(
            ConfigKind.CUSTOMER,
            decode_document_event(from_http(headers, body)),
            Stamper(),
            Publisher(),
        )
    started = time.process_time()
    for _ in range(rounds):
        for headers, body in recorded:
            event = decode_document_event(from_http(headers, body))
            handle_config_write(ConfigKind.CUSTOMER, event, Stamper(), Publisher())
    return (time.process_time() - started) / (rounds * len(recorded)) * 1e6


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "min_ms": round(ordered[0], 2),
        "n": len(ordered),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    from shared import logs  # noqa: PLC0415

    logs.configure("json", level=40)  # keep this process quiet
    suite = start_local_suite("demo-blueprint-bench")
    try:
        register_trigger(suite, EMPTY_TRIGGER, f"{EMPTY_COLLECTION}/{{docId}}")
        customers = suite.settings.customers_collection
        # Warm both paths (JIT of the emulator, first client calls), interleaved.
        measure(suite, EMPTY_COLLECTION, "empty-endpoint", args.warmup, {"n": 1})
        measure(suite, customers, "stamped", args.warmup, customer())
        host = psutil.Process(suite.host.pid)
        cpu_before = sum(host.cpu_times()[:2])
        calls_before = suite.mark()
        stamp = measure(suite, customers, "stamped", args.events, customer())
        cpu_after = sum(host.cpu_times()[:2])
        calls = suite.mark() - calls_before
        empty = measure(suite, EMPTY_COLLECTION, "empty-endpoint", args.events, {"n": 1})
    finally:
        suite.stop()
    stamp_s, empty_s = summary(stamp), summary(empty)
    result = {
        "benchmark": "trigger_overhead",
        "write_to_stamp": stamp_s,
        "emulator_delivery_to_empty_endpoint": empty_s,
        "ratio_median": round(stamp_s["median_ms"] / empty_s["median_ms"], 2),
        "handler_cpu_us_per_event_in_process": round(handler_cpu_us(), 1),
        "host_cpu_ms_per_invocation": round((cpu_after - cpu_before) * 1000 / max(calls, 1), 2),
        "host_invocations_measured": calls,
        "note": "write-to-stamp ends when the function returns (stamp written, invalidation "
        "published); baseline = emulator delivery to an endpoint that answers at once",
    }
    emit(__file__, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
