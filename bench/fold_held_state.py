"""What full held maps cost a fold: the same fold with empty bucket states and with every
bucket holding its maximum, on the Firestore emulator (JSON).

    python bench/fold_held_state.py [--entries 2000] [--repeats 5]

Each of the 16 buckets' state documents gets `--entries` held customer-months (20-character
customer ids, none due), then a fold with nothing to do runs `--repeats` times (it reads and
parses the states; nothing changes, so it writes nothing); the baseline is the same fold over
empty states, measured in the same run. Also times one guarded write of a full state document
(what a fold that changes a held map pays per bucket). The ratio is what to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devstack.emulators import start_emulators  # noqa: E402
from functions.fold.adapters import FirestoreFoldRepository  # noqa: E402
from functions.fold.holding import ZERO, held_size  # noqa: E402
from functions.fold.ports import HeldTally  # noqa: E402
from functions.fold.service import FoldConfig, run_fold  # noqa: E402
from shared.counters import fold_bucket  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.times import month_of  # noqa: E402

PROJECT = "demo-bench-held"
BUCKETS = 16


class NoAlerts:
    def publish_alert(self, data: bytes, attributes: Any) -> str:
        raise AssertionError("no alert expected")


def fold_ms(repo: FirestoreFoldRepository, config: FoldConfig, repeats: int) -> list[float]:
    out = []
    for n in range(repeats):
        started = time.perf_counter()
        counts = run_fold(repo, NoAlerts(), now=datetime.now(UTC), run_id=f"b{n}", config=config)
        out.append(round((time.perf_counter() - started) * 1000, 1))
        assert counts.summaries_written == 0, counts
    return out


def held_maps(entries: int, now: datetime) -> dict[int, dict[str, HeldTally]]:
    month = month_of(now)
    maps: dict[int, dict[str, HeldTally]] = {b: {} for b in range(BUCKETS)}
    n = 0
    while min(len(m) for m in maps.values()) < entries:
        cid = f"customer_{n:011d}"
        n += 1
        held = maps[fold_bucket(cid, month, BUCKETS)]
        if len(held) < entries:
            entry = HeldTally(cid, month, now, now, ZERO, 1_000, now)
            held[entry.key] = entry
    return maps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pair = start_emulators(PROJECT)
    try:
        pair.export()
        settings = load_settings({**pair.env, "GOOGLE_CLOUD_PROJECT": PROJECT})
        repo = FirestoreFoldRepository(settings)
        config = FoldConfig(buckets=BUCKETS, write_interval=timedelta(hours=1))
        fold_ms(repo, config, 2)  # warm-up (JIT, connections)
        empty = fold_ms(repo, config, args.repeats)
        now = datetime.now(UTC) - timedelta(seconds=30)
        maps = held_maps(args.entries, now)
        writes = []
        for bucket, held in maps.items():
            [mark] = repo.read_watermarks([bucket])
            started = time.perf_counter()
            assert repo.set_watermark(mark, None, now, held)
            writes.append((time.perf_counter() - started) * 1000)
        full = fold_ms(repo, config, args.repeats)
        [mark] = repo.read_watermarks([0])
        assert len(mark.held) == args.entries
        stored = sum(held_size(h) for h in maps[0].values())
        print(
            json.dumps(
                {
                    "bench": "fold_held_state",
                    "buckets": BUCKETS,
                    "entries_per_bucket": args.entries,
                    "held_bytes_per_bucket": stored,
                    "fold_ms_empty_states": empty,
                    "fold_ms_full_states": full,
                    "ratio": round(statistics.median(full) / statistics.median(empty), 2),
                    "added_ms_per_fold": round(
                        statistics.median(full) - statistics.median(empty), 1
                    ),
                    "state_write_ms_median": round(statistics.median(writes), 1),
                },
                indent=2,
            )
        )
    finally:
        pair.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
