"""One fold of many records, against a bare scan of the same records; and the fold's memory
as its backlog grows (prints JSON).

    python bench/fold_scale.py [--customers 1000] [--records 100000] [--workers 8]

`time` (Firestore emulator): `--records` usage records over `--customers` customer-months (the
current month), written as the usage function writes them (its record, with `fold_bucket`,
`fold_key` and `recorded_at`). After a warm-up round (10 % of the records, one fold: the JVM
warms, the summaries and watermarks exist), the measured round writes `--records` more, then
times:
- the baseline: a bare client reading the same records with the fold's own queries and pages
  (`queries.new_records`, the fold's page size, read at one read time, the buckets split over
  the same `--workers` threads), and nothing else: no planning, no customer reads, no writes;
  measured before and after the fold, the mean is the baseline;
- one fold (`functions.fold.service.run_fold`, real adapters, the same workers) over them:
  the scan, then per customer one read and one guarded commit, the watermarks;
  `fold_phase_seconds` says how long its scan and its customers took.
`ratio` = fold time / baseline time. Target <= 2.0. The emulator is no real index: a page of
500 records of a 110k-record collection takes it about half a second, so the scan dominates
both sides here and every call gets a deadline of `CALL_TIMEOUT` seconds instead of
production's `firestore_timeout_seconds`. Where pages are cheap (production), the customers'
round trips weigh more: `fold_phase_seconds` shows both parts.

`memory` (in-memory): the fold's peak RSS with a backlog of 10x `--records` against 1x, each
in a fresh subprocess that runs one fold over a fake FoldRepository: its scan yields the
records in pages as the Firestore adapter does (the same NewRecord objects, built through
`shared.counters` from the same fields), its reads and commits are free. The fake keeps no
records (it makes each page when asked), so the process's growth is the fold's own memory. A
backlog of 10x on the emulator would take long to write and hold gigabytes in the emulator:
the fold's memory is what matters, and its Firestore round trips add none. The fold keeps the
records it scanned until its customers committed, at most `usage_fold_max_records` of them
(FoldConfig.max_records: the rest waits for the next fold), so its memory is bounded by that
cap, not by the backlog. `peak_rss_ratio` = peak RSS at 10x / at 1x. Target <= 1.2. The same
ratio with the cap at 1x's records (`at_cap`) shows the bound alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import emit  # noqa: E402

from functions.fold.ports import (  # noqa: E402
    Commit,
    CustomerState,
    FoldCounts,
    Marker,
    NewRecord,
    Snapshot,
    Watermark,
)
from functions.fold.service import FoldConfig, run_fold  # noqa: E402
from shared import logs  # noqa: E402
from shared.counters import (  # noqa: E402
    MONTH_KEY_FIELD,
    RECORDED_AT_FIELD,
    Sums,
    counter_doc_id,
    fold_bucket,
    record_sums,
    split_counter_doc_id,
)
from shared.times import month_of, previous_month  # noqa: E402

PROJECT = "demo-bench-fold"
BUCKETS = 16
LAG = timedelta(seconds=1)
TARGET_TIME_RATIO = 2.0
TARGET_RSS_RATIO = 1.2
CALL_TIMEOUT = 300.0


class NoAlerts:
    def publish_alert(self, data: bytes, attributes: Any) -> str:
        raise AssertionError("unlimited quotas: no alert expected")


# --- time: the emulator --------------------------------------------------------------------


def customer_ids(n: int, run: str) -> list[str]:
    return [f"fs_{run}_{i:05d}" for i in range(n)]


def seed_customers(db: Any, customers: Sequence[str]) -> None:
    batch = db.batch()
    for i, cid in enumerate(customers, 1):
        batch.set(
            db.collection("customers").document(cid),
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1},
        )
        if i % 500 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()


def templates(customers: Sequence[str], now: datetime) -> dict[str, dict[str, Any]]:
    """One record per customer as the usage function builds it (the writes copy it)."""
    from functions.usage.records import build_record  # noqa: PLC0415
    from shared.models import BundleTier, UsageEvent  # noqa: PLC0415
    from shared.pricing import estimate_cost  # noqa: PLC0415

    out = {}
    for cid in customers:
        event = UsageEvent.model_validate(
            {
                "schema_version": 1,
                "event_id": "template",
                "customer_id": cid,
                "scene_id": "scene_1",
                "action": "scene_generated",
                "timestamp": now,
                "episodes_generated": 12,
                "compute_minutes": 12.5,
                "storage_gb": 0.75,
                "details": {"batch_size": 10, "quality_level": "high"},
            }
        )
        out[cid] = build_record(event, estimate_cost(event, BundleTier.PRO), "bench", BUCKETS)
    return out


def write_records(db: Any, records: Mapping[str, dict[str, Any]], count: int, run: str) -> None:
    """`count` records, round-robin over the customers, `recorded_at` = the time of writing
    (each distinct, as commits are), in batches of 500 from 4 threads."""
    customers = list(records)
    tracking = db.collection("usage_tracking")

    def chunk(start: int) -> None:
        batch = db.batch()
        for n in range(start, min(start + 500, count)):
            cid = customers[n % len(customers)]
            doc = {
                **records[cid],
                "event_id": f"{run}-{n}",
                RECORDED_AT_FIELD: datetime.now(UTC),
            }
            batch.create(tracking.document(f"{run}-{n:07d}"), doc)
        batch.commit(timeout=CALL_TIMEOUT)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(chunk, range(0, count, 500)))


def scan_bound(marks: Sequence[Watermark]) -> datetime:
    """U = T - lag, as the fold computes it from the watermarks' read."""
    read_time = marks[0].read_time
    assert read_time is not None
    return read_time - LAG


