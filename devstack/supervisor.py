"""The functions host, kept running: a host that exits is started again, as Cloud Run starts a
new instance; the emulators and their data stay.

`python -m devstack outage --seconds N` takes the host away on purpose: it writes an outage
file (`outage.json` beside the state file) saying until when, then kills the host's process
group. The supervisor finds the file when it sees the host gone and waits until then before
starting a new one, so the drill's outage lasts as long as asked, whoever notices first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from devstack.emulators import Emulator, EmulatorError, tail

OUTAGE_FILE: Final = "outage.json"
CRASHES: Final = 3
CRASH_WINDOW_SECONDS: Final = 60.0
"""A host that exits this many times within this window on its own is broken (an import error,
a port taken): the run stops with its log rather than starting it again forever."""


class SuitePartCrashedError(EmulatorError):
    """A part of the running suite exited and cannot be brought back; everything is stopped."""


class Supervised(Protocol):
    """What the supervisor needs of the suite (`devstack.suite.LocalSuite`)."""

    host: Emulator

    def host_exited(self) -> None:
        """Reap the exited host (and its watchdog); it is not a crash of the suite."""

    def start_host(self) -> None:
        """Start a new host on the same port and wait until it answers."""


@dataclasses.dataclass(frozen=True)
class Outage:
    """An outage asked for: the host with this pid stays away until `until` (epoch seconds)."""

    until: float
    host_pid: int


def outage_file(state_path: Path) -> Path:
    """Where the outage command leaves its request for the supervisor."""
    return state_path.with_name(OUTAGE_FILE)


def write_outage(path: Path, outage: Outage) -> None:
    """Leave the request (before the host is killed: the supervisor may look at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(outage)))


def read_outage(path: Path) -> Outage | None:
    """The request, if one is there and readable."""
    try:
        data = json.loads(path.read_text())
        return Outage(until=float(data["until"]), host_pid=int(data["host_pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_outage(path: Path) -> None:
    """The request is done (or was never acted on)."""
    with contextlib.suppress(OSError):
        path.unlink()


def exit_text(code: int | None) -> str:
    """`code 1`, or `code -9, killed by SIGKILL` for a signal."""
    if code is None or code >= 0:
        return f"code {code}"
    with contextlib.suppress(ValueError):
        return f"code {code}, killed by {signal.Signals(-code).name}"
    return f"code {code}"


class HostSupervisor:
    """Call `check()` often (the live log's tick); it brings the host back when it exits."""

    def __init__(
        self,
        suite: Supervised,
        outage_path: Path,
        say: Callable[[str], None],
        on_new_host: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.suite = suite
        self.outage_path = outage_path
        self.say = say
        self.on_new_host = on_new_host
        self.clock = clock
        self.held_until: float | None = None
        self._crashes: list[float] = []

    @property
    def host_down(self) -> bool:
        """True while an outage keeps the host away."""
        return self.held_until is not None

    def check(self) -> bool:
        """True when a new host was started (its invocation log starts again at 0)."""
        now = self.clock()
        if self.held_until is not None:
            if now < self.held_until:
                return False
            self.held_until = None
            remove_outage(self.outage_path)
            self._start("the outage is over; starting a new functions host")
            return True
        popen = self.suite.host.popen
        if popen.poll() is None:
            return False
        pid, code = popen.pid, popen.returncode
        self.suite.host_exited()
        outage = read_outage(self.outage_path)
        if outage is not None and outage.host_pid == pid and outage.until > now:
            self.held_until = outage.until
            self.say(
                f"functions host taken away by the outage drill ({exit_text(code)}); "
                f"a new one starts in {outage.until - now:.0f} s"
            )
            return False
        remove_outage(self.outage_path)
        self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW_SECONDS] + [now]
        if len(self._crashes) >= CRASHES:
            host = self.suite.host
            raise SuitePartCrashedError(
                f"the functions host exited {len(self._crashes)} times within "
                f"{CRASH_WINDOW_SECONDS:.0f} s (last: {exit_text(code)}); everything else was "
                f"stopped. Log {host.log_path}:\n{tail(host.log_path)}"
            )
        self._start(f"functions host exited ({exit_text(code)}); starting a new one")
        return True

    def _start(self, why: str) -> None:
        self.say(why)
        started = time.monotonic()
        self.suite.start_host()
        self.on_new_host()
        host = self.suite.host
        self.say(
            f"functions host ready again at {host.url} (process {host.pid}, "
            f"{time.monotonic() - started:.1f} s); Pub/Sub delivers what waited"
        )
