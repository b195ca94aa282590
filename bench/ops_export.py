"""Benchmark of `ops.export.customer_totals` on the Firestore emulator; prints one JSON object.

For each size (default 4,000 and 20,000 usage records of one month over 50 customers):
1. baseline: the same pages of the month query read bare (no validation), summing floats;
2. the export: those pages, validation of every record, exact Decimal sums, the customers read.
`time_ratio` = median export time / median baseline time at the largest size (the export's own
cost); `paging_ratio` = the bare pages / one unpaged stream of the whole month (the emulator
re-scans from the start for every cursor, Firestore seeks: this is the emulator's price, and the
unpaged stream has one deadline for the whole month); `memory_ratio` = the export's peak traced
allocation (tracemalloc) at the largest size / at the smallest: about 1 when memory holds a
page and one total per customer, not the month's records.

    python bench/ops_export.py [--sizes 4000,20000] [--rounds 2]

Uses the emulator named by FIRESTORE_EMULATOR_HOST if set, else starts its own (and stops it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_on_emulator

PROJECT = "demo-blueprint-bench-export"
CUSTOMERS = 50


def _client() -> Any:
    from google.cloud import firestore  # noqa: PLC0415

    return firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", PROJECT))


def seed(client: Any, month_index: int, n: int) -> str:
    """`n` records in month 2025-`month_index` over CUSTOMERS customers; the month."""
    start = datetime(2025, month_index, 1, tzinfo=UTC)
    col = client.collection("usage_tracking")
    for first in range(0, n, 500):
        batch = client.batch()
        for i in range(first, min(first + 500, n)):
            batch.set(
                col.document(f"m{month_index:02d}-r{i:07d}"),
                {
                    "schema_version": 1,
                    "customer_id": f"cust-{i % CUSTOMERS:03d}",
                    "scene_id": "scene-1",
                    "action": "episodes_generated" if i % 3 else "scene_generated",
                    "timestamp": start + timedelta(seconds=i * 7),
                    "episodes_generated": i % 11,
                    "compute_minutes": (i % 97) / 10,
                    "storage_gb": (i % 13) / 10,
                    "billable": True,
                    "estimated_cost": (i % 1000) / 100,
                },
            )
        batch.commit()
    return f"2025-{month_index:02d}"


def baseline(client: Any, month: str) -> int:
    """The same pages of the month's records, bare: no validation, float sums per customer."""
    from shared import queries  # noqa: PLC0415

    sums: dict[str, float] = defaultdict(float)
    after = None
    while True:
        page = list(queries.usage_page(client, month, after=after, limit=PAGE_SIZE[0]).stream())
        for snap in page:
            data = snap.to_dict() or {}
            sums[data["customer_id"]] += data["estimated_cost"]
        if len(page) < PAGE_SIZE[0]:
            return len(sums)
        after = [page[-1].get("timestamp"), page[-1].id]


def unpaged(client: Any, month: str) -> int:
    """One stream of the whole month (what paging avoids: one deadline for everything)."""
    from shared import queries  # noqa: PLC0415

    return sum(1 for _ in queries.usage_page(client, month).stream())


PAGE_SIZE = [500]


def export(client: Any, month: str) -> int:
    """The export, consumed."""
    from ops.export import customer_totals  # noqa: PLC0415

    now = datetime(2025, 12, 31, tzinfo=UTC)
    return sum(1 for _ in customer_totals(client, month, now=now, page_size=PAGE_SIZE[0]))


def _timed(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _peak(fn: Any, *args: Any) -> int:
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(sizes: list[int], rounds: int) -> dict[str, Any]:
    client = _client()
    batch = client.batch()
    for c in range(CUSTOMERS):
        batch.set(
            client.collection("customers").document(f"cust-{c:03d}"),
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 100},
        )
    batch.commit()
    per_size: dict[int, dict[str, Any]] = {}
    for index, size in enumerate(sizes, start=1):
        month = seed(client, index, size)
        _timed(unpaged, client, month)  # warm the emulator's query path
        flat = [_timed(unpaged, client, month) for _ in range(rounds)]
        base = [_timed(baseline, client, month) for _ in range(rounds)]
        mine = [_timed(export, client, month) for _ in range(rounds)]
        per_size[size] = {
            "month": month,
            "unpaged_seconds": round(statistics.median(flat), 3),
            "baseline_seconds": round(statistics.median(base), 3),
            "export_seconds": round(statistics.median(mine), 3),
            "export_peak_kib": round(_peak(export, client, month) / 1024, 1),
            "records_per_second": round(size / statistics.median(mine)),
        }
    small, large = per_size[sizes[0]], per_size[sizes[-1]]
    return {
        "benchmark": "ops_export",
        "customers": CUSTOMERS,
        "page_size": PAGE_SIZE[0],
        "sizes": per_size,
        "time_ratio": round(large["export_seconds"] / large["baseline_seconds"], 2),
        "paging_ratio": round(large["baseline_seconds"] / large["unpaged_seconds"], 2),
        "memory_ratio": round(large["export_peak_kib"] / small["export_peak_kib"], 2),
        "records_ratio": round(sizes[-1] / sizes[0], 2),
    }


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="4000,20000", help="comma-separated record counts")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each per size")
    parser.add_argument("--page-size", type=int, default=500, help="the export's page size")
    args = parser.parse_args()
    PAGE_SIZE[0] = args.page_size
    sizes = sorted(int(s) for s in args.sizes.split(","))
    return run_on_emulator(PROJECT, lambda: measure(sizes, args.rounds), __file__)


if __name__ == "__main__":
    raise SystemExit(main())