def bare_scan(
    db: Any, settings: Any, marks: Sequence[Watermark], upto: datetime, workers: int
) -> tuple[float, int]:
    """The fold's scan without the fold: the same queries and pages at the same read time;
    (seconds, records read)."""
    from shared import queries  # noqa: PLC0415

    read_time = marks[0].read_time
    page_size = settings.usage_fold_page_size

    def one(mark: Watermark) -> int:
        n, cursor = 0, None
        while True:
            query = queries.new_records(
                db, mark.bucket, mark.value, upto, limit=page_size, cursor=cursor, settings=settings
            )
            snaps = list(query.stream(read_time=read_time, timeout=CALL_TIMEOUT))
            n += len(snaps)
            if len(snaps) < page_size:
                return n
            cursor = snaps[-1]

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        found = sum(pool.map(one, marks))
    return time.perf_counter() - started, found


class Phases:
    """When the fold's scan and its customers' reads and commits began and ended."""

    def __init__(self) -> None:
        self.spans: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def mark(self, phase: str, start: float, end: float) -> None:
        with self._lock:
            span = self.spans.setdefault(phase, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)

    def seconds(self) -> dict[str, float]:
        return {phase: round(end - start, 2) for phase, (start, end) in self.spans.items()}


def timed(repo: Any, phases: Phases) -> Any:
    """`repo` with its scan and its customers' reads and commits timed (first start, last end)."""

    class Timed(type(repo)):  # type: ignore[misc]
        def scan_records(self, *args: Any) -> Iterator[list[NewRecord]]:
            start = time.perf_counter()
            for page in super().scan_records(*args):
                phases.mark("scan", start, time.perf_counter())
                yield page
            phases.mark("scan", start, time.perf_counter())

        def read_state(self, *args: Any) -> CustomerState:
            start = time.perf_counter()
            try:
                state: CustomerState = super().read_state(*args)
                return state
            finally:
                phases.mark("customers", start, time.perf_counter())

        def commit(self, commit: Commit) -> None:
            start = time.perf_counter()
            try:
                super().commit(commit)
            finally:
                phases.mark("customers", start, time.perf_counter())

    repo.__class__ = Timed
    return repo


def fold_once(repo: Any, config: FoldConfig, run_id: str) -> tuple[float, FoldCounts]:
    from shared.firestore_values import server_timestamp  # noqa: PLC0415

    started = time.perf_counter()
    counts = run_fold(
        repo,
        NoAlerts(),
        now=datetime.now(UTC),
        run_id=run_id,
        config=config,
        server_time=server_timestamp(),
    )
    return time.perf_counter() - started, counts


def progress(text: str) -> None:
    print(f"fold_scale: {text}", file=sys.stderr, flush=True)


