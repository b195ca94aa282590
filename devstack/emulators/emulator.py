"""One running emulator: its process group, address and log; pause, resume, stop, readiness."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devstack.emulators.errors import EmulatorError
from devstack.emulators.groups import group_alive, kill_group, pause_group, resume_group


def tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclasses.dataclass
class Emulator:
    """One running emulator: its process group, address and log."""

    name: str
    host: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """Pid of the wrapper (the group leader)."""
        return self.popen.pid

    @property
    def pgid(self) -> int:
        """Process group id (the wrapper's pid: it was started in a new session)."""
        return self.popen.pid

    @property
    def address(self) -> str:
        """HOST:PORT, as the *_EMULATOR_HOST variables want it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://{self.address}"

    def alive(self) -> bool:
        """True while any process of the group exists."""
        self.popen.poll()
        return group_alive(self.pgid)

    def pause(self) -> None:
        """SIGSTOP the whole group (simulates an outage: connections hang)."""
        pause_group(self.pgid)

    def resume(self) -> None:
        """SIGCONT the whole group."""
        resume_group(self.pgid)

    def stop(self) -> None:
        """Stop the whole group; idempotent."""
        kill_group(self.pgid, self.popen)

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll `probe` until ready; raise with the log tail if the group dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise EmulatorError(
                    f"{self.name} exited with status {self.popen.returncode} before answering; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            with contextlib.suppress(OSError):
                if probe():
                    return
            time.sleep(0.1)
        raise EmulatorError(
            f"{self.name} did not answer on {self.address} within {timeout:.0f} s; "
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )
