"""`python -m devstack outage --seconds N`: take the running suite's functions host away.

The drill anyone can run: while the host is away Pub/Sub keeps retrying each usage event (about
once a second locally) and dead-letters it after 10 attempts; the dead letters are recorded
once the host is back, and `blueprint usage replay` delivers them again (docs/replay.md).
The command kills the host's process group, as a crash would; the suite's supervisor starts a
new host when the N seconds are over (`devstack.supervisor`).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import UTC, datetime
from typing import Final

from devstack.emulators import http
from devstack.state import NoSuiteError, running_suite
from devstack.supervisor import Outage, outage_file, remove_outage, write_outage
from ops.localstack import state_file

MAX_SECONDS: Final = 3600.0


def seconds(text: str) -> float:
    """The `--seconds` value: more than 0, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected 0 < seconds <= {MAX_SECONDS:g}, got {text}")
    return value


def _host_answers(url: str) -> bool:
    try:
        return http("GET", f"{url}/_devstack/ready", timeout=3)[0] == 200
    except OSError:
        return False


def cmd_outage(args: argparse.Namespace) -> int:
    """Kill the running suite's functions host; the suite starts a new one after N seconds."""
    path = state_file()
    state = running_suite(path)
    # Its host answering at the recorded address is what makes the recorded pid safe to kill.
    if state.host_pid <= 0 or not state.host or not _host_answers(state.host):
        raise NoSuiteError(
            "the suite's functions host does not answer (away already, or being started "
            "again): watch the suite's live log and try again in a few seconds"
        )
    requests = outage_file(path)
    until = time.time() + args.seconds
    write_outage(requests, Outage(until=until, host_pid=state.host_pid))
    try:
        os.killpg(state.host_pid, signal.SIGKILL)
    except OSError as exc:
        remove_outage(requests)
        raise NoSuiteError(
            f"could not stop the functions host (process {state.host_pid}): {exc.strerror}"
        ) from None
    deadline = time.monotonic() + 5
    while _host_answers(state.host) and time.monotonic() < deadline:
        time.sleep(0.1)
    back = datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S")
    print(
        f"functions host (process {state.host_pid}) taken away for {args.seconds:g} s; "
        f"the suite starts a new one at {back} UTC (its live log says so)"
    )
    print(
        "meanwhile Pub/Sub retries each usage event about once a second and dead-letters it "
        "after 10 attempts; afterwards: blueprint inspect dead-letters, blueprint usage replay"
    )
    return 0
