"""The demo as `blueprint seed-demo` (and `make run`) loads it: lab_001's contract is in force and
this month's report explains the seeded count instead of disagreeing with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from devstack.emulators import Emulators
from shared.times import month_of
from tests.cli_support import run

pytestmark = pytest.mark.usefixtures("cli_logs")


def test_this_months_report_explains_the_seeded_start(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    month = month_of(datetime.now(UTC))
    argv = ["usage", "report", "--customer", "lab_001", "--month", month]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert (
        "quota used: 45 of 100 scenes (45.0 %): started the month at 45 (counted before the "
        "records) + 0 scene_generated records"
    ) in out
    code, out, _ = run([*argv, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["quota"]["started_month_at"] == 45


def test_the_demo_customers_contract_is_active(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["inspect", "customers", "lab_001"], capsys)
    assert code == 0, err
    [row] = [line for line in out.splitlines() if "lab_001" in line]
    assert "active" in row
    assert "ended" not in row
