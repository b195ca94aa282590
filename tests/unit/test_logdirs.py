"""The emulators' temporary log directories name their owner; orphans are swept at the next start."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.emulators.logdirs import (
    OWNER_FILE,
    PREFIX,
    make_log_dir,
    mark_kept,
    sweep_orphans,
)

DEAD_PID = 2**22 + 12345


def _dir(tmp: Path, name: str, owner: int | None) -> Path:
    made = tmp / f"{PREFIX}{name}"
    made.mkdir()
    (made / "firestore.log").write_text("...")
    if owner is not None:
        (made / OWNER_FILE).write_text(f"{owner}\n")
    return made


def test_the_next_start_removes_the_directories_of_dead_owners_only(tmp_path: Path) -> None:
    orphan = _dir(tmp_path, "orphan", DEAD_PID)
    in_use = _dir(tmp_path, "in-use", os.getpid())
    unowned = _dir(tmp_path, "unowned", None)  # not made by this code: not ours to judge
    kept = _dir(tmp_path, "kept", DEAD_PID)
    mark_kept(kept)  # a crash's logs, named to the user: stays until removed by hand
    other = tmp_path / "something-else"
    other.mkdir()

    made = make_log_dir(tmp_path)

    assert not orphan.exists()
    assert in_use.exists()
    assert unowned.exists()
    assert kept.exists()
    assert other.exists()
    assert made.name.startswith(PREFIX)
    assert (made / OWNER_FILE).read_text() == f"{os.getpid()}\n"
    assert sweep_orphans(tmp_path) == []
