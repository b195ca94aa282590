"""One hot customer at 8-way concurrency vs the same events spread over 100 customers.

Starts its own emulators; runs the usage service with the real Firestore adapter in-process
(8 threads, the deployed settings: customer cache on). `hot`: every event for one customer (one
document takes every Increment); `spread`: the same events over 100 customers. Rounds alternate
after a warm-up; ratio = hot rate / spread rate. Target >= 0.8. Prints JSON.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _usage_common import PROJECT, event_body, run_concurrently, seed_customers

from devstack.emulators import start_emulators
from functions.usage import CustomerCache, Limits, PubSubMessage, UsageService
from functions.usage_firestore import FirestoreUsageRepository, PubSubAlertPublisher
from shared import logs
from shared.settings import load_settings

WORKERS = 8
EVENTS = int(os.environ.get("BENCH_EVENTS", "800"))
WARMUP = 300
ROUNDS = 2
SPREAD = [f"spread_{i:03d}" for i in range(100)]


def main() -> None:
    from google.cloud import firestore  # noqa: PLC0415

    logs.configure("json", level=logging.WARNING)  # one INFO line per event would swamp stdout
    emulators = start_emulators(PROJECT)
    try:
        emulators.export()
        client = firestore.Client(project=PROJECT)
        seed_customers(client, ["hot", *SPREAD])
        settings = load_settings(emulators.env)
        service = UsageService(
            FirestoreUsageRepository(settings, client),
            PubSubAlertPublisher(settings),
            limits=Limits(),
            customer_cache=CustomerCache(timedelta(seconds=settings.usage_customer_cache_seconds)),
        )

        def messages(run: str, spread: bool) -> list[PubSubMessage]:
            out = []
            for n in range(EVENTS if not run.startswith("warm") else WARMUP):
                cid = SPREAD[n % len(SPREAD)] if spread else "hot"
                data = json.dumps(event_body(n, cid, run)).encode()
                out.append(PubSubMessage(f"{run}-{n}", data))
            return out

        def handle(m: PubSubMessage) -> None:
            service.handle(m, datetime.now(UTC))

        run_concurrently(messages("warm-h", False), handle, WORKERS)
        run_concurrently(messages("warm-s", True), handle, WORKERS)
        hot_rates, spread_rates = [], []
        for r in range(ROUNDS):
            spread_rates.append(run_concurrently(messages(f"s{r}", True), handle, WORKERS))
            hot_rates.append(run_concurrently(messages(f"h{r}", False), handle, WORKERS))
        hot_doc = client.collection("customers").document("hot").get().to_dict()
        expected_hot = WARMUP + ROUNDS * EVENTS
        hot = statistics.mean(hot_rates)
        spread = statistics.mean(spread_rates)
        print(
            json.dumps(
                {
                    "bench": "usage_hot_customer",
                    "workers": WORKERS,
                    "events_per_round": EVENTS,
                    "rounds": ROUNDS,
                    "hot_events_per_s": round(hot, 1),
                    "spread_100_customers_events_per_s": round(spread, 1),
                    "ratio": round(hot / spread, 2),
                    "target_min_ratio": 0.8,
                    "hot_counter": hot_doc.get("total_scenes_generated"),
                    "hot_counter_expected": expected_hot,
                }
            )
        )
    finally:
        emulators.stop()


if __name__ == "__main__":
    main()
