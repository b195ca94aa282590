"""The emulators' temporary log directories: made with an owner, kept on purpose, or swept.

A clean stop removes its directory, but a runner killed outright (SIGKILL, the OOM killer, a
cancelled CI job) runs no cleanup code: its directory would stay in the temp folder forever.
Each directory therefore names the process that made it; the next start removes those whose
process is gone, unless they were kept on purpose (after a crash the last line names them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

PREFIX: Final = "blueprint-emulators-"
OWNER_FILE: Final = "owner.pid"
KEPT_FILE: Final = "kept"
"""Present in a directory kept after a crash: someone was told where it is, it stays."""


def make_log_dir(temp: Path | None = None) -> Path:
    """A new temporary log directory owned by this process (orphans of dead ones removed)."""
    sweep_orphans(temp)
    made = Path(tempfile.mkdtemp(prefix=PREFIX, dir=temp))
    (made / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return made


def mark_kept(log_dir: Path) -> None:
    """Keep this directory from the sweep: it holds the logs of a crash."""
    with contextlib.suppress(OSError):
        (log_dir / KEPT_FILE).write_text("kept after a crash: remove it when read\n")


def sweep_orphans(temp: Path | None = None) -> list[Path]:
    """Remove the log directories whose owner process is gone; return them."""
    root = Path(temp or tempfile.gettempdir())
    removed = []
    for candidate in root.glob(f"{PREFIX}*"):
        owner = owner_of(candidate)
        if owner is None or _alive(owner) or (candidate / KEPT_FILE).exists():
            continue  # not ours to judge (no owner), still in use, or kept on purpose
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def owner_of(log_dir: Path) -> int | None:
    """The process that made this log directory, when it says."""
    try:
        return int((log_dir / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's, alive
        return True
    return True
