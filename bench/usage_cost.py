"""What one usage event costs at list prices, counted on the local suite (prints JSON).

    python bench/usage_cost.py [--scenarios hot,100,1000] [--rounds 3]

Each scenario starts a fresh local suite (the functions of this checkout on the emulators),
seeds its customers, runs one fold with nothing to do (its first-ever month close and the
fold's imports are not part of any event's cost), then plays rounds: each round sends its
events through production's push, played (`--push-concurrency` deliveries in flight to the
usage function, each retried until 2xx, as Pub/Sub push does; 64 = the function's
concurrency), waits until each is recorded, waits out the fold's lag, fires ONE fold (the
`usage-fold` job: every minute in production, so a round is one minute of traffic) and waits
until every trigger it caused has run. Scenarios and targets:
- `hot`: one customer, `--hot-events` events in one fold. Target <= $3.2 per million.
- `100`: 100 customers at 6 events a minute each: `--rounds` rounds of 600 events, one a
  minute (`--period`), one fold each. Target <= $4.0.
- `1000`: 1,000 customers at one event an hour each: every fold sees each customer's event
  alone, so one round of 1,000 events (one per customer) and one fold has exactly the
  per-event work of that traffic (one summary, one customer write, one trigger per event)
  without playing an hour. Target <= $9.

How each figure is counted (per event = the counted rounds' totals / their events):
- Firestore reads and writes: a gRPC interceptor inside the functions host
  (`bench/_rpc_host.py`) counts what Firestore bills: one read per document a get, get_all or
  query returns (a query returning nothing: one), one read per aggregation request; one write
  per write of a Commit or BatchWrite (transforms add none). Every function's calls count:
  the usage function (its record; its customer read, once per customer per instance and
  `usage_customer_cache_seconds`), the fold (the watermarks, its scan, per customer the
  customer and its summary, then the commit), the customer trigger.
- Invocations, by function: the functions host's invocation log (the usage function, the
  fold, and `on-customer-written`, which each write of a customer document by the fold fires).
  Priced per request ($0.40 per million) plus instance time: 100 ms per request (the billing
  minimum) divided by the function's concurrency; the fold, which runs longer, at its measured
  duration rounded up to 100 ms (on the emulator: likely longer than in production).
- Writes per document: the emulator's own trigger delivery to two wildcard triggers (the write
  recorder of emulators.md), per round: no document other than the records may be written
  more than once per fold.
- Log lines: the JSON lines the functions wrote to the host's log (at the deployed level,
  INFO), each with `LOG_ENTRY_OVERHEAD_BYTES` of metadata, plus one Cloud Run request log of
  `REQUEST_LOG_BYTES` per invocation of a function whose 2xx request logs are not excluded
  (`FunctionSpec.request_logs`).
- Pub/Sub: each event and each fold tick, plus what the functions published, billed at
  publish and at delivery, 1 KiB each (the minimum).
- Counted: the month summaries of the scenario's customers must hold every event
  (`counted_per_event` 1.0).
Prices: the list prices of production.md (kept in PRICES, with their sources).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import emit  # noqa: E402

from devstack.delivery import push_body  # noqa: E402
from devstack.emulators import free_port  # noqa: E402
from devstack.functions_host import EMPTY_TRIGGER_PREFIX  # noqa: E402
from devstack.suite import LocalSuite, register_trigger, start_local_suite  # noqa: E402
from functions.table import FUNCTIONS, by_name  # noqa: E402
from shared.counters import counter_doc_id  # noqa: E402
from shared.times import month_of  # noqa: E402

PROJECT = "demo-bench-cost"
PRICES: dict[str, dict[str, Any]] = {
    "firestore_read": {"usd": 0.06 / 100_000, "source": "production.md: nam5, $0.06 per 100k"},
    "firestore_write": {"usd": 0.18 / 100_000, "source": "production.md: nam5, $0.18 per 100k"},
    "invocation": {"usd": 0.40 / 1_000_000, "source": "production.md: $0.40 per million"},
    "vcpu_second": {
        "usd": 0.000024,
        "source": "cloud.google.com/run/pricing tier 1; with GiB-s it gives production.md's "
        "$1.32 (512Mi) and $0.86 (256Mi) per million 100 ms requests",
    },
    "gib_second": {"usd": 0.0000025, "source": "cloud.google.com/run/pricing tier 1"},
    "pubsub_kib": {
        "usd": 40 / 1024**3,
        "source": "production.md: $40 per TiB, 1 KB minimum per request; a message is billed "
        "at publish and at its push delivery",
    },
    "log_gib": {"usd": 0.50, "source": "production.md: Cloud Logging $0.50 per GiB ingested"},
}
BILLED_SECONDS_PER_REQUEST = 0.1
"""production.md: billing rounds each request up to 100 ms of instance time. With concurrency
C > 1 a busy instance bills that time once for C requests (the estimate divides by C)."""
LOG_ENTRY_OVERHEAD_BYTES = 500
"""Assumed LogEntry metadata (resource, labels, timestamps, insertId) around each line."""
REQUEST_LOG_BYTES = 1000
"""Assumed size of the request log Cloud Run writes per invocation."""
_CPU_FOR_MEMORY = {"128Mi": 0.083, "256Mi": 0.167, "512Mi": 0.333, "1Gi": 0.583, "2Gi": 1.0}
"""Cloud Functions' default vCPU for a memory size (used unless the table names a cpu)."""
RECORDER_IDS = (f"{EMPTY_TRIGGER_PREFIX}-writes-2", f"{EMPTY_TRIGGER_PREFIX}-writes-4")


