"""`make run` keeps its functions host running: a killed host is started again and the events
sent after it are recorded; `python -m devstack outage --seconds N` takes it away for N seconds.
On the real emulators, through `python -m devstack run` as a person starts it."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devstack.emulators import group_alive, http
from ops.localstack import STATE_FILE_ENV, SuiteState, port_answers
from shared.models import UsageEvent
from shared.publisher import usage_event_bytes

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-devstack-restart"
OUTAGE_SECONDS = 6.0


class Runner:
    """`python -m devstack run` in a subprocess, its output read line by line."""

    def __init__(self, state: Path) -> None:
        env = {
            **os.environ,
            STATE_FILE_ENV: str(state),
            "BLUEPRINT_LOCAL_FOLD_INTERVAL_SECONDS": "0",
        }
        self.state = state
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run", "--project", PROJECT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        """The first line from now on matching `pattern`; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        pytest.fail(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def suite(self) -> SuiteState:
        return SuiteState.from_json(self.state.read_text())

    def output(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "\n".join(self.lines)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    run = Runner(tmp_path / "state.json")
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
            try:
                run.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()


def _publish_usage(state: SuiteState, event_id: str) -> None:
    """One valid usage event for schema.md's example customer, as a producer publishes it."""
    event = UsageEvent(
        schema_version=1,
        customer_id="lab_001",
        scene_id="scene_kitchen_v2",
        action="scene_generated",
        timestamp=datetime.now(UTC),
        event_id=event_id,
        episodes_generated=1,
    )
    data = base64.b64encode(usage_event_bytes(event)).decode()
    url = f"http://{state.pubsub}/v1/projects/{state.project}/topics/usage-events:publish"
    status, body = http("POST", url, json.dumps({"messages": [{"data": data}]}).encode())
    assert status == 200, body


def _host_answers(state: SuiteState) -> bool:
    try:
        return http("GET", f"{state.host}/_devstack/ready", timeout=2)[0] == 200
    except OSError:
        return False


@pytest.mark.slow
def test_a_killed_host_comes_back_and_the_outage_drill_takes_it_away(runner: Runner) -> None:
    runner.wait_line(r"^# Ctrl-C stops everything")
    start_up = "\n".join(runner.lines)  # the try-it block ends it, with this Python's scripts
    assert re.search(r"^#   \S*blueprint inspect customers lab_001$", start_up, re.MULTILINE), (
        start_up
    )
    assert re.search(r"^#   \S*python -m devstack outage --seconds 20 ", start_up, re.MULTILINE)
    console = re.search(r"^#   open the console: (http://\S+)$", start_up, re.MULTILINE)
    assert console, start_up
    status, page = http("GET", console[1], timeout=10)
    assert status == 200, page
    first = runner.suite()
    assert _host_answers(first)

    # A crash: the suite starts a new host, the emulators and their data stay.
    os.killpg(first.host_pid, signal.SIGKILL)
    runner.wait_line(r"# functions host exited \(code -9, killed by SIGKILL\); starting a new one")
    runner.wait_line(r"# functions host ready again at ")
    second = runner.suite()
    assert second.host_pid != first.host_pid
    assert (second.firestore, second.pubsub, second.host) == (
        first.firestore,
        first.pubsub,
        first.host,
    )
    assert group_alive(second.host_pid)
    event_id = f"after-restart-{uuid.uuid4().hex[:8]}"
    _publish_usage(second, event_id)
    runner.wait_line(r" on-usage-event .* recorded$", timeout=60)

    # The drill: the host is away for the seconds asked, then a new one answers.
    drill = subprocess.run(
        [sys.executable, "-m", "devstack", "outage", "--seconds", f"{OUTAGE_SECONDS:g}"],
        cwd=ROOT,
        env={**os.environ, STATE_FILE_ENV: str(runner.state)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    away = time.monotonic()
    assert drill.returncode == 0, drill.stderr
    assert re.match(
        rf"functions host \(process {second.host_pid}\) taken away for {OUTAGE_SECONDS:g} s; ",
        drill.stdout,
    ), drill.stdout
    assert not _host_answers(second)
    runner.wait_line(r"# functions host taken away by the outage drill \(code -9, ")
    runner.wait_line(r"# the outage is over; starting a new functions host", timeout=60)
    runner.wait_line(r"# functions host ready again at ")
    assert time.monotonic() - away >= OUTAGE_SECONDS - 0.5
    third = runner.suite()
    assert _host_answers(third)
    assert third.host_pid not in (first.host_pid, second.host_pid)
    assert port_answers(third.firestore)

    # Ctrl-C while an outage holds the host away: still a clean stop, nothing left behind.
    again = subprocess.run(
        [sys.executable, "-m", "devstack", "outage", "--seconds", "600"],
        cwd=ROOT,
        env={**os.environ, STATE_FILE_ENV: str(runner.state)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    runner.wait_line(r"# functions host taken away by the outage drill .* starts in (599|600) s")
    runner.proc.send_signal(signal.SIGINT)
    assert runner.proc.wait(timeout=60) == 0, runner.output()
    text = runner.output()
    assert "# stopped; nothing left running; logs removed." in text
    found = re.search(r"^# logs in +(\S+)$", text, re.MULTILINE)
    assert found, text
    assert not Path(found[1]).exists()
    assert not runner.state.exists()
    assert not runner.state.with_name("outage.json").exists()
    for pid in (first.host_pid, second.host_pid, third.host_pid):
        assert not group_alive(pid)
