"""Finding the emulator programs and Java: the SDK root, the commands, what to install."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Final

from devstack.emulators.errors import EmulatorsMissingError
from shared.settings import Settings, get_settings

DEFAULT_SDK_ROOT: Final = "/usr/lib/google-cloud-sdk"
FIRESTORE_REL: Final = "platform/cloud-firestore-emulator/cloud_firestore_emulator"
PUBSUB_REL: Final = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
MIN_JAVA: Final = 17

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
