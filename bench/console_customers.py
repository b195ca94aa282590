"""Benchmark of the console's customers page against `blueprint inspect customers` for the same
page, on the Firestore emulator; prints one JSON object.

Seeds 10,000 customers, each with this month's summary. Then, alternating round by round at
the first page and at a page in the middle (a cursor after `cust_05000`):
1. baseline: `blueprint inspect customers --page-size 50 [--cursor C]` run in-process on the
   same client (the page's read plus the CLI's table);
2. the console: `GET /?cursor=C` through Flask (reachability probe, the same page's read, one
   batched read of its 50 summaries, the template).
`ratio` = median console time / median baseline time (target at most 1.5); `read_ms` is the
bare page read (`ops.inspect.customers`) for reference.

    python bench/console_customers.py [--customers 10000] [--rounds 15]

Uses the emulator named by FIRESTORE_EMULATOR_HOST if set, else starts its own (and stops it).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_on_emulator

PROJECT = "demo-blueprint-bench-console"
PAGE_SIZE = 50
TARGET = 1.5


def _client() -> Any:
    from google.cloud import firestore  # noqa: PLC0415

    return firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", PROJECT))


def seed(client: Any, customers: int, month: str) -> None:
    """`customers` customer documents and their month summaries, 250 of each per commit."""
    now = datetime.now(UTC)
    for first in range(0, customers, 250):
        batch = client.batch()
        for i in range(first, min(first + 250, customers)):
            cid = f"cust_{i:05d}"
            batch.set(
                client.collection("customers").document(cid),
                {
                    "schema_version": 1,
                    "bundle_tier": ("standard", "pro", "enterprise")[i % 3],
                    "monthly_scene_quota": 100,
                    "scenes_generated_this_month": i % 120,
                    "quota_period": month,
                    "updated_at": now,
                },
            )
            batch.set(
                client.collection("usage_counters").document(f"{cid}_{month}"),
                {
                    "customer_id": cid,
                    "month": month,
                    "records": i % 500,
                    "scenes_total": i % 120,
                    "cost_cents": 37 * i,
                    "folded_at": now,
                },
            )
        batch.commit()


def _timed(run: Callable[[str | None], object], cursor: str | None) -> float:
    started = time.perf_counter()
    run(cursor)
    return (time.perf_counter() - started) * 1000


def measure(customers: int, rounds: int) -> dict[str, Any]:
    from ops import inspect  # noqa: PLC0415
    from ops.cli import main  # noqa: PLC0415
    from ops.console.app import create_app  # noqa: PLC0415
    from ops.paging import encode_cursor  # noqa: PLC0415
    from shared.times import month_of  # noqa: PLC0415

    client = _client()
    month = month_of(datetime.now(UTC))
    started = time.perf_counter()
    seed(client, customers, month)
    seed_seconds = time.perf_counter() - started
    console = create_app(lambda: client).test_client()
    middle = encode_cursor("customers", {}, [f"cust_{customers // 2:05d}"])

    def cli(cursor: str | None) -> None:
        argv = ["inspect", "customers", "--page-size", str(PAGE_SIZE)]
        out = io.StringIO()
        code = main(
            [*argv, "--cursor", cursor] if cursor else argv, client_factory=lambda: client, out=out
        )
        assert code == 0, out.getvalue()[:200]
        assert out.getvalue().count("cust_") >= PAGE_SIZE

    def page(cursor: str | None) -> None:
        answer = console.get(f"/?cursor={cursor}" if cursor else "/")
        assert answer.status_code == 200
        assert answer.get_data(as_text=True).count('data-customer="cust_') == PAGE_SIZE

    def read(cursor: str | None) -> None:
        assert len(inspect.customers(client, page_size=PAGE_SIZE, cursor=cursor).items) == PAGE_SIZE

    for cursor in (None, middle):  # warm both paths once (imports, templates, channels)
        cli(cursor), page(cursor), read(cursor)
    times: dict[str, list[float]] = {"cli": [], "console": [], "read": []}
    for n in range(rounds):
        cursor = None if n % 2 == 0 else middle
        times["cli"].append(_timed(cli, cursor))
        times["console"].append(_timed(page, cursor))
        times["read"].append(_timed(read, cursor))
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median["console"] / median["cli"]
    return {
        "benchmark": "console_customers",
        "customers": customers,
        "page_size": PAGE_SIZE,
        "rounds": rounds,
        "seed_seconds": round(seed_seconds, 1),
        "cli_inspect_ms": round(median["cli"], 1),
        "console_page_ms": round(median["console"], 1),
        "read_ms": round(median["read"], 1),
        "ratio": round(ratio, 2),
        "target": TARGET,
        "within_target": ratio <= TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    return run_on_emulator(PROJECT, lambda: measure(args.customers, args.rounds), __file__)


if __name__ == "__main__":
    sys.exit(main())
