"""`blueprint usage replay`'s time span: `--since` and `--before` parsed and refused before
Firestore is asked anything, and passed on to the replay as times."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import ops.replay
from ops.cli import main


def never_called() -> Any:
    raise AssertionError("the mistake must be caught before Firestore is asked anything")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(["usage", "replay", *argv], out=out, client_factory=never_called)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--before", "tomorrow"], "--before 'tomorrow': expected RFC 3339"),
        (["--before", "2026-12-01T00:00:00"], "--before '2026-12-01T00:00:00': expected RFC"),
        (["--before", "2026-12-01"], "--before '2026-12-01': expected RFC 3339"),
        (["--since", "2026-12-01T00:00:00"], "--since '2026-12-01T00:00:00': expected RFC"),
        (
            ["--since", "2026-12-01T00:00:00Z", "--before", "2026-12-01T00:00:00Z"],
            "--before '2026-12-01T00:00:00Z' is not after --since '2026-12-01T00:00:00Z'",
        ),
        (
            # The same instant as the --since, written with another offset: not after it.
            ["--since", "2026-12-01T00:00:00Z", "--before", "2026-12-01T01:00:00+01:00"],
            "--before '2026-12-01T01:00:00+01:00' is not after --since '2026-12-01T00:00:00Z'",
        ),
        (
            ["--since", "2026-12-01T00:00:00Z", "--before", "2026-11-01T00:00:00Z"],
            "is not after --since",
        ),
    ],
)
def test_a_bad_span_is_bad_usage_on_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("blueprint: error: usage replay: ")
    assert says in err


def test_the_span_reaches_the_replay_and_its_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, Any] = {}

    def replay(client: Any, **kwargs: Any) -> Iterator[ops.replay.ReplayItem]:
        asked.update(kwargs)
        return iter(())

    monkeypatch.setattr(ops.replay, "replay", replay)
    out = io.StringIO()
    argv = ["--since", "2026-02-01T00:00:00Z", "--before", "2026-03-01T01:00:00+01:00"]
    code = main(["usage", "replay", *argv, "--dry-run", "--json"], out=out, client_factory=object)
    assert code == 0, capsys.readouterr().err
    since, before = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    assert (asked["since"], asked["before"]) == (since, before)
    result = json.loads(out.getvalue())
    assert result["since"] == "2026-02-01T00:00:00+00:00"
    assert datetime.fromisoformat(result["before"]) == before

    asked.clear()
    out = io.StringIO()
    code = main(["usage", "replay", "--json"], out=out, client_factory=object)
    assert code == 0
    assert (asked["since"], asked["before"]) == (None, None)
    assert json.loads(out.getvalue())["before"] is None
