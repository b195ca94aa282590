"""Benchmark of the monthly reset on the Firestore emulator; prints one JSON object.

For each size (default 10,000 and 100,000 customers) the same documents are
1. streamed and batch-updated by a bare client (the baseline: no pages, no preconditions, no
   audit, no validation), and
2. reset by `functions.reset.run_reset` (pages, per-document preconditions, audit, validation),
alternately, each in its own subprocess, several rounds; `time_ratio` = median reset time /
median baseline time at the largest size (target <= 1.3). Every round uses a later month, so
every customer is reset every time. The reset subprocess reports its own peak RSS
(`ru_maxrss`); `rss_ratio` = peak at the largest size / peak at the smallest (target <= 1.2).

    python bench/reset_scale.py [--sizes 10000,100000] [--rounds 2]

Uses the emulator named by FIRESTORE_EMULATOR_HOST if set, else starts its own (and stops it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, run_on_emulator

PROJECT = "demo-blueprint-bench"
FIELD = "scenes_generated_this_month"


def _client() -> Any:
    from google.cloud import firestore  # noqa: PLC0415

    return firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", PROJECT))


def _month(index: int) -> str:
    year, month = divmod(2027 * 12 + index, 12)
    return f"{year:04d}-{month + 1:02d}"


def seed(collection: str, n: int) -> float:
    """Write `n` customers still counting December 2026 (two writers in parallel)."""
    client = _client()
    col = client.collection(collection)

    def chunk(start: int) -> None:
        batch = client.batch()
        for i in range(start, min(start + 500, n)):
            batch.set(
                col.document(f"cust-{i:07d}"),
                {
                    "schema_version": 1,
                    "bundle_tier": "pro",
                    "organization_name": f"Org {i}",
                    "email": f"ops{i}@example.org",
                    "monthly_scene_quota": 100 if i % 10 else -1,
                    FIELD: i % 50,
                    "total_scenes_generated": 1000 + i,
                    "quota_period": "2026-12",
                },
            )
        batch.commit()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chunk, range(0, n, 500)))
    return time.perf_counter() - started


def child_baseline(collection: str, period: str) -> dict[str, Any]:
    """The bare client: stream every document, update it in WriteBatches of 500."""
    from google.cloud import firestore  # noqa: PLC0415

    client = _client()
    started = time.perf_counter()
    batch, pending, n = client.batch(), 0, 0
    for snap in client.collection(collection).stream():
        batch.update(
            snap.reference,
            {FIELD: 0, "quota_period": period, "quota_reset_at": firestore.SERVER_TIMESTAMP},
        )
        pending += 1
        n += 1
        if pending == 500:
            batch.commit()
            batch, pending = client.batch(), 0
    if pending:
        batch.commit()
    return {"seconds": time.perf_counter() - started, "written": n}


def child_reset(collection: str, period: str) -> dict[str, Any]:
    """The reset service with its Firestore repository."""
    from functions.reset import FirestoreResetRepository, run_reset  # noqa: PLC0415
    from shared import logs  # noqa: PLC0415

    logs.configure("text", level=30)  # the summary line is not part of the timing
    repo = FirestoreResetRepository(_client(), collection, collection + "_audit", timeout=120)
    started = time.perf_counter()
    # The benchmark's months lie ahead (2027 on): the run is as of the start of its month, as a
    # scheduled one would be (a month after `now` is refused).
    from shared.times import month_start  # noqa: PLC0415

    summary = run_reset(repo, period, month_start(period))
    return {"seconds": time.perf_counter() - started, "written": summary.reset}


def run_child(mode: str, collection: str, period: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (its own peak RSS)."""
    out = subprocess.run(
        [sys.executable, __file__, "child", mode, collection, period],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(sizes: list[int], rounds: int) -> dict[str, Any]:
    """Seed, warm up, then alternate baseline and reset rounds per size."""
    results: dict[str, Any] = {"sizes": {}}
    month = 0
    warm = "bench_reset_warmup"
    seed(warm, 3000)
    for mode in ("baseline", "reset"):
        run_child(mode, warm, _month(month))
        month += 1
    for n in sizes:
        collection = f"bench_reset_{n}"
        seed_seconds = seed(collection, n)
        base, mine, rss, base_rss = [], [], [], []
        for _ in range(rounds):
            b = run_child("baseline", collection, _month(month))
            r = run_child("reset", collection, _month(month + 1))
            month += 2
            if b["written"] != n or r["written"] != n:
                raise RuntimeError(f"expected {n} writes, got baseline {b} reset {r}")
            base.append(b["seconds"])
            mine.append(r["seconds"])
            rss.append(r["peak_rss_mb"])
            base_rss.append(b["peak_rss_mb"])
        results["sizes"][str(n)] = {
            "seed_seconds": round(seed_seconds, 2),
            "baseline_seconds": [round(x, 2) for x in base],
            "reset_seconds": [round(x, 2) for x in mine],
            "time_ratio": round(statistics.median(mine) / statistics.median(base), 3),
            "reset_docs_per_second": round(n / statistics.median(mine)),
            "reset_peak_rss_mb": round(max(rss), 1),
            "baseline_peak_rss_mb": round(max(base_rss), 1),
        }
    big, small = str(max(sizes)), str(min(sizes))
    results["time_ratio"] = results["sizes"][big]["time_ratio"]
    results["time_ratio_target"] = 1.3
    results["rss_ratio"] = round(
        results["sizes"][big]["reset_peak_rss_mb"] / results["sizes"][small]["reset_peak_rss_mb"], 3
    )
    results["rss_ratio_target"] = 1.2
    results["rounds"] = rounds
    return results


def main() -> int:
    """Entry point (also the child mode used for each measurement)."""
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        mode, collection, period = sys.argv[2:5]
        fn = child_baseline if mode == "baseline" else child_reset
        result = fn(collection, period)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated customer counts")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/reset pairs per size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    return run_on_emulator(PROJECT, lambda: measure(sizes, args.rounds), __file__)


if __name__ == "__main__":
    raise SystemExit(main())
