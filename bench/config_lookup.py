"""Cold vs warm CustomerConfigService lookups on the real Firestore emulator; prints JSON.

Cold = cache cleared before each lookup (one BatchGetDocuments of scene, customer, customer
flags and `_global`); warm = served from the cache (no RPC). Ratios compare the two within
this run; absolute times depend on the machine.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit
from google.cloud import firestore

from devstack.emulators import start_emulators
from devstack.pubsub import PubSubHelper
from shared import logs
from shared.config.adapters import FirestoreConfigReader
from shared.config_service import CustomerConfigService

WARMUP = 300
ROUNDS = 300


def timed(fn: Any, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _invalidation_latency(pair: Any, client: Any) -> float:
    """Median ms from publishing a change announcement to the warm service showing it."""
    helper = PubSubHelper(pair.project)
    topic = helper.create_topic("config-invalidations")
    samples = []
    with CustomerConfigService(FirestoreConfigReader(client=client), ttl_seconds=300) as service:
        for n in range(10):
            service.get_customer_config("c1")  # warm
            org = f"org {n}"
            client.collection("customers").document("c1").update({"organization_name": org})
            body = json.dumps({"collection": "customers", "document_id": "c1"})
            start = time.perf_counter()
            helper.publish(topic, body, ordering_key="c1")
            while service.get_customer_config("c1").customer.organization_name != org:
                time.sleep(0.002)
            samples.append((time.perf_counter() - start) * 1000)
    helper.close()
    return statistics.median(samples)


def _fallback_latency(pair: Any, client: Any) -> float:
    """ms until a cold lookup answers (stale defaults) with the Firestore JVM stopped."""
    service = CustomerConfigService(
        FirestoreConfigReader(client=client), live=False, timeout_seconds=1.0
    )
    pair.pause_firestore()
    try:
        start = time.perf_counter()
        assert service.get_customer_config("c1").stale
        return (time.perf_counter() - start) * 1000
    finally:
        pair.resume_firestore()


def main() -> None:
    logs.configure("text")
    for handler in logs.get_logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)  # stdout carries the JSON result only
    with start_emulators("demo-bench-config") as pair:
        pair.export()
        client = firestore.Client(project=pair.project)
        client.collection("customers").document("c1").set(
            {"schema_version": 1, "bundle_tier": "pro"}
        )
        client.collection("feature_flags").document("c1").set(
            {"schema_version": 1, "sim2real": True}
        )
        client.collection("feature_flags").document("_global").set(
            {"schema_version": 1, "tactile": False}
        )
        client.collection("scenes").document("s1").set(
            {"schema_version": 1, "customer_id": "c1", "data_pack_tier": "full"}
        )
        service = CustomerConfigService(FirestoreConfigReader(client=client), live=False)

        def cold() -> None:
            service.cache_clear()
            service.get_scene_config("s1", customer_id="c1")

        def warm() -> None:
            service.get_scene_config("s1", customer_id="c1")

        timed(cold, WARMUP)  # JIT warm-up of the emulator
        before = service.stats["round_trips"]
        cold_times = timed(cold, ROUNDS)
        cold_rpcs = (service.stats["round_trips"] - before) / ROUNDS
        before = service.stats["round_trips"]
        warm_times = timed(warm, ROUNDS)
        warm_rpcs = (service.stats["round_trips"] - before) / ROUNDS
        invalidation_ms = _invalidation_latency(pair, client)
        fallback_ms = _fallback_latency(pair, client)
        cold_ms = statistics.median(cold_times) * 1000
        warm_ms = statistics.median(warm_times) * 1000
        emit(
            __file__,
            {
                "bench": "config_lookup",
                "rounds": ROUNDS,
                "cold_median_ms": round(cold_ms, 3),
                "warm_median_ms": round(warm_ms, 4),
                "cold_over_warm": round(cold_ms / warm_ms, 1),
                "round_trips_per_cold_lookup": cold_rpcs,
                "round_trips_per_warm_lookup": warm_rpcs,
                "invalidation_visible_median_ms": round(invalidation_ms, 1),
                "paused_firestore_stale_answer_ms": round(fallback_ms, 1),
                "read_timeout_ms": 1000,
            },
            indent=1,
        )


if __name__ == "__main__":
    main()
