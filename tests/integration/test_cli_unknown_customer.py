"""A customer id without a document: `config customer` and `usage report` both call it unknown,
in the same words, with exit 1; `config` still shows the defaults it would serve, marked."""

from __future__ import annotations

import json

import pytest

from devstack.emulators import Emulators
from tests.cli_support import run

pytestmark = pytest.mark.usefixtures("cli_logs")

SAME = "unknown customer 'ghost_42' (no customers/ghost_42 document"


def test_config_and_report_call_an_unknown_customer_unknown_alike(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["config", "customer", "ghost_42"], capsys)
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(f"blueprint: error: config customer: {SAME}")
    assert line.endswith("check the id; shown: the defaults it would be served")
    # The defaults are shown, and said to be defaults of an unknown customer.
    first = out.splitlines()[0]
    assert first == (
        "customer ghost_42: tier standard [UNKNOWN: no such document; the defaults it would be "
        "served]"
    )

    code, out, err = run(
        ["usage", "report", "--customer", "ghost_42", "--month", "2025-01"], capsys
    )
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"blueprint: error: usage report: {SAME} and no usage records in")


def test_config_json_of_an_unknown_customer_is_printed_then_exit_1(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["config", "customer", "ghost_42", "--json"], capsys)
    assert code == 1
    answer = json.loads(out)
    assert (answer["customer_id"], answer["exists"], answer["stale"]) == ("ghost_42", False, False)
    assert SAME in err
    code, out, _ = run(["config", "customer", "lab_001"], capsys)
    assert code == 0
    assert "UNKNOWN" not in out