def _gib(memory: str) -> float:
    return float(memory[:-2]) / 1024 if memory.endswith("Mi") else float(memory[:-2])


def invocation_usd(name: str) -> float:
    """One invocation of a function of the table: request fee + its share of 100 ms."""
    spec = by_name(name)
    cpu = float(getattr(spec, "cpu", None) or _CPU_FOR_MEMORY.get(spec.memory, 0.333))
    seconds = BILLED_SECONDS_PER_REQUEST / max(1, spec.concurrency)
    compute = seconds * (
        cpu * PRICES["vcpu_second"]["usd"] + _gib(spec.memory) * PRICES["gib_second"]["usd"]
    )
    return float(PRICES["invocation"]["usd"] + compute)


def counters(port: int) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return Counter(json.loads(resp.read()))


def log_lines(path: Path, offset: int) -> tuple[int, int, int]:
    """(JSON log lines, their bytes, new offset) of the functions host log after `offset`."""
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    lines = [line for line in chunk.splitlines() if line.startswith(b"{") and b'"severity"' in line]
    return len(lines), sum(len(line) for line in lines), offset + len(chunk)


def wait_until(suite: LocalSuite, since: int, done: Any, timeout: float = 600) -> list[Any]:
    items = suite.wait_for(done, since, timeout=timeout)
    return suite.wait_quiet(since, quiet=2.0, timeout=timeout) if items else items


def seed(suite: LocalSuite, customers: list[str]) -> None:
    db = suite.firestore
    for cid in customers:
        db.collection(suite.settings.customers_collection).document(cid).set(
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 1_000_000}
        )


def body(n: int, cid: str, run: str) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "event_id": f"{run}-{n}",
            "customer_id": cid,
            "scene_id": f"scene_{n % 50}",
            "action": "scene_generated",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "episodes_generated": 10 + n % 90,
            "compute_minutes": 12.5,
            "storage_gb": 0.75,
            "details": {"batch_size": 10, "quality_level": "high"},
        }
    ).encode()


def push_directly(suite: LocalSuite, bodies: list[bytes], concurrency: int) -> None:
    """Production's push, played: the envelopes Pub/Sub push would POST, `concurrency` at a
    time, to the same functions host (the emulator pushes at most 2 at once: docs/local-suite.md;
    production keeps up to the instance's concurrency in flight). Each is retried until 2xx."""
    spec = by_name("on-usage-event")
    topic = spec.topic(suite.settings)
    url = f"{suite.function_url(spec.name)}/projects/{suite.project}/topics/{topic}"

    def push(n: int) -> None:
        data = push_body(
            bodies[n],
            f"direct-{n}-{uuid.uuid4().hex[:8]}",
            f"projects/{suite.project}/subscriptions/{spec.name}-push",
        )
        for _ in range(20):
            request = urllib.request.Request(  # noqa: S310 - the local host's http URL
                url, data=data, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
                    if resp.status < 300:
                        return
            except OSError:
                pass
        raise RuntimeError(f"push {n} never succeeded")

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(push, range(len(bodies))))


USAGE = by_name("on-usage-event").name
FOLD = by_name("fold-usage-counters").name


@dataclass(frozen=True)
class Scenario:
    """Customers, events per customer per round, rounds (one fold each), the target."""

    name: str
    customers: int
    events_per_customer: int
    rounds: int
    target_usd_per_million: float


def billed_fold_usd(duration_ms: float) -> float:
    """One fold: the request fee plus its measured instance time, rounded up to 100 ms."""
    spec = by_name(FOLD)
    cpu = float(spec.cpu or _CPU_FOR_MEMORY.get(spec.memory, 0.333))
    seconds = math.ceil(max(duration_ms, 1.0) / 100) / 10
    rate = cpu * PRICES["vcpu_second"]["usd"] + _gib(spec.memory) * PRICES["gib_second"]["usd"]
    return float(PRICES["invocation"]["usd"] + seconds * rate)


