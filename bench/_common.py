"""What every emulator benchmark does around its measurement (not a benchmark itself: `make
bench` skips `_*.py`): use the emulator named by FIRESTORE_EMULATOR_HOST if set, else start one
(and stop it); print the results, with the whole run's `total_seconds`, as one JSON object."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_on_emulator(project: str, measure: Callable[[], dict[str, Any]]) -> int:
    """`measure()` on the Firestore emulator; prints its results; the exit status (0)."""
    started = time.perf_counter()
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        results = measure()
    else:
        from devstack.emulators import start_emulators  # noqa: PLC0415

        with start_emulators(project) as emulators:
            os.environ.update(emulators.env)
            results = measure()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))
    return 0
