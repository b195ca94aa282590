"""The benchmarks' stored results and the Markdown table rendered from them (no benchmark runs)."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import _common, table

SCRIPT = Path(_common.ROOT) / "bench" / "reset_scale.py"


def test_emit_prints_the_results_and_stores_them_with_date_and_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {"time_ratio": 1.16, "time_ratio_target": 1.3, "rounds": 2}
    written = _common.emit(str(SCRIPT), results, directory=tmp_path)
    assert json.loads(capsys.readouterr().out) == results  # stdout: the JSON, as before
    assert written == tmp_path / "reset_scale.json"
    stored = json.loads(written.read_text())
    assert stored["benchmark"] == "reset_scale"
    assert stored["compares"].startswith("Benchmark of the monthly reset")
    assert stored["machine"] == {
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    assert datetime.strptime(stored["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert stored["results"] == results


SAMPLE = [
    {
        "benchmark": "timestamp_rule",
        "compares": "CPU cost of the timestamp rule vs pydantic's own parsing.",
        "date": "2026-12-06T21:20:49Z",
        "machine": {"arch": "x86_64", "cpus": 2, "python": "3.11.7"},
        "results": {"calls": 20000, "utc_us": 1.367, "ratio_utc": 3.44, "ratio_event": 1.36},
    },
    {
        "benchmark": "reset_scale",
        "compares": "Benchmark of the monthly reset | on the emulator.",
        "date": "2026-12-01T10:00:00Z",
        "machine": {"arch": "aarch64", "cpus": 4, "python": "3.12.1"},
        "results": {
            "time_ratio": 1.16,
            "time_ratio_target": 1.3,
            "rss_ratio": 1.03,
            "ratio_to_baseline": {"--help": 4.9, "usage error": 2.95},
            "sizes": {"10000": {"time_ratio": 1.1}},
            "total_seconds": 301.5,
            "note": "text is not a figure",
        },
    },
]


def test_table_renders_one_row_per_benchmark_sorted_by_name() -> None:
    text = table.render(SAMPLE)
    lines = text.splitlines()
    assert lines[0] == "| benchmark | compares | ratio | figures | date | machine |"
    assert lines[2] == (
        "| `reset_scale` | Benchmark of the monthly reset \\| on the emulator. | "
        "time_ratio 1.16 (target 1.3); rss_ratio 1.03; ratio_to_baseline: --help 4.9, "
        "usage error 2.95 | total_seconds 301.5 | 2026-12-01 | aarch64, 4 CPUs, Python 3.12.1 |"
    )
    assert lines[3] == (
        "| `timestamp_rule` | CPU cost of the timestamp rule vs pydantic's own parsing. | "
        "ratio_utc 3.44; ratio_event 1.36 | calls 20000, utc_us 1.367 | 2026-12-06 | "
        "x86_64, 2 CPUs, Python 3.11.7 |"
    )
    assert len(lines) == 4


def test_table_main_reads_the_stored_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert table.main([str(tmp_path)]) == 1
    assert "no benchmark results" in capsys.readouterr().err
    for run in SAMPLE:
        (tmp_path / f"{run['benchmark']}.json").write_text(json.dumps(run))
    (tmp_path / "broken.json").write_text("{")
    assert table.main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == table.render(SAMPLE)
    assert "skipped broken.json" in captured.err
