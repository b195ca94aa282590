"""Start and stop Google's Firestore and Pub/Sub emulators for tests and the local suite.

Each emulator runs in its own process group (the SDK wrappers start a JVM that outlives a killed
wrapper), on a free port, with its output in a log file. Every group started here is stopped on
`stop()`, on interpreter exit (atexit) and on SIGTERM/SIGHUP; Ctrl-C unwinds through the
context managers. Nothing here reads the environment directly: `shared.settings` does.

One job per module: `sdk` (finding the programs and Java), `groups` (process groups, watchdog,
pause/resume), `net` (ports, HTTP), `emulator` (one emulator), `pair` (the pair and its start).
`devstack.emulators` re-exports all of them, the import path tests, benches and devstack use.
"""

from __future__ import annotations

from devstack.emulators.emulator import Emulator, tail
from devstack.emulators.errors import EmulatorError, EmulatorsMissingError
from devstack.emulators.groups import (
    group_alive,
    install_cleanup_handlers,
    kill_group,
    pause_group,
    resume_group,
    start_group,
    stop_all_groups,
)
from devstack.emulators.net import LOCALHOST, free_port, http
from devstack.emulators.pair import Emulators, start_emulators
from devstack.emulators.sdk import (
    DEFAULT_SDK_ROOT,
    FIRESTORE_REL,
    INSTALL_HINT,
    MIN_JAVA,
    PUBSUB_REL,
    Commands,
    find_commands,
    sdk_root,
)

__all__ = [
    "DEFAULT_SDK_ROOT",
    "FIRESTORE_REL",
    "INSTALL_HINT",
    "LOCALHOST",
    "MIN_JAVA",
    "PUBSUB_REL",
    "Commands",
    "Emulator",
    "EmulatorError",
    "Emulators",
    "EmulatorsMissingError",
    "find_commands",
    "free_port",
    "group_alive",
    "http",
    "install_cleanup_handlers",
    "kill_group",
    "pause_group",
    "resume_group",
    "sdk_root",
    "start_emulators",
    "start_group",
    "stop_all_groups",
    "tail",
]
