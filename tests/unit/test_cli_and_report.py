"""CLI error handling with fakes, and the usage report's sums (no network)."""

from __future__ import annotations

import io
import sys
import types
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from ops.cli import main
from ops.usage_report import build_report, render_csv, render_table, write_chart
from shared.settings import get_settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str], **kwargs: Any) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out, **kwargs)
    return code, out.getvalue(), capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("blueprint: error: ")
    assert "Traceback" not in err
    return lines[0]


def unreachable() -> Any:
    class Client:
        def collection(self, name: str) -> Any:
            raise gexc.ServiceUnavailable("connection refused")

    return Client()


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        ([], 2, "Missing command"),
        (["migrate"], 2, "Missing argument 'paths'"),
        (["usage", "report", "--month", "2025-01"], 2, "--customer"),
        (["usage", "report", "--customer", "c", "--month", "Jan"], 2, "expected YYYY-MM"),
        (["inspect", "alerts", "--month", "9999-12"], 2, "to 9999-11"),
        (["flags", "rollout", "tactile", "--percent", "10", "--undo"], 2, "give one"),
        (["usage", "recount", "--month", "9999-12", "--dry-run"], 2, "to 9999-11"),
        (["migrate", "/no/such/export"], 1, "no such file or directory"),
        (["migrate", "x", "--batch-size", "900"], 2, "expected 1 to 500"),
        (["quota", "reset"], 2, "pass --dry-run"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
    ],
)
def test_user_mistakes_are_one_line_and_non_zero(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, err = run(argv, capsys, client_factory=unreachable)
    assert got == code
    assert needle in one_error_line(err)


def test_firestore_unreachable_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        ["usage", "report", "--customer", "c", "--month", "2025-01"],
        capsys,
        client_factory=unreachable,
    )
    assert code == 1
    assert "Firestore request failed (ServiceUnavailable)" in one_error_line(err)


def test_bad_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLUEPRINT_CONFIG_READ_TIMEOUT_SECONDS", "soon")
    get_settings.cache_clear()
    try:
        code, _, err = run(["seed-demo"], capsys, client_factory=unreachable)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 1
    assert "BLUEPRINT_CONFIG_READ_TIMEOUT_SECONDS='soon'" in one_error_line(err)


def test_quota_reset_dry_run_calls_the_reset_function(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    class Summary:
        def log_fields(self) -> dict[str, Any]:
            return {"period": "2025-02", "reset": 3, "skipped": 1}

    class Repository:
        def __init__(self, client: Any, customers: str, audits: str, timeout: float) -> None:
            self.args = (client, customers, audits)

        def count_customers(self) -> int:  # the progress bar's total
            return 4

    def run_reset(
        repo: Repository, period: str, now: datetime, *, dry_run: bool, progress: Any
    ) -> Summary:
        calls.append((repo.args, period, now.tzinfo, dry_run))
        return Summary()

    module = types.ModuleType("functions.reset")
    module.run_reset = run_reset  # type: ignore[attr-defined]
    module.FirestoreResetRepository = Repository  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "functions.reset", module)
    code, out, _ = run(
        ["quota", "reset", "--dry-run", "--month", "2025-02"], capsys, client_factory=lambda: "C"
    )
    assert code == 0
    assert calls == [(("C", "customers", "quota_resets"), "2025-02", UTC, True)]
    assert "reset: 3" in out
    assert out.startswith("dry run: quota reset for 2025-02")


def _record(ts: str, action: str, cost: float, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "customer_id": "c1",
        "scene_id": "s1",
        "action": action,
        "timestamp": datetime.fromisoformat(ts).replace(tzinfo=UTC),
        "billable": cost > 0,
        "estimated_cost": cost,
        **extra,
    }


