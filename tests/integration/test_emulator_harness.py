"""The harness leaves no emulator process behind, whatever way it is stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.emulators import group_alive, http, start_emulators
from ops.localstack import STATE_FILE_ENV

ROOT = Path(__file__).resolve().parents[2]


def _gone(pgid: int) -> bool:
    return not group_alive(pgid)


_GROUPS = re.compile(r"process groups: ((?:\w+=\d+\s*)+)")


def _read_until_ready(
    proc: subprocess.Popen[str], timeout: float
) -> tuple[dict[str, int], list[str]]:
    """Read the command's output until it says Ctrl-C stops it; the process groups it printed."""
    assert proc.stdout is not None
    groups: dict[str, int] = {}
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = _GROUPS.search(line)
        if match:
            groups = {k: int(v) for k, v in (p.split("=") for p in match.group(1).split())}
        if "Ctrl-C stops" in line:
            break
    return groups, lines


def _kill_leftovers(proc: subprocess.Popen[str], pgids: list[int]) -> None:
    """Never leave a JVM behind, even when the test fails."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pgid in pgids:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def _wait_reaped(pgids: list[int], timeout: float = 10) -> None:
    """Orphaned JVMs are reaped by init, not by us: give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in pgids):
        time.sleep(0.1)


def test_stop_kills_both_groups_even_paused_or_with_wrapper_killed(emulators: object) -> None:
    pair = start_emulators("demo-harness-stop")
    try:
        fs_pgid, ps_pgid = pair.pgids
        assert group_alive(fs_pgid)
        assert group_alive(ps_pgid)
        assert http("GET", pair.firestore.url + "/")[1].startswith(b"Ok")
        # Pausing stops answers; resuming brings them back.
        pair.pause_firestore()
        with pytest.raises(OSError, match="timed out"):
            http("GET", pair.firestore.url + "/", timeout=0.5)
        pair.resume_firestore()
        assert http("GET", pair.firestore.url + "/", timeout=10)[1].startswith(b"Ok")
        # Killing the wrapper script leaves its JVM running in the group ...
        os.kill(pair.firestore.pid, signal.SIGKILL)
        pair.firestore.popen.wait(timeout=10)
        time.sleep(0.2)
        assert group_alive(fs_pgid), "the Firestore JVM should outlive its wrapper"
        assert http("GET", pair.firestore.url + "/", timeout=5)[1].startswith(b"Ok")
        # ... and a paused group is stopped all the same.
        pair.pause_firestore()
    finally:
        kept = pair.stop()
        # The killed wrapper counts as a crash: the logs are kept, and this test removes them.
        assert kept == pair.log_dir
        shutil.rmtree(pair.log_dir)
    assert _gone(fs_pgid)
    assert _gone(ps_pgid)
    pair.stop()  # idempotent


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_leaves_nothing_running_when_signalled(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "emulators", "--project", "demo-harness-cli"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    groups: dict[str, int] = {}
    lines: list[str] = []
    try:
        groups, lines = _read_until_ready(proc, timeout=90)
        assert sorted(groups) == ["firestore", "pubsub"], "".join(lines)
        assert all(group_alive(p) for p in groups.values())
        assert "export FIRESTORE_EMULATOR_HOST=127.0.0.1:" in "".join(lines)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        _kill_leftovers(proc, list(groups.values()))
    pgids = list(groups.values())
    _wait_reaped(pgids)
    assert [p for p in pgids if not _gone(p)] == [], "".join(lines)


@pytest.mark.parametrize("how", ["ctrl-c", "emulator-crash"])
def test_run_leaves_nothing_running(how: str, tmp_path: Path) -> None:
    """`make run` (python -m devstack run): Ctrl-C stops every part; an emulator that crashes
    stops the run, with its log, instead of leaving a half-working suite (its data is gone).
    A functions host that crashes is started again: tests/integration/test_devstack_restart.py."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run", "--no-examples", "--project", "demo-harness-run"],
        cwd=ROOT,
        env={**os.environ, STATE_FILE_ENV: str(tmp_path / "state.json")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    groups: dict[str, int] = {}
    lines: list[str] = []
    try:
        groups, lines = _read_until_ready(proc, timeout=120)
        assert sorted(groups) == ["firestore", "host", "pubsub"], "".join(lines)
        assert all(group_alive(p) for p in groups.values())
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(groups["pubsub"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    finally:
        _kill_leftovers(proc, list(groups.values()))
    text = "".join(lines)
    found = re.search(r"^# logs in +(\S+)$", text, re.MULTILINE)
    assert found, text
    log_dir = Path(found[1])
    if how == "ctrl-c":
        assert proc.returncode == 0, text
        # A clean stop removes the temporary log directory (they piled up in /tmp).
        assert "# stopped; nothing left running; logs removed." in text
        assert not log_dir.exists()
    else:
        assert proc.returncode == 2, text
        assert "error: the Pub/Sub emulator exited on its own" in text
        # After a crash the logs are kept, and the last line says where.
        assert f"# stopped; nothing left running; logs kept in {log_dir}" in text
        assert (log_dir / "firestore.log").exists()
        shutil.rmtree(log_dir)
    _wait_reaped(list(groups.values()))
    assert [n for n, p in groups.items() if not _gone(p)] == [], text


def test_groups_die_with_a_killed_runner_and_the_next_start_removes_its_logs() -> None:
    """SIGKILL of the process that started the emulators (an OOM kill, a CI job cancelled)
    runs no cleanup code in it: its watchdogs stop the groups all the same, and the next start
    removes the log directory it left."""
    script = (
        "from devstack.emulators import start_emulators\n"
        "import time\n"
        "pair = start_emulators('demo-harness-kill')\n"
        "print('groups', *pair.pgids, pair.log_dir, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pgids: list[int] = []
    try:
        line = proc.stdout.readline()
        pgids = [int(p) for p in line.split()[1:3]]
        left = Path(line.split()[3])
        assert len(pgids) == 2, line
        assert all(group_alive(p) for p in pgids)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(_gone(p) for p in pgids):
            time.sleep(0.1)
        assert [p for p in pgids if not _gone(p)] == []
        assert left.is_dir()  # nothing ran to remove it ...
        with start_emulators("demo-harness-next"):
            assert not left.exists()  # ... until the next start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pgid in pgids:
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def test_pause_returns_only_when_every_thread_of_the_group_has_stopped() -> None:
    # SIGSTOP is asynchronous: busy threads on another core run on for a moment. A paused
    # emulator that still answers makes outage tests pass or fail by chance.
    from devstack.emulators.groups import group_stopped, pause_group, resume_group

    spin = (
        "import threading\n"
        "def spin():\n"
        "    while True: pass\n"
        "for _ in range(8): threading.Thread(target=spin, daemon=True).start()\n"
        "threading.Event().wait()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", spin], start_new_session=True)
    try:
        time.sleep(0.5)  # the threads are running
        for _ in range(5):
            pause_group(proc.pid)
            assert group_stopped(proc.pid)
            resume_group(proc.pid)
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
