"""Helpers shared by the usage benchmarks (not a benchmark itself: `make bench` skips `_*.py`)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from functions.usage.records import build_record  # noqa: E402
from shared.ids import usage_record_id  # noqa: E402
from shared.models import BundleTier, UsageEvent  # noqa: E402
from shared.pricing import estimate_cost  # noqa: E402

T = TypeVar("T")
PROJECT = "demo-bench-usage"


def event_body(n: int, customer_id: str, run: str) -> dict[str, Any]:
    """A scene_generated event with episodes, compute and storage (a typical usage event)."""
    return {
        "schema_version": 1,
        "event_id": f"{run}-{n}",
        "customer_id": customer_id,
        "scene_id": f"scene_{n % 50}",
        "action": "scene_generated",
        "timestamp": "2025-01-10T14:30:00Z",
        "episodes_generated": 10 + n % 90,
        "compute_minutes": 12.5,
        "storage_gb": 0.75,
        "details": {"batch_size": 10, "quality_level": "high"},
    }


def seed_customers(client: Any, ids: Sequence[str]) -> None:
    """Create customers (pro, unlimited quota, counters in the current period)."""
    batch = client.batch()
    for i, cid in enumerate(ids, 1):
        batch.set(
            client.collection("customers").document(cid),
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1},
        )
        if i % 400 == 0:
            batch.commit()
            batch = client.batch()
    batch.commit()


@dataclass(frozen=True)
class BareWrite:
    """One event's write, computed before the clock runs (the bare baselines time the write
    only, not the function's validation and pricing)."""

    record_id: str
    record: dict[str, Any]


def bare_write(body: dict[str, Any], buckets: int = 16) -> BareWrite:
    """The record the function writes for `body` (the same id and fields)."""
    event = UsageEvent.model_validate(body)
    cost = estimate_cost(event, BundleTier.PRO)
    return BareWrite(usage_record_id(event), build_record(event, cost, "bare", buckets))


def bare_commit(client: Any, write: BareWrite) -> None:
    """The same write by a bare client: `create` of the record with `recorded_at` = the
    server's time (what the function's repository does, without its retry wrapper)."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

    client.collection("usage_tracking").document(write.record_id).create(
        {**write.record, "recorded_at": SERVER_TIMESTAMP}, timeout=30
    )


def run_concurrently(items: Sequence[T], work: Callable[[T], None], workers: int) -> float:
    """Run `work` over `items` with `workers` threads; return items per second."""
    lock = threading.Lock()
    position = 0
    errors: list[BaseException] = []

    def loop() -> None:
        nonlocal position
        while True:
            with lock:
                if position >= len(items) or errors:
                    return
                item = items[position]
                position += 1
            try:
                work(item)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"a benchmark worker failed: {errors[0]!r}") from errors[0]
    return len(items) / elapsed
