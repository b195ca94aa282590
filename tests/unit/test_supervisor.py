"""The functions host is started again when it exits; the outage drill holds it off (no network)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from devstack.supervisor import (
    HostSupervisor,
    Outage,
    SuitePartCrashedError,
    exit_text,
    outage_file,
    write_outage,
)


class FakePopen:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclasses.dataclass
class FakeHost:
    popen: FakePopen
    log_path: Path
    url: str = "http://127.0.0.1:1"

    @property
    def pid(self) -> int:
        return self.popen.pid


class FakeSuite:
    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "functions.log"
        self.log.write_text("Traceback: the last words\n")
        self.host: Any = FakeHost(FakePopen(100), self.log)
        self.started = 0
        self.reaped = 0

    def host_exited(self) -> None:
        self.reaped += 1

    def start_host(self) -> None:
        self.started += 1
        self.host = FakeHost(FakePopen(100 + self.started), self.log)

    def crash(self, code: int = -9) -> None:
        self.host.popen.returncode = code


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _supervisor(tmp: Path) -> tuple[HostSupervisor, FakeSuite, Clock, list[str], list[int]]:
    suite = FakeSuite(tmp)
    clock = Clock()
    said: list[str] = []
    new_hosts: list[int] = []
    supervisor = HostSupervisor(
        suite,
        outage_file(tmp / "state.json"),
        say=said.append,
        on_new_host=lambda: new_hosts.append(suite.host.pid),
        clock=clock,
    )
    return supervisor, suite, clock, said, new_hosts


def test_a_running_host_is_left_alone(tmp_path: Path) -> None:
    supervisor, suite, _, said, _ = _supervisor(tmp_path)
    assert supervisor.check() is False
    assert (suite.started, said) == (0, [])


def test_a_host_that_exits_is_started_again_and_the_log_says_so(tmp_path: Path) -> None:
    supervisor, suite, _, said, new_hosts = _supervisor(tmp_path)
    suite.crash(-9)
    assert supervisor.check() is True
    assert (suite.reaped, suite.started, new_hosts) == (1, 1, [101])
    assert said[0] == "functions host exited (code -9, killed by SIGKILL); starting a new one"
    assert said[1].startswith("functions host ready again at http://127.0.0.1:1 (process 101")


def test_the_outage_drill_holds_the_new_host_off_until_its_time(tmp_path: Path) -> None:
    supervisor, suite, clock, said, _ = _supervisor(tmp_path)
    requests = outage_file(tmp_path / "state.json")
    write_outage(requests, Outage(until=clock.now + 20, host_pid=100))
    suite.crash(-9)
    assert supervisor.check() is False
    assert supervisor.host_down
    assert said == [
        "functions host taken away by the outage drill (code -9, killed by SIGKILL); "
        "a new one starts in 20 s"
    ]
    clock.now += 19
    assert supervisor.check() is False
    assert suite.started == 0
    clock.now += 1
    assert supervisor.check() is True
    assert suite.started == 1
    assert not supervisor.host_down
    assert not requests.exists()
    assert said[1] == "the outage is over; starting a new functions host"


def test_an_outage_meant_for_another_host_or_past_is_a_plain_crash(tmp_path: Path) -> None:
    supervisor, suite, clock, _, _ = _supervisor(tmp_path)
    requests = outage_file(tmp_path / "state.json")
    write_outage(requests, Outage(until=clock.now + 20, host_pid=999))
    suite.crash(1)
    assert supervisor.check() is True  # started again at once
    assert not requests.exists()


def test_a_host_that_keeps_exiting_stops_the_run_with_its_log(tmp_path: Path) -> None:
    supervisor, suite, clock, _, _ = _supervisor(tmp_path)
    for _ in range(2):
        suite.crash(1)
        assert supervisor.check() is True
        clock.now += 5
    suite.crash(1)
    with pytest.raises(SuitePartCrashedError, match="exited 3 times within 60 s") as caught:
        supervisor.check()
    assert "the last words" in str(caught.value)


def test_crashes_far_apart_are_each_survived(tmp_path: Path) -> None:
    supervisor, suite, clock, _, _ = _supervisor(tmp_path)
    for _ in range(5):
        suite.crash(1)
        assert supervisor.check() is True
        clock.now += 61
    assert suite.started == 5


def test_exit_text() -> None:
    assert exit_text(1) == "code 1"
    assert exit_text(-15) == "code -15, killed by SIGTERM"
