"""`blueprint flags rollout` through the real CLI on the Firestore emulator: exit codes for each
mistake (one error line), and a rollout to every customer then its undo."""

from __future__ import annotations

import json

import pytest

from devstack.emulators import Emulators
from tests.cli_support import Case, exit_code_test, run

pytestmark = pytest.mark.usefixtures("cli_logs")


CASES: list[Case] = [
    (["flags"], 2, "Missing command"),
    (["flags", "rollout"], 2, "Missing argument"),
    (["flags", "rollout", "tactile"], 2, "--percent is required"),
    (["flags", "rollout", "tactile", "--percent", "0"], 2, "--percent"),
    (["flags", "rollout", "tactile", "--percent", "101"], 2, "--percent"),
    (["flags", "rollout", "tactile", "--percent", "lots"], 2, "--percent"),
    (["flags", "rollout", "teleport", "--percent", "10"], 2, "feature='teleport'"),
    (["flags", "rollout", "tactile", "--percent", "10", "--tier", "gold"], 2, "tier='gold'"),
]


test_exit_codes = exit_code_test(CASES)


def test_rollout_then_undo(seeded: Emulators, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["flags", "rollout", "tactile", "--percent", "100", "--dry-run", "--json"], capsys
    )
    assert code == 0, err
    dry = json.loads(out)
    assert dry["dry_run"]
    assert dry["selected"]

    code, out, err = run(["flags", "rollout", "tactile", "--percent", "100", "--json"], capsys)
    assert code == 0, err
    done = json.loads(out)
    assert done["selected"] == dry["selected"]
    assert sorted(done["turned_on"] + done["already_on"] + done["skipped_invalid"]) == sorted(
        done["selected"]
    )

    code, out, err = run(["flags", "rollout", "tactile", "--undo", "--json"], capsys)
    assert code == 0, err
    undone = json.loads(out)
    assert sorted(undone["reverted"]) == sorted(done["turned_on"])

    code, out, err = run(["flags", "rollout", "tactile", "--percent", "100"], capsys)
    assert code == 0, err
    assert "tactile at 100 %" in out
