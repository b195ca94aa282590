"""Handler CPU per usage event (decode + validate + price, no I/O) vs pydantic alone.

`ratio`: decode the MessagePublishedData envelope, prepare (size, JSON + model, future
timestamp, details storable, record id), price with the customer's tier; divided by
`UsageEvent.model_validate_json` of the same body, measured in the same run. Target <= 3.
`ratio_full`: the whole pure path of the handler, adding the record dict (with the fields the
fold sums it by: bucket, month key, scenes, cents).
Prints JSON.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit

from functions.edge.pubsub import decode_envelope
from functions.usage.intake import prepare
from functions.usage.ports import Limits, Prepared
from functions.usage.records import build_record
from shared.models import BundleTier, Customer, UsageEvent
from shared.pricing import estimate_cost

BODY = json.dumps(
    {
        "schema_version": 1,
        "event_id": "job-42-episodes",
        "customer_id": "lab_001",
        "scene_id": "scene_kitchen_v2",
        "action": "scene_generated",
        "timestamp": "2025-01-10T14:30:00Z",
        "episodes_generated": 100,
        "compute_minutes": 45.5,
        "storage_gb": 2.3,
        "details": {"batch_size": 10, "quality_level": "high"},
    }
).encode()
ENVELOPE = {
    "message": {
        "data": base64.b64encode(BODY).decode(),
        "attributes": {"customer_id": "lab_001"},
        "messageId": "1234567890",
        "publishTime": "2025-01-10T14:30:01.123Z",
    },
    "subscription": "projects/demo-x/subscriptions/usage",
}
NOW = datetime(2025, 1, 15, tzinfo=UTC)
LIMITS = Limits()
CUSTOMER = Customer(schema_version=1, bundle_tier=BundleTier.PRO, monthly_scene_quota=100)


def handler_once() -> None:
    """Decode + validate + price."""
    message = decode_envelope(ENVELOPE, "1234567890")
    prepared = prepare(message, NOW, LIMITS)
    assert isinstance(prepared, Prepared)
    estimate_cost(prepared.event, CUSTOMER.bundle_tier)


def full_once() -> None:
    """Everything the handler computes without I/O."""
    message = decode_envelope(ENVELOPE, "1234567890")
    prepared = prepare(message, NOW, LIMITS)
    assert isinstance(prepared, Prepared)
    cost = estimate_cost(prepared.event, CUSTOMER.bundle_tier)
    build_record(prepared.event, cost, message.message_id, 16)


def pydantic_once() -> None:
    UsageEvent.model_validate_json(BODY)


def cpu_per_call(fn: object, n: int, repeats: int = 5) -> float:
    """Best-of-`repeats` CPU seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            fn()  # type: ignore[operator]
        best = min(best, (time.process_time() - start) / n)
    return best


def main() -> None:
    n = 5000
    for _ in range(2000):  # warm up every path
        full_once()
        pydantic_once()
    baseline = cpu_per_call(pydantic_once, n)
    handler = cpu_per_call(handler_once, n)
    full = cpu_per_call(full_once, n)
    emit(
        __file__,
        {
            "bench": "usage_cpu",
            "events": n,
            "handler_cpu_us_per_event": round(handler * 1e6, 2),
            "pydantic_model_validate_json_us": round(baseline * 1e6, 2),
            "ratio": round(handler / baseline, 2),
            "full_pure_path_us_per_event": round(full * 1e6, 2),
            "ratio_full": round(full / baseline, 2),
            "target_max_ratio": 3.0,
        },
    )


if __name__ == "__main__":
    main()
