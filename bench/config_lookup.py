"""Cold vs warm CustomerConfigService lookups on the real Firestore emulator; prints JSON.

Cold = cache cleared before each lookup (one BatchGetDocuments of scene, customer, customer
flags and `_global`); warm = served from the cache (no RPC). Ratios compare the two within
this run; absolute times depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.cloud import firestore

from devstack.emulators import start_emulators
from shared.config_adapters import FirestoreConfigReader
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


def main() -> None:
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
        cold_ms = statistics.median(cold_times) * 1000
        warm_ms = statistics.median(warm_times) * 1000
        print(
            json.dumps(
                {
                    "bench": "config_lookup",
                    "rounds": ROUNDS,
                    "cold_median_ms": round(cold_ms, 3),
                    "warm_median_ms": round(warm_ms, 4),
                    "cold_over_warm": round(cold_ms / warm_ms, 1),
                    "round_trips_per_cold_lookup": cold_rpcs,
                    "round_trips_per_warm_lookup": warm_rpcs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
