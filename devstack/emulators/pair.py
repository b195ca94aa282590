"""The Firestore + Pub/Sub emulator pair: start both on free ports, export, clear, stop."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from devstack.emulators.emulator import Emulator
from devstack.emulators.errors import EmulatorError
from devstack.emulators.groups import start_group
from devstack.emulators.logdirs import make_log_dir, mark_kept
from devstack.emulators.net import LOCALHOST, free_port, http
from devstack.emulators.sdk import find_commands
from shared.settings import Settings, get_settings


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
        if self.owns_log_dir:
            mark_kept(self.log_dir)
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
    logs = Path(log_dir) if log_dir else make_log_dir()
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
