"""Start-up of `blueprint` (typer + rich): `--help` and a usage error, against bare Python.

Prints one JSON object: median wall seconds of N fresh interpreters per case, and each case's
ratio to the baseline (`python -c pass`) and to `python -c "import argparse"` of the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import emit

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15
CASES = {
    "baseline: python -c pass": ["-c", "pass"],
    "argparse import": ["-c", "import argparse"],
    "blueprint --help": ["-m", "ops.cli", "--help"],
    "blueprint usage report --help": ["-m", "ops.cli", "usage", "report", "--help"],
    "blueprint usage report --month 2026-13 (exit 2)": [
        "-m",
        "ops.cli",
        "usage",
        "report",
        "--customer",
        "c",
        "--month",
        "2026-13",
    ],
}


def median_seconds(args: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    medians = {name: median_seconds(args) for name, args in CASES.items()}
    base = medians["baseline: python -c pass"]
    argparse_import = medians["argparse import"]
    emit(
        __file__,
        {
            "runs": RUNS,
            "median_seconds": {k: round(v, 4) for k, v in medians.items()},
            "ratio_to_baseline": {k: round(v / base, 2) for k, v in medians.items()},
            "ratio_to_argparse_import": {
                k: round(v / argparse_import, 2) for k, v in medians.items()
            },
        },
    )


if __name__ == "__main__":
    main()
