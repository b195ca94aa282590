"""What one usage event costs at list prices, counted on the local suite (prints JSON).

    python bench/usage_cost.py [--events 600] [--customers 1,100]

Measures whatever usage path is deployed in the local suite (the one of this checkout): per
event, billed Firestore reads and writes (a gRPC counter inside the functions host,
`bench/_rpc_host.py`), writes per document (the emulator's own trigger delivery to wildcard
triggers: the write recorder of emulators.md), function invocations by function (the customer
trigger included), Pub/Sub messages, and log lines (the functions host log, plus one Cloud Run
request log per invocation). Each scenario publishes `--events` events spread over N customers,
waits until every one is recorded and every trigger has run, then fires ONE fold (production's
fold runs every minute: a burst shorter than a minute is one fold's work) and waits again.

Prices: list prices of /work/shared/production.md (late 2026) unless noted, kept in PRICES.
$ per million events and the ratio to the floor (one record write + one invocation of the usage
function) are printed per scenario. Targets (issue 12): <= $3 per million, <= 1.6x the floor.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devstack.delivery import push_body  # noqa: E402
from devstack.emulators import free_port  # noqa: E402
from devstack.functions_host import EMPTY_TRIGGER_PREFIX  # noqa: E402
from devstack.suite import (  # noqa: E402
    WRITE_INTERVAL_ENV,
    LocalSuite,
    register_trigger,
    start_local_suite,
)
from functions.fold.service import FoldConfig  # noqa: E402
from functions.table import FUNCTIONS, by_name  # noqa: E402
from shared.names import USAGE_COUNTER_SHARDS  # noqa: E402

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


def counted_from_records(suite: LocalSuite, run: str) -> int:
    """Records of this run (after its warm-up) written without a shard increment (they carry
    `fold_bucket`)."""
    tracking = suite.firestore.collection(suite.settings.usage_tracking_collection)
    return sum(
        1
        for snap in tracking.select(["fold_bucket", "event_id"]).stream()
        if isinstance((snap.to_dict() or {}).get("fold_bucket"), int)
        and str((snap.to_dict() or {}).get("event_id", "")).startswith(f"{run}-")
    )


def one_round(
    suite: LocalSuite, bodies: list[bytes], push_concurrency: int, fold_name: str
) -> None:
    """Publish `bodies`, wait until each is recorded and every trigger has run, then fire ONE
    fold (production's fold runs every minute: a burst shorter than a minute is one fold's
    work) and wait for it."""
    since = suite.mark()
    if push_concurrency:
        push_directly(suite, bodies, push_concurrency)
    else:
        topic = suite.pubsub.topic_path(suite.settings.usage_events_topic)
        futures = [suite.pubsub.publisher.publish(topic, data) for data in bodies]
        for future in futures:
            future.result(timeout=60)
    usage = by_name("on-usage-event").name
    wait_until(
        suite,
        since,
        lambda items: (
            sum(1 for i in items if i["function"] == usage and i["status"] < 300) >= len(bodies)
        ),
    )
    # The fold counts records up to `records_lag` before its read: wait it out, so that this
    # one fold counts every event (as production's next minute would).
    time.sleep(FoldConfig().records_lag.total_seconds() + 0.5)
    fold_since = suite.mark()
    suite.fire_fold()
    wait_until(suite, fold_since, lambda items: any(i["function"] == fold_name for i in items))


def scenario(  # noqa: PLR0917 - the scenario's knobs
    suite: LocalSuite,
    port: int,
    events: int,
    n_customers: int,
    push_concurrency: int = 0,
    rounds: int = 1,
    period: float = 0.0,
) -> dict[str, Any]:
    """`rounds` > 1: the steady state of a fold that holds quiet months (`write_interval`):
    one warm-up round (every customer seen once: its first write), not counted, then `rounds`
    rounds of `events` events and one fold each, one every `period` seconds (production: 60 s),
    counted together."""
    run = uuid.uuid4().hex[:8]
    customers = [f"cost_{run}_{i:04d}" for i in range(n_customers)]
    seed(suite, customers)
    suite.wait_quiet(suite.mark(), quiet=2.0)  # the customers' own triggers are not the events'
    fold = by_name("fold-usage-counters").name
    usage = by_name("on-usage-event").name
    batches = [
        [body(r * events + n, customers[n % n_customers], run) for n in range(events)]
        for r in range(rounds + (rounds > 1))
    ]
    started = time.monotonic()
    warm_up = events if rounds > 1 else 0
    if warm_up:
        one_round(suite, batches.pop(0), push_concurrency, fold)
        started = time.monotonic()
    since, before = suite.mark(), counters(port)
    _, _, offset = log_lines(suite.host.log_path, 0)
    durations = []
    for number, bodies in enumerate(batches, start=1):
        time.sleep(max(0.0, started + (number - 1) * period - time.monotonic()))
        begun = time.monotonic()
        one_round(suite, bodies, push_concurrency, fold)
        durations.append(round(time.monotonic() - begun, 1))
    events *= len(batches)
    items = suite.invocations(since)
    after = counters(port)
    lines, line_bytes, _ = log_lines(suite.host.log_path, offset)
    delta = after - before
    calls = Counter(
        i["function"] for i in items if not i["function"].startswith(EMPTY_TRIGGER_PREFIX)
    )
    failed = sum(
        1
        for i in items
        if i["status"] >= 300 and not i["function"].startswith(EMPTY_TRIGGER_PREFIX)
    )
    written = Counter(i["document"] for i in items if i["function"] in RECORDER_IDS)
    # Cloud Run's request log per invocation, except the 2xx ones the deploy excludes
    # (`FunctionSpec.request_logs`, the `log-exclusions` step of cloudbuild.yaml).
    request_logs = sum(
        1
        for i in items
        if not i["function"].startswith(EMPTY_TRIGGER_PREFIX)
        and (i["status"] >= 300 or by_name(i["function"]).request_logs)
    )
    published = {
        k.removeprefix("publish."): v for k, v in delta.items() if k.startswith("publish.")
    }
    messages = (
        events + calls[fold] + sum(published.values())
    )  # the events, the ticks, the functions'
    usd = {
        "firestore_reads": delta["reads"] * PRICES["firestore_read"]["usd"],
        "firestore_writes": delta["writes"] * PRICES["firestore_write"]["usd"],
        "invocations": sum(invocation_usd(name) * n for name, n in calls.items()),
        "pubsub": messages * 2 * PRICES["pubsub_kib"]["usd"],
        "logging": (
            line_bytes + lines * LOG_ENTRY_OVERHEAD_BYTES + request_logs * REQUEST_LOG_BYTES
        )
        / 1024**3
        * PRICES["log_gib"]["usd"],
    }
    per_million = {k: round(v / events * 1e6, 3) for k, v in usd.items()}
    total = sum(per_million.values())
    floor = (PRICES["firestore_write"]["usd"] + invocation_usd(usage)) * 1e6
    customer_docs = [d for d in written if d.startswith(f"{suite.settings.customers_collection}/")]
    return {
        "events": events,
        "customers": n_customers,
        "folds": len(batches),
        "round_seconds": durations,
        "usage_shard_rate": suite.settings.usage_shard_rate,
        "fold_write_interval_seconds": suite.settings.usage_fold_write_interval_seconds,
        "records_counted_per_event": round(
            counted_from_records(suite, run) / (events + warm_up), 3
        ),
        "failed_invocations": failed,
        "per_event": {
            "firestore_reads": round(delta["reads"] / events, 3),
            "firestore_writes": round(delta["writes"] / events, 3),
            "invocations": {name: round(n / events, 3) for name, n in sorted(calls.items())},
            "pubsub_messages": round(messages / events, 3),
            "log_lines": round((lines + request_logs) / events, 3),
        },
        "delivery": f"direct push, {push_concurrency} in flight"
        if push_concurrency
        else "Pub/Sub emulator push",
        "shard_writes_per_event": round(
            sum(n for d, n in written.items() if f"/{USAGE_COUNTER_SHARDS}/" in d) / events, 3
        ),
        "rpcs_per_event": {
            k.removeprefix("rpc."): round(v / events, 3)
            for k, v in sorted(delta.items())
            if k.startswith("rpc.")
        },
        "fold_runs": calls[fold],
        "fold_duration_ms": [i["duration_ms"] for i in items if i["function"] == fold],
        "writes_per_document_max": max(written.values(), default=0),
        "customer_document_writes": sum(written[d] for d in customer_docs),
        "usd_per_million_events": per_million,
        "total_usd_per_million": round(total, 3),
        "floor_usd_per_million": round(floor, 3),
        "ratio_to_floor": round(total / floor, 3),
        "meets_targets": total <= 3.0 and total / floor <= 1.6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--customers", default="1,100", help="comma-separated scenario sizes")
    parser.add_argument(
        "--shard-rates",
        default="20,0",
        help="comma-separated BLUEPRINT_USAGE_SHARD_RATE values: 20 = quiet customer-months "
        "counted from their records (the default); 0 = every event increments a shard (the "
        "baseline measured in the same run)",
    )
    parser.add_argument(
        "--push-concurrency",
        default="0,64",
        help="comma-separated: 0 = the Pub/Sub emulator's push; N = production's push played "
        "with N deliveries in flight (the usage function's concurrency)",
    )
    parser.add_argument(
        "--held-customers",
        default="100",
        help="comma-separated sizes of the steady-state scenarios (quiet, emulator push): the "
        "fold holding quiet months vs writing every changed month each fold, same run; '' = none",
    )
    parser.add_argument("--held-rounds", type=int, default=5, help="counted folds per scenario")
    parser.add_argument(
        "--held-period",
        type=float,
        default=30.0,
        help="seconds per round (production: the fold's minute); the write interval is 3.75 "
        "of them: after the warm-up's write, the 5th fold writes (production: 300 s of 60-s "
        "folds), if a round takes under 0.75 of them (`round_seconds`)",
    )
    args = parser.parse_args()
    port = free_port()
    os.environ["BENCH_RPC_COUNTER_PORT"] = str(port)
    results = []
    scenarios: list[dict[str, Any]] = [
        {"rate": rate, "push": int(concurrency), "customers": int(customers)}
        for rate in args.shard_rates.split(",")
        for concurrency in args.push_concurrency.split(",")
        for customers in args.customers.split(",")
    ]
    for customers in filter(None, args.held_customers.split(",")):
        for interval in (3.75 * args.held_period, 0.0):
            scenarios.append(
                {
                    "rate": "20",
                    "push": 0,
                    "customers": int(customers),
                    "rounds": args.held_rounds,
                    "period": args.held_period,
                    "write_interval": interval,
                }
            )
    for spec in scenarios:
        os.environ["BLUEPRINT_USAGE_SHARD_RATE"] = spec["rate"]
        os.environ[WRITE_INTERVAL_ENV] = str(spec.get("write_interval", 0.0))
        # A fresh suite per scenario: the fold rescans `overlap` seconds before its
        # watermark, which would bill one scenario's fold for the shards of the one before.
        suite = start_local_suite(PROJECT, fold_interval=0, host_module="bench._rpc_host")
        try:
            register_trigger(suite, RECORDER_IDS[0], "{a}/{b}")
            register_trigger(suite, RECORDER_IDS[1], "{a}/{b}/{c}/{d}")
            results.append(
                scenario(
                    suite,
                    port,
                    args.events,
                    spec["customers"],
                    spec["push"],
                    rounds=spec.get("rounds", 1),
                    period=spec.get("period", 0.0),
                )
            )
        finally:
            suite.stop()
    print(
        json.dumps(
            {
                "benchmark": "usage_cost",
                "functions": [spec.name for spec in FUNCTIONS],
                "scenarios": results,
                "prices": PRICES,
                "assumptions": {
                    "billed_seconds_per_request": BILLED_SECONDS_PER_REQUEST,
                    "log_entry_overhead_bytes": LOG_ENTRY_OVERHEAD_BYTES,
                    "request_log_bytes": REQUEST_LOG_BYTES,
                    "fold": "one fold per burst (production: every minute); steady-state "
                    "scenarios (folds > 1): one uncounted warm-up round, then one fold per "
                    "round",
                    "aggregation_reads": "each RunAggregationQuery request is billed one read "
                    "per batch of up to 1,000 index entries it matches, at least one (Google "
                    "Cloud blog, 'Calculate SUM and AVG aggregations using Firestore', "
                    "2023-11-07); counted as one read each: no request here matches more "
                    "than 1,000 (a month's records since its last write)",
                },
            },
            indent=2,
        )
    )
    return 0 if math.isfinite(sum(r["total_usd_per_million"] for r in results)) else 1


if __name__ == "__main__":
    sys.exit(main())
