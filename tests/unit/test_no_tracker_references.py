"""No tracked file refers to a tracker's issue numbers or to a machine's own paths: a newcomer
has neither the tracker nor the machine, so such a reference explains nothing to them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]

# Spelled in pieces so that this file does not match itself.
FORBIDDEN: Final = re.compile(
    r"\bissues?\s+#?\d+|\(#\d+\)|" + re.escape("/" + "work/"), re.IGNORECASE
)


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    return [name for name in done.stdout.decode().split("\0") if name]


def offences(names: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in names:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary or gone from the work tree
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                found.setdefault(name, []).append(f"{number}: {line.strip()[:100]}")
    return found


def test_no_issue_numbers_or_machine_paths_in_tracked_files() -> None:
    found = offences(tracked_files())
    assert not found, "\n".join(f"{name}:{line}" for name, lines in found.items() for line in lines)


def test_the_pattern_catches_what_it_is_for() -> None:
    issue = "issue"  # spelled apart, as FORBIDDEN is
    for text in (f"({issue} 11)", f"{issue.title()} #12 says", f"{issue}s 11 and 13", "(#" + "42)"):
        assert FORBIDDEN.search(text), text
    for text in ("/" + "work/x", f"{issue}\t7"):
        assert FORBIDDEN.search(text), text
    for text in ("the audit's issues", "ResetIssue", "range(10)", "Decimal(0)", "network/"):
        assert not FORBIDDEN.search(text), text
