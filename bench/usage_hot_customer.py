"""One hot customer's burst through the usage function, with folds running: writes per document
under production's per-document write limit (prints JSON).

    python bench/usage_hot_customer.py [--events 1200] [--fold-interval 2]

Starts its own emulators with the write recorder (tests/write_recorder.py: wildcard triggers,
one delivery per write, in commit order). The usage function runs as deployed: its
functions-framework app (`functions/main.py`, `on_usage_event`), served Pub/Sub push envelopes
by 8 threads, all for one customer. Meanwhile a fold (`run_fold`, real adapters) runs every
`--fold-interval` seconds (production: 60; faster here, so that several folds fall inside the
burst), and one more after it, once the records are past the fold's lag.

Figures:
- `busiest_document_10s`: the most writes any one document took in any 10 s (the recorder's
  `ce-time`, whole seconds). Target <= 15 (production's soft limit is about 1 write/s
  sustained per document).
- `max_writes_per_document_per_fold`: after each fold the bench writes a marker document; the
  deliveries between two markers are that fold's writes (the emulator delivers one at a time,
  in commit order). Target: 1 for every document other than the records, and each record
  written once.
- the month summary and the customer's counter hold every event (the fold counted them all).

Production's fold runs every 60 s, so there the summary and the customer document take one
write a minute, whatever the customer's rate; the records share one index prefix
(`(fold_bucket, recorded_at)`, as `(customer_id, timestamp)`), about 500 writes/s each.
There is no hot counter document, so the contention simulator has nothing to play here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit
from _usage_common import PROJECT, ROOT, event_body

sys.path.insert(0, str(ROOT))

from devstack.delivery import push_body
from devstack.emulators import start_emulators
from devstack.functions_host import MAIN_SOURCE
from functions.fold.adapters import FirestoreFoldRepository
from functions.fold.ports import FoldCounts
from functions.fold.service import FoldConfig, run_fold
from functions.usage import entry
from shared import clients, logs
from shared.counters import counter_doc_id
from shared.firestore_values import server_timestamp
from shared.settings import get_settings
from shared.times import month_of
from tests.write_recorder import WriteRecorder

WORKERS = 8
CUSTOMER = "hot"
MARKS = "bench_fold_marks"
LAG_SECONDS = 1.0
TARGET_BUSIEST_10S = 15


class NoAlerts:
    """Unlimited quota: no alert is expected."""

    def publish_alert(self, data: bytes, attributes: Any) -> str:
        raise AssertionError("unlimited quota: no alert expected")


class Folds:
    """Runs a fold every `interval` seconds in a thread; after each, writes a marker document
    (`bench_fold_marks/{n}`) that separates its writes from the next fold's."""

    def __init__(self, db: Any, interval: float) -> None:
        settings = get_settings()
        self.db = db
        self.repo = FirestoreFoldRepository(settings, db)
        self.config = FoldConfig(
            buckets=settings.usage_fold_buckets, lag=timedelta(seconds=LAG_SECONDS)
        )
        self.interval = interval
        self.counts: list[FoldCounts] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def once(self) -> FoldCounts:
        started = time.perf_counter()
        n = len(self.counts)
        counts = run_fold(
            self.repo,
            NoAlerts(),
            now=datetime.now(UTC),
            run_id=f"bench-{n}",
            config=self.config,
            server_time=server_timestamp(),
        )
        self.seconds.append(round(time.perf_counter() - started, 2))
        self.counts.append(counts)
        self.db.collection(MARKS).document(str(n)).set({"fold": n})
        return counts

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.once()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def per_fold(writes: list[tuple[str, datetime]]) -> list[Counter[str]]:
    """The recorded writes split at the fold markers: one Counter of documents per fold (the
    writes before the first fold's marker belong to it), plus what came after the last one."""
    segments: list[Counter[str]] = [Counter()]
    for path, _ in writes:
        if path.startswith(f"{MARKS}/"):
            segments.append(Counter())
        else:
            segments[-1][path] += 1
    return segments


