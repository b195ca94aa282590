"""`python -m devstack fire-reset` and `outage` without a suite, the start-up's try-it block, and
the live log's decisions (no network)."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import pytest

from devstack import cli
from devstack.decisions import decision_of
from devstack.runner import try_it_lines
from ops.localstack import STATE_FILE_ENV


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("blueprint", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return record


def test_fire_reset_without_a_suite_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(STATE_FILE_ENV, str(tmp_path / "state.json"))
    assert cli.main(["fire-reset"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: no local suite is running: start one with `make run`\n"
    assert captured.out == ""


@pytest.mark.parametrize("pid_alive", [False, True])
def test_fire_reset_after_the_suite_stopped_removes_the_stale_state(
    pid_alive: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:  # a port nothing listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tmp_path / "state.json"
    # A dead pid, or a live one (pid reuse) whose Pub/Sub emulator is gone.
    pid = __import__("os").getpid() if pid_alive else 2**22 + 12345
    state.write_text(
        json.dumps(
            {
                "project": "demo-x",
                "firestore": f"127.0.0.1:{port}",
                "pubsub": f"127.0.0.1:{port}",
                "quota_reset_topic": "quota-reset-schedule",
                "pid": pid,
            }
        )
    )
    monkeypatch.setenv(STATE_FILE_ENV, str(state))
    assert cli.main(["fire-reset", "--month", "2026-11"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "no local suite is running (removed the stale" in err
    assert "make run" in err
    assert "urlopen" not in err
    assert "Errno" not in err
    assert not state.exists()


@pytest.mark.parametrize("month", ["2026-13", "Dec", "2026-1"])
def test_fire_reset_month_must_be_a_month(month: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fire-reset", "--month", month])
    assert exit_.value.code == 2
    assert "expected YYYY-MM" in capsys.readouterr().err


def test_reset_payload_names_the_month_only_when_asked() -> None:
    assert cli.reset_payload("2026-11")["period"] == "2026-11"
    assert "period" not in cli.reset_payload(None)  # the function takes the publish time's month


@pytest.mark.parametrize(
    ("message", "fields", "decision"),
    [
        (
            "usage message rejected: unknown_customer: customer_id='x': ...",
            {"decision": "rejected"},
            "rejected:unknown_customer",
        ),
        (
            "usage message rejected: invalid_event: timestamp=1: ...",
            {"decision": "rejected-before"},
            "rejected-before:invalid_event",
        ),
        ("anything", {"decision": "rejected", "kind": "oversized"}, "rejected:oversized"),
        ("usage recorded", {"decision": "recorded"}, "recorded"),
        (
            "quota reset 2026-12: reset 3 customers, skipped 1, errors 0, complete",
            {"period": "2026-12", "dry_run": False, "complete": True, "seen": 4, "reset": 3},
            "reset 2026-12: reset 3, skipped 0",
        ),
        (
            "quota reset 2026-12: would reset ...",
            {"period": "2026-12", "dry_run": True, "complete": False, "seen": 400, "reset": 7},
            "would-reset 2026-12: reset 7, skipped 0, incomplete",
        ),
        ("quota reset refused: expected a body", {"event_id": "1"}, "reset-refused"),
        ("quota reset 2026-12: customer c: bad", {"period": "2026-12", "issue": "error"}, None),
        ("something else", {}, None),
    ],
)
def test_live_log_decisions(message: str, fields: dict[str, object], decision: str | None) -> None:
    assert decision_of(_record(message, **fields)) == decision


def test_outage_without_a_suite_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(STATE_FILE_ENV, str(tmp_path / "state.json"))
    assert cli.main(["outage", "--seconds", "5"]) == 1
    assert capsys.readouterr().err == (
        "error: no local suite is running: start one with `make run`\n"
    )


@pytest.mark.parametrize("seconds", ["0", "-3", "soon", "3601"])
def test_outage_seconds_must_be_a_sensible_duration(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["outage", "--seconds", seconds])
    assert exit_.value.code == 2
    assert "seconds" in capsys.readouterr().err


def test_the_start_up_ends_with_the_commands_to_type_next() -> None:
    lines = try_it_lines("2026-12", ".venv/bin/")
    text = "\n".join(lines)
    for command in (
        ".venv/bin/blueprint usage send --customer lab_001 --action scene_generated "
        "--scene scene_kitchen_v2 --episodes 3",
        ".venv/bin/blueprint inspect customers lab_001",
        ".venv/bin/blueprint usage report --customer lab_001 --month 2026-12 --chart usage.png",
        ".venv/bin/blueprint watch alerts",
        ".venv/bin/python -m devstack outage --seconds 20",
    ):
        assert f"#   {command}" in text
    # The README's first hour says the block shows its commands: the same ones.
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    hour = " ".join(readme.split("## Your first hour")[1].split("\n## ")[0].split())
    for command in re.findall(
        r"`(\.venv/bin/blueprint (?:usage send|inspect customers)[^`]*)`", hour
    ):
        assert f"#   {command}" in text, command
    assert lines[-1].startswith("# Ctrl-C stops everything")
    assert all(line.startswith("#") for line in lines)
    with_console = try_it_lines("2026-12", console_url="http://127.0.0.1:8080/")
    assert "#   open the console: http://127.0.0.1:8080/" in with_console
