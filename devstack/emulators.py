"""Start and stop Google's Firestore and Pub/Sub emulators for tests and the local suite.

Each emulator runs in its own process group (the SDK wrappers start a JVM that outlives a killed
wrapper), on a free port, with its output in a log file. Every group started here is stopped on
`stop()`, on interpreter exit (atexit) and on SIGTERM/SIGHUP; Ctrl-C unwinds through the
context managers. Nothing here reads the environment directly: `shared.settings` does.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Final

from shared.errors import BlueprintError
from shared.settings import Settings, get_settings

DEFAULT_SDK_ROOT: Final = "/usr/lib/google-cloud-sdk"
FIRESTORE_REL: Final = "platform/cloud-firestore-emulator/cloud_firestore_emulator"
PUBSUB_REL: Final = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
MIN_JAVA: Final = 17
LOCALHOST: Final = "127.0.0.1"

INSTALL_HINT: Final = (
    "Install one of:\n"
    "  * the Google Cloud CLI with its emulator packages "
    "(apt: google-cloud-cli google-cloud-cli-firestore-emulator "
    "google-cloud-cli-pubsub-emulator; or `gcloud components install "
    "cloud-firestore-emulator pubsub-emulator`) and Java 17 or newer "
    "(apt: openjdk-17-jre-headless), or\n"
    "  * firebase-tools (npm i -g firebase-tools) with Java 21 or newer.\n"
    "Point BLUEPRINT_SDK_ROOT at the SDK root, or BLUEPRINT_FIRESTORE_EMULATOR_CMD / "
    "BLUEPRINT_PUBSUB_EMULATOR_CMD at the emulator commands, if they live elsewhere."
)


class EmulatorError(BlueprintError):
    """An emulator could not be started, did not answer, or misbehaved."""


class EmulatorsMissingError(EmulatorError):
    """The emulators or Java are not installed; the message says what to install."""


# --------------------------------------------------------------------------------------------
# Finding the programs


def sdk_root(settings: Settings) -> Path:
    """The Cloud SDK root: the setting, else `gcloud info`, else the Debian package location."""
    if settings.sdk_root:
        return Path(settings.sdk_root)
    gcloud = shutil.which("gcloud")
    if gcloud:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
            if out and Path(out).is_dir():
                return Path(out)
    return Path(DEFAULT_SDK_ROOT)


def _java_major(java: str) -> int | None:
    """Major version of the given Java launcher, or None when it cannot be run."""
    exe = shutil.which(java)
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8".
    return int(match.group(2) or 0) if major == 1 else major


@dataclasses.dataclass(frozen=True, slots=True)
class Commands:
    """The command prefixes that start each emulator."""

    firestore: list[str]
    pubsub: list[str]


def find_commands(settings: Settings | None = None) -> Commands:
    """Locate both emulators and check Java; raise EmulatorsMissingError naming what to install."""
    settings = settings or get_settings()
    problems: list[str] = []
    root: Path | None = None

    def resolve(override: str | None, rel: str, what: str) -> list[str]:
        nonlocal root
        if override:
            cmd = shlex.split(override)
            if not cmd or shutil.which(cmd[0]) is None:
                problems.append(f"{what} command {override!r} not found")
            return cmd
        root = root or sdk_root(settings)
        path = root / rel
        if not path.exists():
            problems.append(f"{what} not found at {path}")
        return [str(path)]

    firestore = resolve(settings.firestore_emulator_cmd, FIRESTORE_REL, "Firestore emulator")
    pubsub = resolve(settings.pubsub_emulator_cmd, PUBSUB_REL, "Pub/Sub emulator")
    major = _java_major(settings.java_cmd)
    if major is None:
        problems.append(f"Java not found (tried {settings.java_cmd!r})")
    elif major < MIN_JAVA:
        problems.append(f"Java {major} found, the emulators need {MIN_JAVA} or newer")
    if problems:
        raise EmulatorsMissingError(
            "Cannot start the Firestore and Pub/Sub emulators: "
            + "; ".join(problems)
            + ".\n"
            + INSTALL_HINT
        )
    return Commands(firestore=firestore, pubsub=pubsub)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Process groups: every group started here is remembered until it is stopped.

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


# --------------------------------------------------------------------------------------------
# HTTP helpers (stdlib only, so the harness has no extra dependency)


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One HTTP request; returns (status, body) for any status, raises OSError when unreachable."""
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 -- local http only
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# One emulator


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
        os.killpg(self.pgid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the whole group."""
        os.killpg(self.pgid, signal.SIGCONT)

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


# --------------------------------------------------------------------------------------------
# The pair


@dataclasses.dataclass
class Emulators:
    """A running Firestore + Pub/Sub emulator pair (see `start_emulators`)."""

    project: str
    firestore: Emulator
    pubsub: Emulator
    log_dir: Path
    functions_emulator: str | None = None
    owns_log_dir: bool = False
    """True when `start_emulators` made `log_dir` (a temporary one): `stop` removes it."""
    """HOST:PORT the Firestore emulator delivers trigger events to, if set at start."""

    @property
    def firestore_host(self) -> str:
        """HOST:PORT of the Firestore emulator."""
        return self.firestore.address

    @property
    def pubsub_host(self) -> str:
        """HOST:PORT of the Pub/Sub emulator."""
        return self.pubsub.address

    @property
    def env(self) -> dict[str, str]:
        """The variables a client needs to use these emulators."""
        return {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    @property
    def pgids(self) -> tuple[int, int]:
        """Process groups of (Firestore, Pub/Sub)."""
        return (self.firestore.pgid, self.pubsub.pgid)

    def export(self) -> None:
        """Put `env` into this process's environment and drop cached settings."""
        os.environ.update(self.env)
        get_settings.cache_clear()

    def clear_firestore(self, timeout: float = 30.0) -> None:
        """Delete every document of the project's default database (retries while locked: 409)."""
        url = (
            f"{self.firestore.url}/emulator/v1/projects/{self.project}"
            "/databases/(default)/documents"
        )
        deadline = time.monotonic() + timeout
        while True:
            status, body = http("DELETE", url, timeout=timeout)
            if status == 200:
                return
            if status != 409 or time.monotonic() > deadline:
                raise EmulatorError(f"clearing Firestore failed: HTTP {status} {body[:200]!r}")
            time.sleep(0.1)

    def pause_firestore(self) -> None:
        """SIGSTOP the Firestore emulator's whole group (its JVM included)."""
        self.firestore.pause()

    def resume_firestore(self) -> None:
        """SIGCONT the Firestore emulator's whole group."""
        self.firestore.resume()

    def crashed(self) -> list[Emulator]:
        """The emulators whose leading process has exited on its own."""
        return [part for part in (self.firestore, self.pubsub) if part.popen.poll() is not None]

    def stop(self, keep_logs: bool = False) -> Path | None:
        """Stop both groups; idempotent. Returns the log directory if it is kept.

        A temporary log directory is removed on a clean stop (they would pile up in the temp
        folder otherwise); it is kept when asked (`keep_logs`, after an error) or when an
        emulator had exited on its own (a crash: its log says why).
        """
        keep = keep_logs or bool(self.crashed())
        self.firestore.stop()
        self.pubsub.stop()
        if self.owns_log_dir and not keep:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            return None
        return self.log_dir if self.log_dir.exists() else None

    def __enter__(self) -> Emulators:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.stop(keep_logs=kind is not None)


def _firestore_ok(url: str) -> bool:
    status, body = http("GET", url + "/", timeout=2)
    return status == 200 and body.strip().startswith(b"Ok")


def _pubsub_ok(url: str, project: str) -> bool:
    status, _ = http("GET", f"{url}/v1/projects/{project}/topics", timeout=2)
    return status == 200


def start_emulators(
    project: str = "demo-blueprint",
    *,
    rules_path: str | os.PathLike[str] | None = None,
    functions_emulator: str | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    timeout: float = 60.0,
) -> Emulators:
    """Start both emulators on free ports and wait until they answer.

    `rules_path` loads Firestore security rules (`--rules`); `functions_emulator` (HOST:PORT)
    makes the Firestore emulator deliver trigger events there (`--functions_emulator`).
    The caller owns the result: call `stop()` or use it as a context manager.
    """
    settings = settings or get_settings()
    commands = find_commands(settings)
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="blueprint-emulators-"))
    logs.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    # The SDK's Firestore wrapper honours $JAVA; the Pub/Sub one uses the PATH.
    child_env["JAVA"] = settings.java_cmd
    for var in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        child_env.pop(var, None)

    fs_port = free_port()
    fs_cmd = [*commands.firestore, "start", "--host", LOCALHOST, "--port", str(fs_port)]
    fs_cmd += ["--project_id", project]
    if rules_path is not None:
        fs_cmd += ["--rules", str(Path(rules_path).resolve())]
    if functions_emulator is not None:
        fs_cmd += ["--functions_emulator", functions_emulator]
    ps_port = free_port()
    ps_cmd = [*commands.pubsub, f"--host={LOCALHOST}", f"--port={ps_port}"]

    fs_log = logs / "firestore.log"
    ps_log = logs / "pubsub.log"
    firestore = Emulator(
        "Firestore emulator",
        LOCALHOST,
        fs_port,
        start_group("firestore", fs_cmd, fs_log, child_env),
        fs_log,
    )
    try:
        pubsub = Emulator(
            "Pub/Sub emulator",
            LOCALHOST,
            ps_port,
            start_group("pubsub", ps_cmd, ps_log, child_env),
            ps_log,
        )
    except BaseException:
        firestore.stop()
        raise
    pair = Emulators(
        project=project,
        firestore=firestore,
        pubsub=pubsub,
        log_dir=logs,
        functions_emulator=functions_emulator,
        owns_log_dir=not log_dir,
    )
    try:
        firestore.wait_ready(lambda: _firestore_ok(firestore.url), timeout)
        pubsub.wait_ready(lambda: _pubsub_ok(pubsub.url, project), timeout)
    except BaseException:
        pair.stop(keep_logs=True)  # the error names a log in there
        raise
    return pair
