"""The running local suite (`make run`), found through the state file it writes.

`python -m devstack run` writes `.devstack/state.json` (`write_state`) once the suite answers
and removes it when it stops; this module is its one reader. The `blueprint` CLI calls
`use_running_suite()` first: with no Google variable set it talks to that suite by itself, so a
newcomer types `blueprint inspect customers` in a second shell without copying `export` lines.
It lives in `ops/` (not `devstack/`) because the CLI may not import the harness; the harness
imports this module to write the same fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Final, TextIO

ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_STATE_FILE: Final = ROOT / ".devstack" / "state.json"
STATE_FILE_ENV: Final = "BLUEPRINT_LOCAL_STATE_FILE"
"""Where the state file is instead (tests point it away from a developer's running suite)."""
GOOGLE_VARS: Final = ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")
CONNECT_TIMEOUT: Final = 1.0


@dataclasses.dataclass(frozen=True)
class SuiteState:
    """What a running suite tells other processes (field names = the file's keys)."""

    project: str
    firestore: str
    """HOST:PORT of its Firestore emulator."""
    pubsub: str
    """HOST:PORT of its Pub/Sub emulator."""
    host: str = ""
    """Base URL of its functions host."""
    host_pid: int = 0
    """Process (and process group) id of its functions host: the outage drill stops it."""
    pid: int = 0
    """Process id of `python -m devstack run`."""
    quota_reset_topic: str = ""

    @property
    def env(self) -> dict[str, str]:
        """The variables a client needs to talk to this suite."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "FIRESTORE_EMULATOR_HOST": self.firestore,
            "PUBSUB_EMULATOR_HOST": self.pubsub,
        }

    def to_json(self) -> str:
        """The file's text."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SuiteState:
        """Parse the file's text; ValueError when it is not a state file."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 -- one error: not a state file
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("project", "firestore", "pubsub"):
            if not isinstance(values.get(key), str) or not values[key]:
                raise ValueError(f"no {key!r}")
        for key in ("host_pid", "pid"):
            if not isinstance(values.get(key, 0), int):
                raise ValueError(f"{key!r} is not a number")  # noqa: TRY004 -- as above
        return cls(**values)


def state_file(environ: Mapping[str, str] | None = None) -> Path:
    """The state file's path: `$BLUEPRINT_LOCAL_STATE_FILE`, else `.devstack/state.json`."""
    env = os.environ if environ is None else environ
    return Path(env.get(STATE_FILE_ENV) or DEFAULT_STATE_FILE)


def write_state(state: SuiteState, path: Path) -> None:
    """Write the state file whole (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(state.to_json())
    partial.replace(path)


def remove_state(path: Path) -> None:
    """Remove the state file (the suite stopped); no error when it is gone already."""
    with contextlib.suppress(OSError):
        path.unlink()


class StaleStateError(Exception):
    """The state file names no running suite; the message says why, in a few words."""


def read_running(path: Path) -> SuiteState | None:
    """The running suite the state file names; None without a file.

    StaleStateError when the file is unreadable, its `make run` is gone or an emulator port
    does not answer (a suite killed outright leaves its file behind).
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StaleStateError(f"it cannot be read ({exc.strerror})") from None
    try:
        state = SuiteState.from_json(text)
    except ValueError as exc:  # JSONDecodeError included
        raise StaleStateError(f"it is not a state file the suite wrote ({exc})") from None
    if state.pid and not process_alive(state.pid):
        raise StaleStateError(f"the suite that wrote it (process {state.pid}) is gone")
    for name, address in (("Firestore", state.firestore), ("Pub/Sub", state.pubsub)):
        if not port_answers(address):
            raise StaleStateError(f"its {name} emulator at {address} does not answer")
    return state


def process_alive(pid: int) -> bool:
    """True while process `pid` exists (someone else's included)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_answers(address: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    """True when something accepts a TCP connection at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def shown(path: Path) -> str:
    """The path as a person reads it: relative to the current directory when inside it."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def use_running_suite(
    environ: MutableMapping[str, str] | None = None,
    err: TextIO | None = None,
    path: Path | None = None,
) -> SuiteState | None:
    """Point this process at the running local suite when nothing else is configured.

    With none of GOOGLE_VARS set and a running suite named by the state file, sets the three
    variables and says so in one line on `err`; a stale file gets a one-line note and changes
    nothing. Any Google variable set: the caller chose a target, nothing is read or said.
    """
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    out = sys.stderr if err is None else err
    if any(env.get(name) for name in GOOGLE_VARS):
        return None
    where = path or state_file(env)
    try:
        state = read_running(where)
    except StaleStateError as exc:
        print(f"note: ignoring {shown(where)}: {exc}", file=out)
        return None
    if state is None:
        return None
    env.update(state.env)
    from shared.settings import get_settings  # noqa: PLC0415 -- settings cached before this

    get_settings.cache_clear()
    print(
        f"using the local suite: project {state.project}, Firestore {state.firestore}, "
        f"Pub/Sub {state.pubsub} ({shown(where)})",
        file=out,
    )
    return state
