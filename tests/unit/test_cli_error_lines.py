"""Error lines of `usage export`, `usage report` and `config customer`: one line, prefixed with
the command, naming the value and what is expected, in the CLI's words (no Errno, no pydantic)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ops.cli import main


def never_called() -> Any:
    raise AssertionError("the mistake must be caught before Firestore is asked anything")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out, client_factory=never_called)
    return code, out.getvalue(), capsys.readouterr().err


def the_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_export_to_a_missing_directory_names_the_path_and_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "nonexistent" / "a.csv"
    code, out, err = run(["usage", "export", "--month", "2025-01", "--output", str(target)], capsys)
    assert code == 1
    assert out == ""
    assert the_line(err) == (
        f"blueprint: error: usage export: --output '{target}': directory "
        f"'{target.parent}' does not exist"
    )
    assert "Errno" not in err


def test_export_to_an_unwritable_path_names_the_path_and_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ops.export

    monkeypatch.setattr(ops.export, "customer_totals", lambda client, month: iter(()))
    out = io.StringIO()
    # The output is a directory: open() fails after the checks, still one line, no Errno.
    code = main(
        ["usage", "export", "--month", "2025-01", "--output", str(tmp_path)],
        out=out,
        client_factory=object,
    )
    err = capsys.readouterr().err
    assert code == 1
    assert the_line(err) == (
        f"blueprint: error: usage export: --output '{tmp_path}': cannot be written (Is a directory)"
    )


def test_export_unknown_format_says_the_allowed_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["usage", "export", "--month", "2025-01", "--format", "xml"], capsys)
    assert code == 2
    line = the_line(err)
    assert line == (
        "blueprint: error: usage export: Invalid value for '--format': 'xml': expected csv or "
        "jsonl (see --help)"
    )
    assert "Value error" not in line


def test_report_chart_error_names_the_command_like_every_other_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["usage", "report", "--customer", "c", "--month", "2025-01", "--chart"]
    code, _, err = run([*argv, "x.jpg"], capsys)
    assert code == 1
    assert the_line(err) == (
        "blueprint: error: usage report: --chart 'x.jpg': expected a file name ending in .png"
    )
    missing = tmp_path / "no" / "x.png"
    code, _, err = run([*argv, str(missing)], capsys)
    assert code == 1
    assert the_line(err).startswith(f"blueprint: error: usage report: --chart '{missing}'")
