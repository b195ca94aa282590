"""How fast the fold folds changed customer-months, against a bare client doing the least (JSON).

    python bench/fold_scale.py [--customers 2000] [--shards 4] [--rounds 2]

Each round writes `--shards` shard increments for each of `--customers` customers (one month),
then times (a) the baseline: a bare client streaming the changed shards of every bucket with the
fold's own query and committing one summary per customer-month in batches of 500 (the reads
and writes any fold must do, without guards, customers or alerts), and (b) one fold
(`functions.fold.service.run_fold`, real adapters) over the same changes. Both run against the
Firestore emulator on this machine; the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devstack.emulators import start_emulators  # noqa: E402
from functions.fold.adapters import FirestoreFoldRepository  # noqa: E402
from functions.fold.service import FoldConfig, run_fold  # noqa: E402
from shared import queries  # noqa: E402
from shared.counters import counter_doc_id, fold_bucket  # noqa: E402
from shared.firestore_values import server_timestamp  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.times import month_of  # noqa: E402

PROJECT = "demo-bench-fold"
BUCKETS = 16


class NoAlerts:
    def publish_alert(self, data: bytes, attributes: Any) -> str:
        raise AssertionError("unlimited quotas: no alert expected")


def write_round(db: Any, customers: list[str], shards: int, month: str) -> None:
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment  # noqa: PLC0415

    batch, n = db.batch(), 0
    for cid in customers:
        for k in range(shards):
            ref = (
                db.collection("usage_counters")
                .document(counter_doc_id(cid, month))
                .collection("shards")
                .document(str(k))
            )
            batch.set(
                ref,
                {
                    "records": Increment(1),
                    "scenes_generated": Increment(1),
                    "episodes_generated": Increment(3),
                    "customer_id": cid,
                    "month": month,
                    "fold_bucket": fold_bucket(cid, month, BUCKETS),
                    "updated_at": SERVER_TIMESTAMP,
                },
                merge=True,
            )
            n += 1
            if n % 500 == 0:
                batch.commit()
                batch = db.batch()
    batch.commit()


def baseline(db: Any, since: datetime) -> float:
    started = time.perf_counter()
    sums: dict[str, int] = {}
    for bucket in range(BUCKETS):
        query = queries.changed_shards(db, bucket, since, limit=100_000)
        for snap in query.stream():
            parent = snap.reference.parent.parent.id
            sums[parent] = sums.get(parent, 0) + int(snap.get("scenes_generated") or 0)
    batch = db.batch()
    for n, (doc_id, scenes) in enumerate(sums.items(), 1):
        batch.set(db.collection("bench_baseline").document(doc_id), {"scenes": scenes})
        if n % 500 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    pair = start_emulators(PROJECT)
    try:
        pair.export()
        settings = load_settings({**pair.env, "GOOGLE_CLOUD_PROJECT": PROJECT})
        from google.cloud import firestore  # noqa: PLC0415

        db = firestore.Client(project=PROJECT)
        run = uuid.uuid4().hex[:6]
        customers = [f"fs_{run}_{i:05d}" for i in range(args.customers)]
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
        repo = FirestoreFoldRepository(settings, db)
        config = FoldConfig(buckets=BUCKETS, overlap=timedelta(0), workers=args.workers)
        month = month_of(datetime.now(UTC))
        rounds = []
        for n in range(args.rounds + 1):  # round 0 warms the JVM and creates the summaries
            since = datetime.now(UTC) - timedelta(seconds=1)
            write_round(db, customers, args.shards, month)
            base = baseline(db, since)
            started = time.perf_counter()
            counts = run_fold(
                repo,
                NoAlerts(),
                now=datetime.now(UTC),
                run_id=f"bench-{n}",
                config=config,
                server_time=server_timestamp(),
            )
            took = time.perf_counter() - started
            if n == 0:
                continue
            rounds.append(
                {
                    "baseline_s": round(base, 3),
                    "fold_s": round(took, 3),
                    "ratio": round(took / base, 3),
                    "customers_per_s": round(counts.customers / took, 1),
                    "customers": counts.customers,
                    "shards_scanned": counts.shards_scanned,
                    "summaries_written": counts.summaries_written,
                    "customers_written": counts.customers_written,
                    "conflicts": counts.conflicts,
                    "failed": counts.failed_customers,
                }
            )
        ratios = sorted(r["ratio"] for r in rounds)
        print(
            json.dumps(
                {
                    "benchmark": "fold_scale",
                    "customers": args.customers,
                    "shards_per_customer": args.shards,
                    "workers": args.workers,
                    "rounds": rounds,
                    "ratio_median": ratios[len(ratios) // 2],
                },
                indent=2,
            )
        )
    finally:
        pair.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
