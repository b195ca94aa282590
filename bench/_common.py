"""What every benchmark shares (not a benchmark itself: `make bench` skips `_*.py`):

- `emit(script, results)`: print the results as one JSON object (what every bench prints) and
  keep them in `bench/results/<name>.json` with the date and the machine they were measured on,
  for `python -m bench.table` (the Markdown table of the last run of each);
- `run_on_emulator(project, measure)`: use the emulator named by FIRESTORE_EMULATOR_HOST if set,
  else start one (and stop it); emit the results with the whole run's `total_seconds`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
"""One `<name>.json` per benchmark, its last run (not tracked by git: figures of a machine)."""


def machine() -> dict[str, Any]:
    """The kind of machine a figure was measured on: ratios depend on it."""
    return {
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def record(script: str, results: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The stored form of one run: the benchmark's name, what it compares (the first line of its
    module docstring), when, where, and its results as printed."""
    path = Path(script)
    doc = _docstring(path)
    return {
        "benchmark": path.stem,
        "compares": doc,
        "date": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "results": results,
    }


def _docstring(path: Path) -> str:
    """The first line of a script's module docstring ("" if it has none or cannot be read)."""
    import ast  # noqa: PLC0415 - only when a result is stored

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ""
    text = ast.get_docstring(tree) or ""
    return " ".join(text.split("\n\n")[0].split())


def emit(
    script: str, results: dict[str, Any], *, indent: int | None = 2, directory: Path | None = None
) -> Path:
    """Print `results` as JSON on stdout and store them for `bench.table`; the file written."""
    print(json.dumps(results, indent=indent))
    target = (directory or RESULTS) / f"{Path(script).stem}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record(script, results), indent=2) + "\n", encoding="utf-8")
    return target


def run_on_emulator(
    project: str, measure: Callable[[], dict[str, Any]], script: str | None = None
) -> int:
    """`measure()` on the Firestore emulator; prints its results (and stores them when `script`,
    the benchmark's `__file__`, is given); the exit status (0)."""
    started = time.perf_counter()
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        results = measure()
    else:
        from devstack.emulators import start_emulators  # noqa: PLC0415

        with start_emulators(project) as emulators:
            os.environ.update(emulators.env)
            results = measure()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    if script is None:
        print(json.dumps(results, indent=2))
    else:
        emit(script, results)
    return 0
