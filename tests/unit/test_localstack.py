"""The CLI finds the running local suite through its state file (`ops.localstack`)."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.localstack import (
    GOOGLE_VARS,
    STATE_FILE_ENV,
    SuiteState,
    state_file,
    use_running_suite,
    write_state,
)

DEAD_PID = 2**22 + 12345


@pytest.fixture
def listening() -> Iterator[tuple[str, str]]:
    """Two addresses something answers on, as the emulators' would."""
    with socket.socket() as one, socket.socket() as two:
        for s in (one, two):
            s.bind(("127.0.0.1", 0))
            s.listen()
        yield (
            f"127.0.0.1:{one.getsockname()[1]}",
            f"127.0.0.1:{two.getsockname()[1]}",
        )


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _state(firestore: str, pubsub: str, pid: int | None = None) -> SuiteState:
    return SuiteState(
        project="demo-blueprint",
        firestore=firestore,
        pubsub=pubsub,
        host="http://127.0.0.1:1",
        host_pid=0,
        pid=os.getpid() if pid is None else pid,
        quota_reset_topic="quota-reset-schedule",
    )


def test_a_running_suite_is_used_and_said_in_one_line(
    tmp_path: Path, listening: tuple[str, str]
) -> None:
    path = tmp_path / "state.json"
    write_state(_state(*listening), path)
    env: dict[str, str] = {}
    err = io.StringIO()
    found = use_running_suite(env, err, path)
    assert found is not None
    assert env == {
        "GOOGLE_CLOUD_PROJECT": "demo-blueprint",
        "FIRESTORE_EMULATOR_HOST": listening[0],
        "PUBSUB_EMULATOR_HOST": listening[1],
    }
    assert err.getvalue() == (
        f"using the local suite: project demo-blueprint, Firestore {listening[0]}, "
        f"Pub/Sub {listening[1]} ({path})\n"
    )


@pytest.mark.parametrize("variable", GOOGLE_VARS)
def test_a_google_variable_set_means_the_user_chose(
    variable: str, tmp_path: Path, listening: tuple[str, str]
) -> None:
    path = tmp_path / "state.json"
    write_state(_state(*listening), path)
    env = {variable: "chosen"}
    err = io.StringIO()
    assert use_running_suite(env, err, path) is None
    assert env == {variable: "chosen"}
    assert err.getvalue() == ""


def test_no_state_file_changes_nothing_and_says_nothing(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    err = io.StringIO()
    assert use_running_suite(env, err, tmp_path / "state.json") is None
    assert env == {}
    assert err.getvalue() == ""


@pytest.mark.parametrize("why", ["pid gone", "firestore refused", "pubsub refused", "garbage"])
def test_a_stale_state_file_is_ignored_with_a_one_line_note(
    why: str, tmp_path: Path, listening: tuple[str, str]
) -> None:
    path = tmp_path / "state.json"
    firestore, pubsub = listening
    if why == "garbage":
        path.write_text("{not json")
    else:
        if why == "firestore refused":
            firestore = _closed_port()
        if why == "pubsub refused":
            pubsub = _closed_port()
        write_state(_state(firestore, pubsub, DEAD_PID if why == "pid gone" else None), path)
    env: dict[str, str] = {}
    err = io.StringIO()
    assert use_running_suite(env, err, path) is None
    assert env == {}
    note = err.getvalue()
    assert note.startswith(f"note: ignoring {path}: ")
    assert note.count("\n") == 1, note
    assert path.exists()  # the CLI only reads it; the suite's own commands remove it


def test_the_state_file_can_be_put_elsewhere(tmp_path: Path) -> None:
    assert state_file({STATE_FILE_ENV: str(tmp_path / "s.json")}) == tmp_path / "s.json"
    assert state_file({}).parts[-2:] == (".devstack", "state.json")


def test_the_file_round_trips_and_an_older_file_without_the_host_still_reads(
    tmp_path: Path,
) -> None:
    state = _state("127.0.0.1:1", "127.0.0.1:2")
    path = tmp_path / "state.json"
    write_state(state, path)
    assert SuiteState.from_json(path.read_text()) == state
    older = '{"project": "p", "firestore": "h:1", "pubsub": "h:2", "pid": 5, "extra": 1}'
    assert SuiteState.from_json(older) == SuiteState("p", "h:1", "h:2", pid=5)
