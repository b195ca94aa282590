"""Process groups: each emulator runs in its own, remembered until stopped, with a watchdog.

The SDK wrappers start a JVM that outlives a killed wrapper, so the whole group is signalled.
Every group started here is stopped on `kill_group`, on interpreter exit (atexit), on
SIGTERM/SIGHUP, and by its watchdog when this process dies without doing so (SIGKILL included).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Final

from devstack.emulators.errors import EmulatorsMissingError
from devstack.emulators.sdk import INSTALL_HINT

_LIVE_GROUPS: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False
_WATCHDOGS: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
"""pgid -> (write end of the watchdog's pipe, watchdog process)."""

# Blocks on a pipe whose write end only this process holds. EOF means this process is gone,
# however it ended (SIGKILL, OOM kill included) or it stopped the group itself: stop the group.
_WATCHDOG_SCRIPT: Final = """
import os, signal, sys, time
fd, pgid = int(sys.argv[1]), int(sys.argv[2])
while os.read(fd, 64):
    pass
try:
    os.killpg(pgid, signal.SIGTERM)
    os.killpg(pgid, signal.SIGCONT)
except OSError:
    sys.exit(0)
time.sleep(5)
try:
    os.killpg(pgid, signal.SIGKILL)
except OSError:
    pass
"""


def group_alive(pgid: int) -> bool:
    """True while any process of the group still runs (zombies awaiting their reaper do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(pgid: int, popen: subprocess.Popen[bytes] | None = None, grace: float = 5.0) -> None:
    """SIGTERM the whole group (waking it if paused), then SIGKILL what is left; reap the leader."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if popen is not None:
            popen.poll()
        if not group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with _LIVE_LOCK:
        _LIVE_GROUPS.pop(pgid, None)
        watchdog = _WATCHDOGS.pop(pgid, None)
    if watchdog is not None:
        write_end, dog = watchdog
        with contextlib.suppress(OSError):
            os.close(write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            dog.wait(timeout=grace)


def _start_watchdog(pgid: int) -> None:
    """A small process that stops group `pgid` when this process ends without doing so."""
    read_end, write_end = os.pipe()  # not inheritable: no other child keeps the write end
    try:
        dog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG_SCRIPT, str(read_end), str(pgid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C and our own group kills do not reach it
            pass_fds=(read_end,),
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    with _LIVE_LOCK:
        _WATCHDOGS[pgid] = (write_end, dog)


def stop_all_groups() -> None:
    """Stop every group still registered (atexit and signal handlers call this)."""
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS.items())
    for pgid, popen in groups:
        kill_group(pgid, popen, grace=3.0)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_all_groups()
    # Leave with the conventional status of the signal.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_cleanup_handlers() -> None:
    """atexit + SIGTERM/SIGHUP handlers that stop every group (SIGINT unwinds normally)."""
    global _HANDLERS_INSTALLED  # noqa: PLW0603 -- once per process
    if _HANDLERS_INSTALLED:
        return
    atexit.register(stop_all_groups)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
    _HANDLERS_INSTALLED = True


def start_group(
    name: str, cmd: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session (its own process group), output to `log_path`."""
    install_cleanup_handlers()
    with log_path.open("ab") as log:
        try:
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        except FileNotFoundError as exc:
            raise EmulatorsMissingError(
                f"Cannot start {name}: {cmd[0]!r} not found.\n{INSTALL_HINT}"
            ) from exc
    with _LIVE_LOCK:
        _LIVE_GROUPS[popen.pid] = popen
    _start_watchdog(popen.pid)
    return popen


def _task_states(pgid: int) -> list[str]:
    """The state letter (`/proc/.../stat`) of every thread of every process in the group."""
    states = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) != pgid:  # after the command: state, ppid, pgrp
                continue
            for task in (proc / "task").iterdir():
                states.append((task / "stat").read_text().rpartition(")")[2].split()[0])
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return states


def group_stopped(pgid: int) -> bool:
    """True when every live thread of the group is stopped (a SIGSTOP reached all of them)."""
    return all(state in {"T", "t", "Z", "X"} for state in _task_states(pgid))


def pause_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGSTOP the whole group (simulates an outage: connections hang) and wait until every
    thread has stopped: the signal is asynchronous, and a request sent at once could still be
    answered by a JVM thread on another core (a config test saw a read succeed "during" the
    pause). Where /proc is not readable the wait finds nothing and returns at once."""
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not group_stopped(pgid) and time.monotonic() < deadline:
        time.sleep(0.005)


def resume_group(pgid: int) -> None:
    """SIGCONT the whole group."""
    os.killpg(pgid, signal.SIGCONT)