def measure_time(customers: int, records: int, workers: int) -> dict[str, Any]:
    from devstack.emulators import start_emulators  # noqa: PLC0415
    from functions.fold.adapters import FirestoreFoldRepository  # noqa: PLC0415
    from shared.settings import load_settings  # noqa: PLC0415

    pair = start_emulators(PROJECT)
    try:
        pair.export()
        # The emulator answers a page of a large collection in seconds, not milliseconds: a
        # longer per-call deadline than production's, for the fold and the baseline alike.
        settings = load_settings(
            {
                **pair.env,
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": str(CALL_TIMEOUT),
            }
        )
        from google.cloud import firestore  # noqa: PLC0415

        db = firestore.Client(project=PROJECT)
        run = uuid.uuid4().hex[:6]
        ids = customer_ids(customers, run)
        seed_customers(db, ids)
        records_of = templates(ids, datetime.now(UTC))
        repo = FirestoreFoldRepository(settings, db)
        config = FoldConfig(
            buckets=BUCKETS,
            lag=LAG,
            page_size=settings.usage_fold_page_size,
            max_records=max(settings.usage_fold_max_records, 2 * records),
            workers=workers,
        )
        warm = max(1000, records // 10)
        progress(f"warm-up: {warm} records")
        write_records(db, records_of, warm, f"{run}w")
        time.sleep(LAG.total_seconds() + 0.5)
        marks = repo.read_watermarks(range(BUCKETS))
        upto = scan_bound(marks)
        bare_scan(db, settings, marks, upto, workers)
        fold_once(repo, config, "warm")
        progress(f"writing {records} records")
        started = time.perf_counter()
        write_records(db, records_of, records, f"{run}m")
        write_seconds = time.perf_counter() - started
        time.sleep(LAG.total_seconds() + 0.5)
        marks = repo.read_watermarks(range(BUCKETS))
        upto = scan_bound(marks)
        progress(f"written in {time.perf_counter() - started:.0f} s; baseline, fold, baseline")
        before, found = bare_scan(db, settings, marks, upto, workers)
        phases = Phases()
        fold_seconds, counts = fold_once(timed(repo, phases), config, "measured")
        after, found_again = bare_scan(db, settings, marks, upto, workers)
        baseline = statistics.mean([before, after])
        ratio = fold_seconds / baseline
        return {
            "customer_months": customers,
            "records": records,
            "workers": workers,
            "write_seconds": round(write_seconds, 1),
            "baseline_seconds": [round(before, 2), round(after, 2)],
            "baseline_records": [found, found_again],
            "fold_seconds": round(fold_seconds, 2),
            "fold_phase_seconds": phases.seconds(),
            "fold_records_scanned": counts.records_scanned,
            "fold_customers": counts.customers,
            "summaries_written": counts.summaries_written,
            "customers_written": counts.customers_written,
            "conflicts": counts.conflicts,
            "failed_customers": counts.failed_customers,
            "records_per_s_fold": round(counts.records_scanned / fold_seconds),
            "records_per_s_baseline": round(found / baseline),
            "ratio": round(ratio, 2),
            "target_max_ratio": TARGET_TIME_RATIO,
            "met": ratio <= TARGET_TIME_RATIO
            and counts.records_scanned == found == found_again == records,
        }
    finally:
        pair.stop()


# --- memory: a fake repository ---------------------------------------------------------------


class PagedRecords:
    """A FoldRepository whose buckets hold `records` records of `customers` customer-months
    (round-robin within a bucket, 1 ms apart), made page by page when scanned; reads find
    nothing stored, commits are dropped. It keeps no record itself."""

    def __init__(self, customers: int, records: int, now: datetime) -> None:
        self.month = month_of(now)
        self.start = now - timedelta(days=1)
        self.now = now
        by_bucket: dict[int, list[str]] = {b: [] for b in range(BUCKETS)}
        for i in range(customers):
            cid = f"mem_{i:05d}"
            by_bucket[fold_bucket(cid, self.month, BUCKETS)].append(cid)
        share = records / customers
        self.customers = by_bucket
        self.sizes = {b: round(len(c) * share) for b, c in by_bucket.items()}
        self.commits = 0
        self._lock = threading.Lock()

    def _record(self, bucket: int, n: int) -> NewRecord:
        """Record `n` of the bucket, built as the Firestore adapter builds it from a snapshot's
        fields (new strings, a Sums, a datetime per record)."""
        customers = self.customers[bucket]
        recorded_at = self.start + timedelta(milliseconds=n)
        data: dict[str, Any] = {
            "customer_id": customers[n % len(customers)],
            MONTH_KEY_FIELD: counter_doc_id(customers[n % len(customers)], self.month),
            RECORDED_AT_FIELD: recorded_at,
            "scenes_generated": 1,
            "episodes_generated": 10 + n % 90,
            "cost_cents": 1550 + n % 7,
            "compute_minutes": 12.5 + n % 3,
            "storage_gb": 0.75,
        }
        split = split_counter_doc_id(str(data[MONTH_KEY_FIELD]))
        assert split is not None
        return NewRecord(split[0], split[1], record_sums(data), recorded_at)

    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        return [Watermark(b, None, None, self.now) for b in buckets]

    def scan_records(
        self, bucket: int, after: datetime | None, upto: datetime, page_size: int, read_time: Any
    ) -> Iterator[list[NewRecord]]:
        first = 0 if after is None else int((after - self.start) / timedelta(milliseconds=1)) + 1
        last = min(self.sizes[bucket], int((upto - self.start) / timedelta(milliseconds=1)) + 1)
        for start in range(first, last, page_size):
            yield [self._record(bucket, n) for n in range(start, min(start + page_size, last))]

    def set_watermark(self, watermark: Watermark, value: datetime) -> bool:
        return True

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        customer = Snapshot(
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1}, 1
        )
        return CustomerState(customer, dict.fromkeys(months))

    def commit(self, commit: Commit) -> None:
        with self._lock:
            self.commits += 1

    def count_month(self, customer_id: str, month: str, upto: datetime) -> Sums:
        return Sums()

    def month_summaries(self, month: str, after: str | None, limit: int) -> list[str]:
        return []

    def read_close(self) -> Snapshot | None:
        return Snapshot({"closed_through": previous_month(self.month)}, 1)

    def set_close(self, data: Mapping[str, Any], token: Any) -> Any:
        return 1

    def pending_markers(self, limit: int) -> list[Marker]:
        return []

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        return False

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        pass

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        return set()


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def memory_child(customers: int, records: int, max_records: int) -> dict[str, Any]:
    """One fold over the fake repository, in this (fresh) process: RSS before and peak."""
    config = FoldConfig(buckets=BUCKETS, lag=LAG, max_records=max_records)
    # One record per customer first: loads what a fold imports, starts its thread pools.
    fold_once(PagedRecords(customers, customers, datetime.now(UTC)), config, "warm")
    repo = PagedRecords(customers, records, datetime.now(UTC))
    before = _rss_kib()
    seconds, counts = fold_once(repo, config, "memory")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "records_available": records,
        "records_scanned": counts.records_scanned,
        "capped": counts.capped,
        "commits": repo.commits,
        "rss_before_fold_mib": round(before / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - before) / 1024, 1),
        "seconds": round(seconds, 2),
    }