def test_report_sums_decimals_exactly_and_counts_quota() -> None:
    records = [
        ("a", _record("2025-01-01T00:00:00", "scene_generated", 0.1, compute_minutes=0.1)),
        ("b", _record("2025-01-01T12:00:00", "scene_generated", 0.2, compute_minutes=0.2)),
        ("c", _record("2025-01-31T23:59:59", "episodes_generated", 15.5, episodes_generated=100)),
        ("d", _record("2025-02-01T00:00:00", "scene_generated", 9.99)),  # next month
        ("e", {"schema_version": 1, "customer_id": "c1", "action": "x"}),  # invalid
    ]
    customer = {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 4}
    report = build_report("c1", "2025-01", records, customer)
    assert report.total.cost == Decimal("15.80")  # float sum would be 15.799999...
    assert report.total.compute_minutes == Decimal("0.3")
    assert report.actions["scene_generated"].records == 2
    assert report.daily_cost[date(2025, 1, 1)] == Decimal("0.3")
    assert len(report.daily_cost) == 31
    assert report.quota_text == "2 of 4 scenes (50.0 %)"
    assert [s.split(":")[0] for s in report.skipped] == ["e"]
    csv_text = render_csv(report)
    assert csv_text.splitlines()[-1] == "TOTAL,3,100,0.3,0,15.80"
    table = render_table(report)
    assert "quota used: 2 of 4 scenes (50.0 %)" in table
    assert "skipped 1 invalid records" in table


def test_report_of_unknown_customer_and_unlimited_quota() -> None:
    report = build_report("ghost", "2024-02", [], None)
    assert len(report.daily_cost) == 29
    assert report.quota_text == "0 scenes (unlimited)"
    assert "no customers/ghost document" in render_table(report)


def test_chart_refuses_a_non_png_name(tmp_path: Path) -> None:
    from ops.usage_report import ReportError

    report = build_report("c1", "2025-01", [], None)
    with pytest.raises(ReportError, match=r"\.png"):
        write_chart(report, tmp_path / "chart.jpg")
    with pytest.raises(ReportError, match="does not exist"):
        write_chart(report, tmp_path / "missing" / "chart.png")


# --- found in review: wrong invocations that hung, printed a traceback, or said nothing --------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env_over: dict[str, str], *argv: str) -> Any:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEPRINT_", "FIRESTORE_"))}
    env.update({"GOOGLE_CLOUD_PROJECT": "demo-cli-unreachable", **env_over})
    # A generous bound: before the fix the client retried for 300 s.
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["usage", "report", "--customer", "c", "--month", "2025-01"],
        ["quota", "reset", "--dry-run", "--no-progress"],
        ["seed-demo"],
        ["config", "customer", "c"],
    ],
)
def test_emulator_not_running_is_one_clear_line_not_a_hang(argv: list[str]) -> None:
    host = f"127.0.0.1:{_closed_port()}"
    done = _cli({"FIRESTORE_EMULATOR_HOST": host}, *argv)
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert f"Firestore emulator at {host} is not reachable" in line
    # Both ways to start the emulators, and how to use a real project instead.
    assert "`make emulators`" in line
    assert "`make run`" in line
    assert "unset every *_EMULATOR_HOST and set GOOGLE_CLOUD_PROJECT with credentials" in line


