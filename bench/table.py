"""One Markdown table of the last run of each benchmark, from `bench/results/*.json`.

    python -m bench.table [DIRECTORY]     # (or python bench/table.py) prints the table

Each benchmark stores its run through `bench/_common.py`'s `emit`. A row: the benchmark, what it
compares (its docstring's first line), its ratios (keys holding `ratio`, with their `_target`),
its other top-level figures, the date and the machine. Not a benchmark itself: `make bench`
skips it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

RESULTS: Final = Path(__file__).resolve().parent / "results"
MAX_FIGURES: Final = 6
"""Top-level figures shown per row at most (the JSON file has them all)."""

HEADER: Final = (
    "| benchmark | compares | ratio | figures | date | machine |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def is_ratio(key: str) -> bool:
    """A ratio's key: `time_ratio`, `ratio_event`, `cold_over_warm`."""
    return "ratio" in key or "_over_" in key


def ratios(results: Mapping[str, Any]) -> str:
    """`time_ratio 1.16 (target 1.3)`; a map of ratios as `name: case 1.2, case 3.4`."""
    said = []
    for key, value in results.items():
        if not is_ratio(key) or key.endswith("_target"):
            continue
        if _number(value):
            target = results.get(f"{key}_target")
            said.append(f"{key} {value}" + (f" (target {target})" if _number(target) else ""))
        elif isinstance(value, Mapping):
            cases = ", ".join(f"{k} {v}" for k, v in value.items() if _number(v))
            said.append(f"{key}: {cases}")
    return "; ".join(said) or "-"


def figures(results: Mapping[str, Any]) -> str:
    """The other top-level numbers, in the order printed: `total_seconds 12.3`."""
    said = [
        f"{key} {value}" for key, value in results.items() if _number(value) and not is_ratio(key)
    ]
    more = len(said) - MAX_FIGURES
    return ", ".join(said[:MAX_FIGURES]) + (f" (+{more} more)" if more > 0 else "") or "-"


def machine_text(machine: Mapping[str, Any]) -> str:
    """`x86_64, 2 CPUs, Python 3.11.9`."""
    return f"{machine.get('arch', '?')}, {machine.get('cpus', '?')} CPUs, Python " + str(
        machine.get("python", "?")
    )


def row(run: Mapping[str, Any]) -> str:
    """One benchmark's row."""
    results = run.get("results") or {}
    cells = [
        f"`{run.get('benchmark', '?')}`",
        str(run.get("compares", "")),
        ratios(results),
        figures(results),
        str(run.get("date", "?"))[:10],
        machine_text(run.get("machine") or {}),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render(runs: Iterable[Mapping[str, Any]]) -> str:
    """The table of `runs`, by benchmark name."""
    ordered = sorted(runs, key=lambda r: str(r.get("benchmark", "")))
    return "\n".join([HEADER, *(row(r) for r in ordered)]) + "\n"


def load(directory: Path = RESULTS) -> list[dict[str, Any]]:
    """Every stored run of `directory` (a file that is not a run's JSON is skipped, said on
    stderr)."""
    runs = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"skipped {path.name}: {exc}\n")
            continue
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            runs.append(data)
        else:
            sys.stderr.write(f"skipped {path.name}: not a stored benchmark run\n")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Print the table (exit 1 with one line when there is nothing to show)."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else RESULTS
    runs = load(directory)
    if not runs:
        sys.stderr.write(f"no benchmark results in {directory}: run `make bench` first\n")
        return 1
    sys.stdout.write(render(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
