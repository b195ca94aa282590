"""The devstack commands' side of the state file (`ops.localstack` reads and writes it).

`fire-reset` and `outage` act on the running suite: without one they fail with one line, and a
file left by a suite that died is removed so the next command does not trip over it.
"""

from __future__ import annotations

from pathlib import Path

from devstack.emulators import EmulatorError
from ops.localstack import (
    StaleStateError,
    SuiteState,
    read_running,
    remove_state,
    shown,
    state_file,
)

START_HINT = "start one with `make run`"


class NoSuiteError(EmulatorError):
    """No running local suite: a failure (exit 1), not a usage mistake."""


def running_suite(path: Path | None = None) -> SuiteState:
    """The running suite's state; NoSuiteError (a stale file removed) when there is none."""
    where = path or state_file()
    try:
        state = read_running(where)
    except StaleStateError as exc:
        remove_state(where)
        raise NoSuiteError(
            f"no local suite is running (removed the stale {shown(where)}: {exc}): {START_HINT}"
        ) from None
    if state is None:
        raise NoSuiteError(f"no local suite is running: {START_HINT}")
    return state
