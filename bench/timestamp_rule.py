"""CPU cost of the models' timestamp rule (shared.times parsing) vs pydantic's own parsing.

`ratio_utc` / `ratio_offset`: `UtcDatetime` (RFC 3339 via `shared.times.parse_rfc3339`, digit
strings and numbers refused, out-of-range instants a field error) / pydantic's `AwareDatetime`,
both validating the same JSON string (`...Z`, `...+05:30`), measured in the same run.
`ratio_event`: a whole `UsageEvent` body through `model_validate_json` / `json.loads` of the
same body (what the model costs over decoding).
Prints JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit
from pydantic import AwareDatetime, TypeAdapter

from shared.models import UsageEvent
from shared.types import UtcDatetime

UTC_TEXT = b'"2025-01-10T14:30:00Z"'
OFFSET_TEXT = b'"2025-01-10T14:30:00.123456+05:30"'
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


def cpu_per_call(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """Best-of-`repeats` CPU seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best


def main() -> None:
    ours = TypeAdapter(UtcDatetime)
    theirs = TypeAdapter(AwareDatetime)
    n = 20000
    out: dict[str, object] = {"bench": "timestamp_rule", "calls": n}
    for name, text in (("utc", UTC_TEXT), ("offset", OFFSET_TEXT)):
        assert ours.validate_json(text) == theirs.validate_json(text)
        mine = cpu_per_call(lambda t=text: ours.validate_json(t), n)
        base = cpu_per_call(lambda t=text: theirs.validate_json(t), n)
        out[f"{name}_us"] = round(mine * 1e6, 3)
        out[f"{name}_pydantic_us"] = round(base * 1e6, 3)
        out[f"ratio_{name}"] = round(mine / base, 2)
    event = cpu_per_call(lambda: UsageEvent.model_validate_json(BODY), n)
    decode = cpu_per_call(lambda: json.loads(BODY), n)
    out["event_us"] = round(event * 1e6, 2)
    out["json_loads_us"] = round(decode * 1e6, 2)
    out["ratio_event"] = round(event / decode, 2)
    emit(__file__, out, indent=None)


if __name__ == "__main__":
    main()
