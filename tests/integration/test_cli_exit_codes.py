"""Every `blueprint` command through the real CLI on the Firestore emulator: exit codes (docs/cli.md's
table: 0 done, 1 failed, 2 bad usage), one error line, and `--json` on every command that prints
data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devstack.emulators import Emulators
from shared.times import month_of, next_month_start
from tests.cli_support import run

ROOT = Path(__file__).parents[2]
EXPORT = ROOT / "tests" / "fixtures" / "migration"
NOW = month_of(datetime.now(UTC))
FUTURE = month_of(next_month_start(NOW))


pytestmark = pytest.mark.usefixtures("cli_logs")


# (argv, exit code, what the one error line says; None for success)
CASES: list[tuple[list[str], int, str | None]] = [
    # the program itself
    ([], 2, "Missing command"),
    (["frobnicate"], 2, "No such command"),
    (["--bogus"], 2, "No such option"),
    # migrate
    (["migrate", str(EXPORT), "--skip-invalid", "--dry-run", "--no-progress"], 0, None),
    (["migrate"], 2, "Missing argument 'paths'"),
    (["migrate", str(EXPORT), "--batch-size", "0"], 2, "expected 1 to 500"),
    (["migrate", str(EXPORT), "--batch-size", "many"], 2, "--batch-size"),
    (["migrate", "/no/such/export"], 1, "no such file or directory"),
    (["migrate", str(EXPORT), "--no-progress"], 1, "records are invalid; nothing written"),
    # usage report
    (["usage"], 2, "usage: Missing command"),
    (["usage", "report", "--customer", "lab_001", "--month", "2025-01"], 0, None),
    (["usage", "report", "--customer", "lab_001", "--month", "2025-01", "--csv"], 0, None),
    (["usage", "report", "--month", "2025-01"], 2, "--customer"),
    (["usage", "report", "--customer", "lab_001"], 2, "--month"),
    (["usage", "report", "--customer", "lab_001", "--month", "2026-13"], 2, "expected YYYY-MM"),
    (["usage", "report", "--customer", "lab_001", "--month", "Jan"], 2, "expected YYYY-MM"),
    (["usage", "report", "--customer", "lab_001", "--month", FUTURE], 2, "future month"),
    (["usage", "report", "--customer", "a/b", "--month", "2025-01"], 2, "--customer"),
    (
        ["usage", "report", "--customer", "lab_001", "--month", "2025-01", "--csv", "--json"],
        2,
        "exclude each other",
    ),
    (
        ["usage", "report", "--customer", "lab_001", "--month", "2025-01", "--chart", "x.jpg"],
        1,
        "usage report: --chart 'x.jpg': expected a file name ending in .png",
    ),
    (
        ["usage", "report", "--customer", "ghost", "--month", "2025-01"],
        1,
        "unknown customer 'ghost'",
    ),
    # usage send, watch
    (["usage", "send", "--customer", "lab_001"], 2, "--action"),
    (["usage", "send", "--customer", "lab_001", "--action", "Bad!"], 2, "usage send: --action"),
    (["watch", "everything"], 2, "expected one of alerts, invalidations, rejections"),
    # usage replay
    (["usage", "replay", "--dry-run"], 0, None),
    (["usage", "replay", "--kind", "unknown_customer"], 0, None),
    (["usage", "replay", "--kind", "typo"], 2, "Invalid value for '--kind'"),
    (["usage", "replay", "--since", "yesterday"], 2, "expected RFC 3339"),
    (["usage", "replay", "--customer", "a/b"], 2, "--customer"),
    # quota reset
    (["quota"], 2, "quota: Missing command"),
    (["quota", "reset", "--dry-run", "--no-progress"], 0, None),
    (["quota", "reset"], 2, "pass --dry-run"),
    (["quota", "reset", "--dry-run", "--month", "2026-13"], 2, "expected YYYY-MM"),
    (["quota", "reset", "--dry-run", "--month", FUTURE], 2, "future month"),
    (["quota", "reset", "--yes", "--month", "0000-01"], 2, "expected YYYY-MM"),
    # seed-demo
    (["seed-demo", "--dry-run"], 0, None),
    (["seed-demo", "extra"], 2, "unexpected extra argument"),
    # config
    (["config"], 2, "config: Missing command"),
    (["config", "customer", "lab_001"], 0, None),
    (["config", "customer", "ghost_42"], 1, "config customer: unknown customer 'ghost_42'"),
    (["config", "scene", "scene_kitchen_v2"], 0, None),
    (["config", "customer"], 2, "Missing argument 'ID'"),
    (["config", "customer", "a/b"], 2, "document id"),
    (["config", "scene", "__x__"], 2, "document id"),
    (["config", "scene", "s", "--customer", ""], 2, "--customer"),
    (["config", "scene", "no_such_scene"], 1, "no scene 'no_such_scene'"),
    (["config", "what", "x"], 2, "No such command 'what'"),
]


@pytest.mark.parametrize(("argv", "code", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_exit_codes_of_every_command(
    argv: list[str],
    code: int,
    needle: str | None,
    seeded: Emulators,
    capsys: pytest.CaptureFixture[str],
) -> None:
    got, out, err = run(argv, capsys)
    assert got == code, err
    if needle is None:
        assert "error" not in err
        assert out
        return
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("blueprint: error: ")
    assert needle in lines[0]
    assert "Traceback" not in err


def test_config_scene_of_a_missing_scene_names_it_on_one_line(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["config", "scene", "no_such_scene"], capsys)
    assert (code, out) == (1, "")
    assert err == (
        "blueprint: error: config scene: no scene 'no_such_scene' "
        "(no scenes/no_such_scene document)\n"
    )


def test_a_future_month_is_refused_alike_in_report_and_reset(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(["usage", "report", "--customer", "lab_001", "--month", FUTURE], capsys)
    reset = run(["quota", "reset", "--dry-run", "--month", FUTURE], capsys)
    assert report[0] == reset[0] == 2
    assert report[1] == reset[1] == ""
    said = f"--month {FUTURE}: a future month cannot be"
    assert said in report[2]
    assert said in reset[2]
    assert f"(the current month is {NOW})" in report[2]


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    assert out.count("\n") == 1, out  # one document on one line: easy to pipe into jq
    return json.loads(out)


def test_every_data_command_prints_stable_json(
    seeded: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(["usage", "report", "--customer", "lab_001", "--month", "2025-01"], capsys)
    assert report["customer_id"] == "lab_001"
    assert report["total"] == {
        "records": 1,
        "billable": 1,
        "episodes": 100,
        "compute_minutes": "45.5",
        "storage_gb": "2.3",
        "cost_usd": "15.50",
    }
    assert report["actions"]["episodes_generated"]["cost_usd"] == "15.50"
    assert report["daily_cost_usd"]["2025-01-10"] == "15.50"
    assert report["quota"]["scenes_generated"] == 0
    assert report["skipped"] == []

    reset = _json(["quota", "reset", "--dry-run", "--no-progress"], capsys)
    assert reset["period"] == NOW
    assert reset["dry_run"] is True
    assert {"seen", "reset", "skipped", "errors", "complete"} <= reset.keys()

    replay = _json(["usage", "replay", "--dry-run"], capsys)
    assert (replay["kind"], replay["dry_run"], replay["items"]) == ("dead_letter", True, [])
    assert replay["counts"] == dict.fromkeys(
        ("recorded", "still_rejected", "duplicate", "skipped", "would_replay"), 0
    )

    seed = _json(["seed-demo", "--dry-run"], capsys)
    assert seed == {
        "dry_run": True,
        "configuration_documents": 0,
        "up_to_date": 4,
        "usage_records": 0,
    }

    customer = _json(["config", "customer", "lab_001"], capsys)
    assert customer["tier"] == "pro"
    assert customer["exists"] is True
    assert customer["features"]["sim2real"]["reason"] in {"tier_default", "customer_flag"}

    scene = _json(["config", "scene", "scene_kitchen_v2"], capsys)
    assert scene["customer_id"] == "lab_001"
    assert any(c["field"] == "vla_models" for c in scene["clamped"])
    assert set(scene["settings"]) >= {"vla_models", "max_variations"}

    migrated = _json(["migrate", str(EXPORT), "--skip-invalid", "--dry-run"], capsys)
    assert migrated["refused"] is False
    assert migrated["records"] == 173
    assert migrated["invalid_records"] == 5
    assert migrated["written"] == 214
    assert {p["collection"] for p in migrated["problems"]} <= {"customers", "scenes"}


def test_migrate_json_when_refused_still_lists_the_problems(
    clean_firestore: Emulators, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["migrate", str(EXPORT), "--json"], capsys)
    assert code == 1
    assert "nothing written" in err
    result = json.loads(out)
    assert result["refused"] is True
    assert len({p["id"] for p in result["problems"]}) == 5


def test_the_installed_blueprint_script_exits_0_1_2(seeded: Emulators) -> None:
    """The console script (`blueprint = ops.cli:entry`), not only `main`, returns the codes."""
    script = Path(sys.executable).with_name("blueprint")
    env = {**os.environ, **seeded.env}
    codes = []
    for argv in (
        ["config", "customer", "lab_001", "--json"],
        ["config", "scene", "no_such_scene"],
        ["quota", "reset", "--dry-run", "--month", "2026-13"],
    ):
        done = subprocess.run(
            [str(script), *argv], env=env, capture_output=True, text=True, check=False, timeout=120
        )
        codes.append(done.returncode)
        assert "Traceback" not in done.stderr
    assert codes == [0, 1, 2]