def burst(app: Any, events: int, run: str) -> list[int]:
    """`events` push envelopes of the one customer, 8 threads; the HTTP statuses."""
    bodies = [event_body(n, CUSTOMER, run) for n in range(events)]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for body in bodies:
        body["timestamp"] = now
    statuses: list[int] = []
    lock = threading.Lock()

    def work(chunk: list[int]) -> None:
        http = app.test_client()
        for n in chunk:
            envelope = push_body(
                json.dumps(bodies[n]).encode(),
                f"{run}-{n}",
                f"projects/{PROJECT}/subscriptions/on-usage-event-push",
                {"customer_id": CUSTOMER},
            )
            response = http.post(
                f"/projects/{PROJECT}/topics/usage-events",
                data=envelope,
                content_type="application/json",
            )
            with lock:
                statuses.append(response.status_code)

    threads = [
        threading.Thread(target=work, args=(list(range(i, events, WORKERS)),))
        for i in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def measure(events: int, fold_interval: float) -> dict[str, Any]:
    import functions_framework  # noqa: PLC0415 - heavy
    from google.cloud import firestore  # noqa: PLC0415

    recorder = WriteRecorder()
    pair = start_emulators(PROJECT, functions_emulator=recorder.address)
    try:
        recorder.register(pair.firestore.url, PROJECT)
        pair.export()
        os.environ["BLUEPRINT_USAGE_FOLD_LAG_SECONDS"] = str(LAG_SECONDS)
        get_settings.cache_clear()
        entry.reset_default_service()
        clients.reset_clients()
        settings = get_settings()
        db = firestore.Client(project=PROJECT)
        db.collection(settings.customers_collection).document(CUSTOMER).set(
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1}
        )
        recorder.wait_for(f"{settings.customers_collection}/{CUSTOMER}")
        app = functions_framework.create_app(  # type: ignore[no-untyped-call]
            "on_usage_event", str(MAIN_SOURCE), "cloudevent"
        )
        burst(app, 50, "warm")  # imports, the client's channel, the customer cache
        time.sleep(LAG_SECONDS + 0.5)
        folds = Folds(db, fold_interval)
        folds.once()  # the warm-up's records: counted, not part of the burst's figures
        recorder.wait_quiet(quiet=1.0)
        recorder.clear()
        first = len(folds.counts)
        folds.start()
        started = time.perf_counter()
        statuses = burst(app, events, "burst")
        burst_seconds = time.perf_counter() - started
        folds.stop()
        time.sleep(LAG_SECONDS + 0.5)
        folds.once()  # the rest of the burst, past the lag
        recorder.wait_quiet(quiet=2.0)
        writes = list(recorder.writes)
        segments = per_fold(writes)
        counts = folds.counts[first:]
        tracking = f"{settings.usage_tracking_collection}/"
        record_writes = Counter(p for p, _ in writes if p.startswith(tracking))
        others = [
            Counter({p: n for p, n in seg.items() if not p.startswith(tracking)})
            for seg in segments
        ]
        busiest_other = max((max(seg.values(), default=0) for seg in others), default=0)
        month = month_of(datetime.now(UTC))
        summary = (
            db.collection(settings.usage_counters_collection)
            .document(counter_doc_id(CUSTOMER, month))
            .get()
            .to_dict()
            or {}
        )
        customer = (
            db.collection(settings.customers_collection).document(CUSTOMER).get().to_dict() or {}
        )
        busiest, where = recorder.max_in_window(10.0)
        total = events + 50
        return {
            "bench": "usage_hot_customer",
            "events": events,
            "workers": WORKERS,
            "answered_200": statuses.count(200),
            "burst_seconds": round(burst_seconds, 2),
            "events_per_s": round(events / burst_seconds, 1),
            "fold_interval_seconds": fold_interval,
            "folds": len(counts),
            "fold_seconds": folds.seconds[first:],
            "records_scanned_per_fold": [c.records_scanned for c in counts],
            "record_writes": sum(record_writes.values()),
            "records_written_more_than_once": sum(1 for n in record_writes.values() if n > 1),
            "non_record_writes_per_fold": [sum(seg.values()) for seg in others],
            "fold_own_writes_per_fold": [
                c.summaries_written + c.customers_written + c.watermarks_moved for c in counts
            ],
            "non_record_documents_written": sorted({p for seg in others for p in seg}),
            "max_writes_per_document_per_fold": busiest_other,
            "target_max_writes_per_document_per_fold": 1,
            "busiest_document_10s": busiest,
            "busiest_document": where,
            "target_max_busiest_document_10s": TARGET_BUSIEST_10S,
            "summary_records": summary.get("records"),
            "customer_scenes_generated_this_month": customer.get("scenes_generated_this_month"),
            "expected_count": total,
            "targets_met": busiest <= TARGET_BUSIEST_10S
            and busiest_other <= 1
            and all(n == 1 for n in record_writes.values())
            and len(record_writes) == events
            and summary.get("records") == total
            and customer.get("scenes_generated_this_month") == total,
        }
    finally:
        pair.stop()
        recorder.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1200)
    parser.add_argument("--fold-interval", type=float, default=2.0)
    args = parser.parse_args()
    logs.configure("json", level=logging.WARNING)
    started = time.perf_counter()
    result = measure(args.events, args.fold_interval)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    emit(__file__, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