def test_emulator_that_never_answers_is_one_clear_line() -> None:
    import socket

    with socket.socket() as server:  # accepts connections, never speaks (a stopped JVM)
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        host = f"127.0.0.1:{server.getsockname()[1]}"
        done = _cli(
            {"FIRESTORE_EMULATOR_HOST": host, "BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": "1"},
            "usage",
            "report",
            "--customer",
            "c",
            "--month",
            "2025-01",
        )
    assert done.returncode == 1, done.stderr
    assert "not reachable" in one_error_line(done.stderr)


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["usage", "report", "--customer", "a/b", "--month", "2025-01"], 2, "--customer"),
        (["config", "customer", "a/b"], 2, "document id"),
        (["config", "scene", "__x__"], 2, "document id"),
        (["config", "scene", "s", "--customer", ""], 2, "--customer"),
        (["quota", "reset", "--dry-run", "--month", "2999-01"], 2, "future"),
        (["quota", "reset", "--yes", "--month", "0000-01"], 2, "YYYY-MM"),
        (["usage", "report", "--customer", "c", "--month", "0000-01"], 2, "YYYY-MM"),
        (["usage", "report", "--customer", "c", "--month", "9999-11"], 2, "future"),
        (["usage", "recount", "--month", "9999-11", "--dry-run"], 2, "cannot be recounted"),
        (
            ["usage", "report", "--customer", "c", "--month", "2025-01", "--chart", "x.jpg"],
            1,
            "png",
        ),
    ],
)
def test_more_user_mistakes_are_one_line_before_any_request(
    argv: list[str],
    code: int,
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ops.usage_report

    def no_fetch(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must fail before reading Firestore")

    monkeypatch.setattr(ops.usage_report, "fetch_usage", no_fetch)
    got, out, err = run(argv, capsys, client_factory=unreachable)
    assert got == code
    assert needle in one_error_line(err)
    assert out == ""


def test_usage_errors_do_not_repeat_the_program_name(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(["migrate"], capsys)
    assert (
        one_error_line(err) == "blueprint: error: migrate: Missing argument 'paths'. (see --help)"
    )


def _fake_fetch(records: list[tuple[str, dict[str, Any]]], customer: dict[str, Any] | None) -> Any:
    def fetch(client: Any, customer_id: str, month: str, settings: Any = None) -> Any:
        return records, customer, None

    return fetch


def test_report_names_each_skipped_record_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.usage_report

    records = [
        ("ok", _record("2025-01-02T00:00:00", "scene_generated", 1.25)),
        ("bad-1", {"schema_version": 1, "customer_id": "c1", "action": "x"}),
        ("bad-2", {**_record("2025-01-03T00:00:00", "x", 1.0), "estimated_cost": -3}),
    ]
    customer = {"schema_version": 1, "bundle_tier": "pro"}
    monkeypatch.setattr(ops.usage_report, "fetch_usage", _fake_fetch(records, customer))
    for extra in ([], ["--csv"]):
        code, out, err = run(
            ["usage", "report", "--customer", "c1", "--month", "2025-01", *extra],
            capsys,
            client_factory=object,
        )
        assert code == 0
        lines = err.splitlines()
        assert len(lines) == 2, err
        assert lines[0].startswith("warning: skipped usage record bad-1: ")
        assert lines[1].startswith("warning: skipped usage record bad-2: estimated_cost=")
        assert "-3" in lines[1]
        assert "TOTAL" in out


def test_report_of_an_unknown_customer_without_records_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.usage_report

    monkeypatch.setattr(ops.usage_report, "fetch_usage", _fake_fetch([], None))
    code, out, err = run(
        ["usage", "report", "--customer", "ghost", "--month", "2025-01"],
        capsys,
        client_factory=object,
    )
    assert code == 1
    assert "usage report: unknown customer 'ghost' (no customers/ghost document" in one_error_line(
        err
    )
    assert out == ""
    # A deleted customer whose records remain still gets its report.
    records = [
        ("r", {**_record("2025-01-02T00:00:00", "scene_generated", 2.0), "customer_id": "gone"})
    ]
    monkeypatch.setattr(ops.usage_report, "fetch_usage", _fake_fetch(records, None))
    code, out, err = run(
        ["usage", "report", "--customer", "gone", "--month", "2025-01"],
        capsys,
        client_factory=object,
    )
    assert code == 0, err
    assert "no customers/gone document" in out
    assert "2.00" in out


def test_report_table_never_cuts_an_amount(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rich's default 80 columns cut cells with an ellipsis: a cut amount is a wrong amount."""
    import ops.usage_report

    records = [
        (
            "big",
            _record(
                "2025-01-02T00:00:00",
                "episodes_generated_with_a_long_action_name",
                123456.78,
                compute_minutes=98765432.125,
                storage_gb=12345.678,
                episodes_generated=987654321,
            ),
        )
    ]
    customer = {"schema_version": 1, "bundle_tier": "pro"}
    monkeypatch.setattr(ops.usage_report, "fetch_usage", _fake_fetch(records, customer))
    code, out, err = run(
        ["usage", "report", "--customer", "c1", "--month", "2025-01"], capsys, client_factory=object
    )
    assert code == 0, err
    for text in ("episodes_generated_with_a_long_action_name", "98765432.125", "123456.78"):
        assert text in out
    assert "…" not in out