def counted_by_fold(suite: LocalSuite, customers: list[str]) -> int:
    """Records the month summaries of `customers` hold (this month's)."""
    collection = suite.firestore.collection(suite.settings.usage_counters_collection)
    month = month_of(datetime.now(UTC))
    refs = [collection.document(counter_doc_id(c, month)) for c in customers]
    return sum(
        int((snap.to_dict() or {}).get("records") or 0)
        for snap in suite.firestore.get_all(refs)
        if snap.exists
    )


def fold_and_wait(suite: LocalSuite) -> None:
    """Fire one fold; wait until it ran and every trigger it caused has run."""
    since = suite.mark()
    suite.fire_fold()
    wait_until(suite, since, lambda items: any(i["function"] == FOLD for i in items))


def one_round(suite: LocalSuite, bodies: list[bytes], push_concurrency: int) -> None:
    """Deliver `bodies`, wait until each is recorded, wait out the fold's lag (so that this one
    fold counts every event, as production's next minute would), then one fold."""
    since = suite.mark()
    if push_concurrency:
        push_directly(suite, bodies, push_concurrency)
    else:
        topic = suite.pubsub.topic_path(suite.settings.usage_events_topic)
        futures = [suite.pubsub.publisher.publish(topic, data) for data in bodies]
        for future in futures:
            future.result(timeout=60)
    wait_until(
        suite,
        since,
        lambda items: (
            sum(1 for i in items if i["function"] == USAGE and i["status"] < 300) >= len(bodies)
        ),
    )
    time.sleep(suite.settings.usage_fold_lag_seconds + 0.5)
    fold_and_wait(suite)