def run_child(customers: int, records: int, max_records: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            f"{customers},{records},{max_records}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measure_memory(customers: int, records: int) -> dict[str, Any]:
    from shared.settings import load_settings  # noqa: PLC0415

    cap = load_settings({}).usage_fold_max_records

    def pair(max_records: int) -> dict[str, Any]:
        one = run_child(customers, records, max_records)
        ten = run_child(customers, 10 * records, max_records)
        ratio = ten["peak_rss_mib"] / one["peak_rss_mib"]
        return {
            "max_records": max_records,
            "1x": one,
            "10x": ten,
            "peak_rss_ratio": round(ratio, 2),
            "growth_ratio": round(ten["growth_mib"] / max(one["growth_mib"], 0.1), 2),
            "bytes_per_record_held": round(
                ten["growth_mib"] * 1024 * 1024 / max(1, ten["records_scanned"])
            ),
        }

    default = pair(cap)
    at_cap = pair(records)
    return {
        "how": "one fold over a fake FoldRepository, each size in a fresh subprocess",
        "customer_months": customers,
        **default,
        "target_max_ratio": TARGET_RSS_RATIO,
        "met": default["peak_rss_ratio"] <= TARGET_RSS_RATIO,
        "at_cap": at_cap,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-time", action="store_true", help="only the memory measurement")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logs.configure("json", level=logging.WARNING)  # stdout is the JSON result
    if args.memory_child:
        customers, records, max_records = map(int, args.memory_child.split(","))
        print(json.dumps(memory_child(customers, records, max_records)))
        return 0
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "fold_scale"}
    result["memory"] = measure_memory(args.customers, args.records)
    if not args.skip_time:
        result["time"] = measure_time(args.customers, args.records, args.workers)
    result["targets_met"] = all(result[k]["met"] for k in ("memory", "time") if k in result)
    if "time" in result:  # the headline figures, for the table (bench/table.py)
        result["time_ratio"] = result["time"]["ratio"]
        result["time_ratio_target"] = TARGET_TIME_RATIO
    result["peak_rss_ratio"] = result["memory"]["peak_rss_ratio"]
    result["peak_rss_ratio_target"] = TARGET_RSS_RATIO
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    emit(__file__, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
