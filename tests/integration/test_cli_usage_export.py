"""`blueprint usage export` through the real CLI on the Firestore emulator: exit codes for each
mistake (one error line), and a CSV export whose totals equal the sum of its records."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from devstack.emulators import Emulators
from shared.times import month_of, next_month_start
from tests.cli_support import Case, exit_code_test, run

FUTURE = month_of(next_month_start(month_of(datetime.now(UTC))))


pytestmark = pytest.mark.usefixtures("cli_logs")


CASES: list[Case] = [
    (["usage", "export"], 2, "--month"),
    (["usage", "export", "--month", "2026-13"], 2, "expected YYYY-MM"),
    (["usage", "export", "--month", FUTURE], 2, "future month"),
    (["usage", "export", "--month", "2025-01", "--format", "xml"], 2, "expected csv or jsonl"),
    (
        ["usage", "export", "--month", "2025-01", "--output", "/no/such/dir/x.csv"],
        1,
        "usage export: --output '/no/such/dir/x.csv': directory '/no/such/dir' does not exist",
    ),
]


test_exit_codes = exit_code_test(CASES)


def test_csv_totals_are_the_sum_of_records(
    seeded: Emulators, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(["usage", "export", "--month", "2025-01", "--records"], capsys)
    assert code == 0, err
    records = list(csv.DictReader(io.StringIO(out)))
    assert records
    code, out, err = run(["usage", "export", "--month", "2025-01"], capsys)
    assert code == 0, err
    totals = list(csv.DictReader(io.StringIO(out)))
    for who in {r["customer_id"] for r in records}:
        mine = [r for r in records if r["customer_id"] == who]
        (row,) = [t for t in totals if t["customer_id"] == who]
        assert Decimal(row["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in mine)
        assert int(row["records"]) == len(mine)

    target = tmp_path / "totals.jsonl"
    argv = ["usage", "export", "--month", "2025-01", "--format", "jsonl", "--output", str(target)]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert out == ""
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [x["customer_id"] for x in lines] == [t["customer_id"] for t in totals]
