"""`blueprint inspect ...` through the real CLI on the Firestore emulator: exit codes for each
mistake (one error line), and pagination with --cursor that neither repeats nor misses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.emulators import Emulators
from tests.cli_support import Case, exit_code_test, run

pytestmark = pytest.mark.usefixtures("cli_logs")


CASES: list[Case] = [
    (["inspect", "usage", "--customer", "lab_001", "--month", "2026-13"], 2, "--month"),
    (["inspect", "usage", "--month", "2025-01"], 2, "--customer"),
    (["inspect", "customers", "--page-size", "0"], 2, "--page-size"),
    (["inspect", "customers", "--cursor", "not-a-cursor"], 2, "inspect customers"),
    (["inspect", "rejections", "--since", "20250110"], 2, "--since"),
    (["inspect", "customers", "nobody_here"], 1, "unknown customer 'nobody_here'"),
]


test_exit_codes = exit_code_test(CASES)


def test_customer_pages_follow_their_cursor(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(4):  # listed even though not valid customers: inspect shows what is there
        firestore_client.collection("customers").document(f"extra_{n}").set({"n": n})
    code, out, err = run(["inspect", "customers", "--json", "--all"], capsys)
    assert code == 0, err
    every = [item["id"] for item in json.loads(out)["items"]]
    assert len(every) >= 5
    seen: list[str] = []
    cursor: str | None = None
    while True:
        argv = ["inspect", "customers", "--json", "--page-size", "1"]
        code, out, err = run([*argv, "--cursor", cursor] if cursor else argv, capsys)
        assert code == 0, err
        page = json.loads(out)
        assert len(page["items"]) <= 1
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every  # no duplicates, none missed, same order


def test_every_listing_answers(seeded: Emulators, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["inspect", "usage", "--customer", "lab_001", "--month", "2025-01"],
        ["inspect", "rejections"],
        ["inspect", "dead-letters"],
        ["inspect", "alerts"],
        ["inspect", "resets"],
        ["inspect", "customers", "lab_001"],
    ):
        code, out, err = run([*argv, "--json"], capsys)
        assert code == 0, (argv, err)
        assert "items" in json.loads(out), argv
