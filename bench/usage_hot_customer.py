"""One hot customer at 8-way concurrency vs the same events spread over 100 customers, under
production's per-document write limit.

Starts its own emulators; runs the usage service as deployed (`build_service`: counter shards,
customer cache, group commit) with the real Firestore adapter in-process, 8 threads, through
the contention simulator (tests/contention.py: a token bucket per document, ~1 write/s with a
small burst; a commit past it fails with ABORTED as production's does, and the adapter's
bounded retry handles it as it would a real one). A delivery that still fails is redelivered
(queued again), as Pub/Sub would. `hot`: every event for one customer; `spread`: the same
events over 100 customers. Rounds alternate after a warm-up; ratio = hot rate / spread rate.
Target >= 0.8. Prints JSON (with the same run without group commit for comparison).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _usage_common import PROJECT, ROOT, event_body, seed_customers

sys.path.insert(0, str(ROOT))

from devstack.delivery import deliver_all
from devstack.emulators import start_emulators
from functions.edge.pubsub import Message
from functions.usage.adapters import FirestoreUsageRepository
from functions.usage.batching import LANES as DEFAULT_LANES
from functions.usage.batching import GroupCommitter
from functions.usage.entry import build_service
from functions.usage.service import UsageService
from shared import logs
from shared.settings import load_settings
from tests.contention import ContendedClient, TokenBuckets

WORKERS = 8
EVENTS = int(os.environ.get("BENCH_EVENTS", "1200"))
WARMUP = 300
ROUNDS = 2
SPREAD = [f"spread_{i:03d}" for i in range(100)]
LANES = int(os.environ.get("BENCH_LANES", str(DEFAULT_LANES)))


def deliver(service: UsageService, messages: list[Message]) -> tuple[float, int]:
    """Events/s with WORKERS threads; a delivery that raises is queued again (redelivery)."""
    start = time.perf_counter()
    _, redelivered = deliver_all(lambda m: service.handle(m, datetime.now(UTC)), messages, WORKERS)
    return len(messages) / (time.perf_counter() - start), redelivered


class Setup:
    """One configuration of the service (with or without group commit) and its buckets."""

    def __init__(self, client: Any, env: dict[str, str], group_commit: bool) -> None:
        self.buckets = TokenBuckets(rate=1.0, burst=3.0)
        flag = str(group_commit).lower()
        settings = load_settings({**env, "BLUEPRINT_USAGE_GROUP_COMMIT": flag})
        service = build_service(settings, ContendedClient(client, self.buckets))
        if service.committer is not None:
            assert isinstance(service.repository, FirestoreUsageRepository)
            window = settings.usage_group_commit_window_ms / 1000
            service = replace(
                service,
                committer=GroupCommitter(service.repository, lanes=LANES, window=window),
            )
        self.service = service
        self.tag = "g" if group_commit else "n"
        self.hot: list[float] = []
        self.spread: list[float] = []
        self.redelivered = 0

    def messages(self, run: str, spread: bool, count: int) -> list[Message]:
        out = []
        for n in range(count):
            cid = SPREAD[n % len(SPREAD)] if spread else "hot"
            data = json.dumps(event_body(n, cid, f"{self.tag}{run}")).encode()
            out.append(Message(f"{self.tag}{run}-{n}", data))
        return out

    def round(self, r: int) -> None:
        rate, again = deliver(self.service, self.messages(f"s{r}", True, EVENTS))
        self.spread.append(rate)
        self.redelivered += again
        rate, again = deliver(self.service, self.messages(f"h{r}", False, EVENTS))
        self.hot.append(rate)
        self.redelivered += again

    def result(self) -> dict[str, Any]:
        hot, spread = statistics.mean(self.hot), statistics.mean(self.spread)
        stats = self.service.committer.stats if self.service.committer else None
        return {
            "hot_events_per_s": round(hot, 1),
            "spread_100_customers_events_per_s": round(spread, 1),
            "ratio": round(hot / spread, 2),
            "redeliveries": self.redelivered,
            "aborted_commits": self.buckets.aborted,
            "admitted_commits": self.buckets.admitted,
            "records_per_batch_commit": round(stats.records / max(1, stats.commits), 2)
            if stats
            else None,
        }


def main() -> None:
    from google.cloud import firestore  # noqa: PLC0415

    logs.configure("json", level=logging.WARNING)  # one INFO line per event would swamp stdout
    emulators = start_emulators(PROJECT)
    try:
        emulators.export()
        client = firestore.Client(project=PROJECT)
        seed_customers(client, ["hot", *SPREAD])
        grouped_setup = Setup(client, emulators.env, group_commit=True)
        single_setup = Setup(client, emulators.env, group_commit=False)
        for setup in (grouped_setup, single_setup):  # warm up both (JIT, caches, channels)
            deliver(setup.service, setup.messages("warm-h", False, WARMUP))
            deliver(setup.service, setup.messages("warm-s", True, WARMUP))
        for r in range(ROUNDS):  # alternate, so both see the same machine load
            grouped_setup.round(r)
            single_setup.round(r)
        grouped, single = grouped_setup.result(), single_setup.result()
        settings = load_settings(emulators.env)
        print(
            json.dumps(
                {
                    "bench": "usage_hot_customer",
                    "workers": WORKERS,
                    "events_per_round": EVENTS,
                    "rounds": ROUNDS,
                    "counter_shards": settings.usage_counter_shards,
                    "group_commit_lanes": LANES,
                    "simulated_limit": "1 write/s per document, burst 3",
                    **grouped,
                    "target_min_ratio": 0.8,
                    "without_group_commit": single,
                }
            )
        )
    finally:
        emulators.stop()


if __name__ == "__main__":
    main()