def run_scenario(
    suite: LocalSuite, port: int, spec: Scenario, push_concurrency: int, period: float
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    customers = [f"cost_{run}_{i:04d}" for i in range(spec.customers)]
    seed(suite, customers)
    suite.wait_quiet(suite.mark(), quiet=2.0)  # the seeds' own triggers are not the events'
    fold_and_wait(suite)  # the first fold closes the month before: once a month, not per event
    per_round = spec.customers * spec.events_per_customer
    since, before = suite.mark(), counters(port)
    _, _, offset = log_lines(suite.host.log_path, 0)
    durations, marks = [], []
    started = time.monotonic()
    for r in range(spec.rounds):
        # A round is a minute of traffic: the usage function's customer cache (60 s) expires
        # between rounds as it does between production's folds.
        time.sleep(max(0.0, started + r * period - time.monotonic()))
        bodies = [
            body(r * per_round + n, customers[n % spec.customers], run) for n in range(per_round)
        ]
        marks.append(suite.mark())
        begun = time.monotonic()
        one_round(suite, bodies, push_concurrency)
        durations.append(round(time.monotonic() - begun, 1))
    events = per_round * spec.rounds
    items = suite.invocations(since)
    delta = counters(port) - before
    lines, line_bytes, _ = log_lines(suite.host.log_path, offset)
    functions = [i for i in items if not i["function"].startswith(EMPTY_TRIGGER_PREFIX)]
    calls = Counter(i["function"] for i in functions)
    failed = sum(1 for i in functions if i["status"] >= 300)
    tracking = f"{suite.settings.usage_tracking_collection}/"
    per_fold = []
    for r, mark in enumerate(marks):
        end = marks[r + 1] - since if r + 1 < len(marks) else len(items)
        written = Counter(
            i["document"] for i in items[mark - since : end] if i["function"] in RECORDER_IDS
        )
        per_fold.append(written)
    record_writes = Counter(
        {d: n for written in per_fold for d, n in written.items() if d.startswith(tracking)}
    )
    others = [
        Counter({d: n for d, n in written.items() if not d.startswith(tracking)})
        for written in per_fold
    ]
    request_logs = sum(
        1 for i in functions if i["status"] >= 300 or by_name(i["function"]).request_logs
    )
    published = {
        k.removeprefix("publish."): v for k, v in delta.items() if k.startswith("publish.")
    }
    messages = events + calls[FOLD] + sum(published.values())
    fold_usd = sum(billed_fold_usd(i["duration_ms"]) for i in functions if i["function"] == FOLD)
    usd = {
        "firestore_reads": delta["reads"] * PRICES["firestore_read"]["usd"],
        "firestore_writes": delta["writes"] * PRICES["firestore_write"]["usd"],
        "invocations": fold_usd
        + sum(invocation_usd(name) * n for name, n in calls.items() if name != FOLD),
        "pubsub": messages * 2 * PRICES["pubsub_kib"]["usd"],
        "logging": (
            line_bytes + lines * LOG_ENTRY_OVERHEAD_BYTES + request_logs * REQUEST_LOG_BYTES
        )
        / 1024**3
        * PRICES["log_gib"]["usd"],
    }
    per_million = {k: round(v / events * 1e6, 3) for k, v in usd.items()}
    total = sum(per_million.values())
    floor = (PRICES["firestore_write"]["usd"] + invocation_usd(USAGE)) * 1e6
    max_other = max((max(o.values(), default=0) for o in others), default=0)
    counted = counted_by_fold(suite, customers)
    return {
        "scenario": spec.name,
        "customers": spec.customers,
        "events_per_customer_per_fold": spec.events_per_customer,
        "events": events,
        "folds": spec.rounds,
        "seconds_between_folds": period if spec.rounds > 1 else None,
        "delivery": f"direct push, {push_concurrency} in flight"
        if push_concurrency
        else "Pub/Sub emulator push",
        "round_seconds": durations,
        "fold_duration_ms": [i["duration_ms"] for i in functions if i["function"] == FOLD],
        "failed_invocations": failed,
        "counted_per_event": round(counted / events, 3),
        "per_event": {
            "firestore_reads": round(delta["reads"] / events, 3),
            "firestore_writes": round(delta["writes"] / events, 3),
            "invocations": {name: round(n / events, 3) for name, n in sorted(calls.items())},
            "log_lines": round((lines + request_logs) / events, 3),
            "pubsub_messages": round(messages / events, 3),
        },
        "rpcs_per_event": {
            k.removeprefix("rpc."): round(v / events, 3)
            for k, v in sorted(delta.items())
            if k.startswith("rpc.")
        },
        "record_writes_per_event": round(sum(record_writes.values()) / events, 3),
        "non_record_writes_per_fold": [sum(o.values()) for o in others],
        "max_writes_per_document_per_fold": max_other,
        "usd_per_million_events": per_million,
        "total_usd_per_million": round(total, 3),
        "floor_usd_per_million": round(floor, 3),
        "ratio_to_floor": round(total / floor, 3),
        "target_usd_per_million": spec.target_usd_per_million,
        "met": total <= spec.target_usd_per_million
        and max_other <= 1
        and failed == 0
        and counted == events,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="hot,100,1000", help="comma-separated")
    parser.add_argument("--hot-events", type=int, default=600, help="the hot customer's, one fold")
    parser.add_argument("--rounds", type=int, default=3, help="folds of the 100-customer scenario")
    parser.add_argument(
        "--period",
        type=float,
        default=60.0,
        help="seconds from one round's start to the next (production's fold: every minute)",
    )
    parser.add_argument(
        "--push-concurrency",
        type=int,
        default=64,
        help="N = production's push played with N deliveries in flight (the usage function's "
        "concurrency); 0 = the Pub/Sub emulator's push (at most 2 in flight)",
    )
    args = parser.parse_args()
    known = {
        "hot": Scenario("hot", 1, args.hot_events, 1, 3.2),
        "100": Scenario("100", 100, 6, args.rounds, 4.0),
        "1000": Scenario("1000", 1000, 1, 1, 9.0),
    }
    port = free_port()
    os.environ["BENCH_RPC_COUNTER_PORT"] = str(port)
    started = time.perf_counter()
    results = []
    for name in filter(None, args.scenarios.split(",")):
        suite = start_local_suite(PROJECT, fold_interval=0, host_module="bench._rpc_host")
        try:
            register_trigger(suite, RECORDER_IDS[0], "{a}/{b}")
            register_trigger(suite, RECORDER_IDS[1], "{a}/{b}/{c}/{d}")
            results.append(
                run_scenario(suite, port, known[name], args.push_concurrency, args.period)
            )
        finally:
            suite.stop()
    emit(
        __file__,
        {
            "benchmark": "usage_cost",
            "cost_to_target_ratio": {
                r["scenario"]: round(r["total_usd_per_million"] / r["target_usd_per_million"], 2)
                for r in results
            },
            **{f"{r['scenario']}_usd_per_million": r["total_usd_per_million"] for r in results},
            "functions": [spec.name for spec in FUNCTIONS],
            "scenarios": results,
            "targets_met": all(r["met"] for r in results),
            "prices": PRICES,
            "assumptions": {
                "billed_seconds_per_request": BILLED_SECONDS_PER_REQUEST,
                "log_entry_overhead_bytes": LOG_ENTRY_OVERHEAD_BYTES,
                "request_log_bytes": REQUEST_LOG_BYTES,
                "fold": "one fold per round (production: every minute); the fold billed at "
                "its measured duration on the emulator",
                "aggregation_reads": "each RunAggregationQuery request is billed one read "
                "per batch of up to 1,000 index entries it matches, at least one (Google "
                "Cloud blog, 'Calculate SUM and AVG aggregations using Firestore', "
                "2023-11-07); counted as one each: only the month close aggregates",
            },
            "total_seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
